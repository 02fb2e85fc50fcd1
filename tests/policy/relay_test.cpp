#include "policy/relay.h"

#include <catch2/catch.hpp>

namespace {

using policy::ListenerRole;

policy::RelayConfig config() {
  policy::RelayConfig c;
  c.trusted_networks = {core::Cidr::parse("10.0.0.0/8").value(),
                        core::Cidr::parse("2001:db8::/32").value()};
  c.local_domains = {"example.com", "Mail.Example.Org"};
  return c;
}

core::IpAddress ip(const char* s) { return core::IpAddress::parse(s).value(); }
core::Address addr(const char* s) { return core::parse_mailbox(s, true).value(); }

}  // namespace

TEST_CASE("unit: relay decision matrix", "[policy][unit]") {
  enum Outcome { kAcceptLocal, kAcceptRemote, kAuthRequired, kRelayDenied };
  const auto [role, client, authenticated, rcpt, outcome] =
      GENERATE(table<ListenerRole, const char*, bool, const char*, Outcome>({
          // submission and submissions: AUTH is required, trusted or not.
          {ListenerRole::kSubmission, "10.1.2.3", false, "bob@example.com", kAuthRequired},
          {ListenerRole::kSubmission, "10.1.2.3", false, "bob@remote.test", kAuthRequired},
          {ListenerRole::kSubmission, "10.1.2.3", true, "bob@example.com", kAcceptLocal},
          {ListenerRole::kSubmission, "10.1.2.3", true, "bob@remote.test", kAcceptRemote},
          {ListenerRole::kSubmission, "198.51.100.1", false, "bob@example.com", kAuthRequired},
          {ListenerRole::kSubmission, "198.51.100.1", false, "bob@remote.test", kAuthRequired},
          {ListenerRole::kSubmission, "198.51.100.1", true, "bob@example.com", kAcceptLocal},
          {ListenerRole::kSubmission, "198.51.100.1", true, "bob@remote.test", kAcceptRemote},
          {ListenerRole::kSubmissions, "10.1.2.3", false, "bob@example.com", kAuthRequired},
          {ListenerRole::kSubmissions, "10.1.2.3", false, "bob@remote.test", kAuthRequired},
          {ListenerRole::kSubmissions, "10.1.2.3", true, "bob@example.com", kAcceptLocal},
          {ListenerRole::kSubmissions, "10.1.2.3", true, "bob@remote.test", kAcceptRemote},
          {ListenerRole::kSubmissions, "198.51.100.1", false, "bob@example.com", kAuthRequired},
          {ListenerRole::kSubmissions, "198.51.100.1", false, "bob@remote.test", kAuthRequired},
          {ListenerRole::kSubmissions, "198.51.100.1", true, "bob@example.com", kAcceptLocal},
          {ListenerRole::kSubmissions, "198.51.100.1", true, "bob@remote.test", kAcceptRemote},
          // relay (port 25): local domains from anyone, anything from trusted or AUTH.
          {ListenerRole::kRelay, "10.1.2.3", false, "bob@example.com", kAcceptLocal},
          {ListenerRole::kRelay, "10.1.2.3", false, "bob@remote.test", kAcceptRemote},
          {ListenerRole::kRelay, "10.1.2.3", true, "bob@example.com", kAcceptLocal},
          {ListenerRole::kRelay, "10.1.2.3", true, "bob@remote.test", kAcceptRemote},
          {ListenerRole::kRelay, "198.51.100.1", false, "bob@example.com", kAcceptLocal},
          {ListenerRole::kRelay, "198.51.100.1", false, "bob@remote.test", kRelayDenied},
          {ListenerRole::kRelay, "198.51.100.1", true, "bob@example.com", kAcceptLocal},
          {ListenerRole::kRelay, "198.51.100.1", true, "bob@remote.test", kAcceptRemote},
          // Edges: case, IPv6, IPv4-mapped, subdomains, look-alike domains.
          {ListenerRole::kRelay, "198.51.100.1", false, "bob@MAIL.example.org", kAcceptLocal},
          {ListenerRole::kRelay, "198.51.100.1", false, "bob@sub.example.com", kRelayDenied},
          {ListenerRole::kRelay, "198.51.100.1", false, "bob@example.com.evil", kRelayDenied},
          {ListenerRole::kRelay, "2001:db8::25", false, "bob@remote.test", kAcceptRemote},
          {ListenerRole::kRelay, "2001:db9::25", false, "bob@remote.test", kRelayDenied},
          {ListenerRole::kRelay, "::ffff:10.9.9.9", false, "bob@remote.test", kAcceptRemote},
          {ListenerRole::kRelay, "11.0.0.1", false, "bob@remote.test", kRelayDenied},
      }));
  INFO(policy::role_name(role) << " " << client << " auth=" << authenticated << " " << rcpt);
  const auto d = policy::decide_rcpt(config(), role, ip(client), authenticated, addr(rcpt));
  switch (outcome) {
    case kAcceptLocal:
    case kAcceptRemote:
      CHECK(d.accepted);
      CHECK(d.local == (outcome == kAcceptLocal));
      break;
    case kAuthRequired:
      CHECK_FALSE(d.accepted);
      CHECK(d.reply.to_wire() == "530 5.7.0 Authentication required\r\n");
      break;
    case kRelayDenied:
      CHECK_FALSE(d.accepted);
      CHECK(d.reply.to_wire() == "554 5.7.1 Relay access denied\r\n");
      break;
  }
}

TEST_CASE("unit: a recipient without a domain (Postmaster) is local", "[policy][unit]") {
  core::Address postmaster{"Postmaster", ""};
  const auto d =
      policy::decide_rcpt(config(), ListenerRole::kRelay, ip("198.51.100.1"), false, postmaster);
  CHECK(d.accepted);
  CHECK(d.local);
}

TEST_CASE("unit: local domains and trusted networks", "[policy][unit]") {
  const auto c = config();
  CHECK(policy::is_local_domain(c, "example.com"));
  CHECK(policy::is_local_domain(c, "EXAMPLE.com"));
  CHECK(policy::is_local_domain(c, "mail.example.org"));
  CHECK_FALSE(policy::is_local_domain(c, "example.co"));
  CHECK_FALSE(policy::is_local_domain(c, ""));
  CHECK_FALSE(policy::is_local_domain(policy::RelayConfig{}, "example.com"));
  CHECK(policy::is_trusted(c, ip("10.255.255.255")));
  CHECK_FALSE(policy::is_trusted(c, ip("9.255.255.255")));
  CHECK_FALSE(policy::is_trusted(policy::RelayConfig{}, ip("127.0.0.1")));
}

TEST_CASE("unit: role names round-trip", "[policy][unit]") {
  const auto role =
      GENERATE(ListenerRole::kSubmission, ListenerRole::kSubmissions, ListenerRole::kRelay);
  CHECK(policy::parse_role(policy::role_name(role)) == role);
  CHECK(policy::role_name(ListenerRole::kSubmissions) == "submissions");
  CHECK_FALSE(policy::parse_role("smtp").has_value());
  CHECK_FALSE(policy::parse_role("Relay").has_value());
}
