#include "policy/submission_headers.h"

#include <catch2/catch.hpp>
#include <regex>

#include "core/header.h"

namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // Tue, 14 Nov 2023 22:13:20 +0000
constexpr const char* kQid = "0K3F5W9Q8RA00000";
constexpr const char* kHost = "mx.example.com";

core::Address addr(const char* s) { return core::parse_mailbox(s, true).value(); }

core::Envelope envelope(int recipients = 1, bool tls = true, bool auth = true) {
  core::Envelope e;
  e.sender = addr("alice@example.com");
  for (int i = 0; i < recipients; ++i)
    e.recipients.push_back(
        core::Recipient{addr(("rcpt" + std::to_string(i) + "@remote.test").c_str()), 0, {}});
  e.client_ip = "192.0.2.10";
  e.client_helo = "laptop.example.com";
  e.auth_user = auth ? "alice" : "";
  e.tls = tls;
  e.listener = "submission";
  e.received_at_ms = kT0;
  return e;
}

const policy::User kAlice{"alice", "", {"alice@example.com", "@shop.example"}};

policy::HeaderOptions submission_options() {
  policy::HeaderOptions o;
  o.add_date = true;
  o.add_message_id = true;
  o.check_from_ownership = true;
  o.user = &kAlice;
  return o;
}

// The prefix split into lines (without their CRLF); REQUIREs that it ends in CRLF.
std::vector<std::string> lines_of(const std::string& prefix) {
  REQUIRE(prefix.size() >= 2);
  REQUIRE(prefix.substr(prefix.size() - 2) == "\r\n");
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < prefix.size()) {
    const size_t eol = prefix.find("\r\n", pos);
    out.push_back(prefix.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return out;
}

// The prefix's fields unfolded (CRLF WSP -> WSP), keyed by position.
std::vector<std::string> unfolded_fields(const std::string& prefix) {
  std::vector<std::string> fields;
  for (const auto& line : lines_of(prefix)) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      REQUIRE_FALSE(fields.empty());
      fields.back() += " " + line.substr(1);
    } else {
      fields.push_back(line);
    }
  }
  return fields;
}

const std::regex kReceived(
    R"(Received: from (\S+) \((\[[^\]]+\]|unknown)\) by (\S+) \(Porter\) with (ESMTPS?A?) )"
    R"(id ([0-9A-Z]{16})(?: for <([^>]+)>)?; )"
    R"((Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000)");

}  // namespace

TEST_CASE("unit: Received names HELO, address, host, protocol, id and date", "[policy][unit]") {
  const auto [tls, auth, protocol] = GENERATE(table<bool, bool, std::string>({
      {false, false, "ESMTP"},
      {true, false, "ESMTPS"},
      {false, true, "ESMTPA"},
      {true, true, "ESMTPSA"},
  }));
  const auto v =
      policy::submission_headers("Subject: x\r\n\r\n", envelope(1, tls, auth), kHost, kQid, {});
  CHECK_FALSE(v.refusal);
  const auto fields = unfolded_fields(v.prefix);
  REQUIRE(fields.size() == 1);
  std::smatch m;
  INFO(fields[0]);
  REQUIRE(std::regex_match(fields[0], m, kReceived));
  CHECK(m[1] == "laptop.example.com");
  CHECK(m[2] == "[192.0.2.10]");
  CHECK(m[3] == kHost);
  CHECK(m[4] == protocol);
  CHECK(m[5] == kQid);
  CHECK(m[6] == "rcpt0@remote.test");
  CHECK(fields[0].substr(fields[0].size() - 31) == "Tue, 14 Nov 2023 22:13:20 +0000");
}

TEST_CASE("unit: Received names the recipient only when there is one", "[policy][unit]") {
  const int recipients = GENERATE(0, 1, 2, 50);
  const auto v =
      policy::submission_headers("", envelope(recipients), kHost, kQid, submission_options());
  const auto fields = unfolded_fields(v.prefix);
  std::smatch m;
  REQUIRE(std::regex_match(fields[0], m, kReceived));
  CHECK(m[6].matched == (recipients == 1));
}

TEST_CASE("unit: Received writes IPv6 address literals", "[policy][unit]") {
  auto e = envelope();
  e.client_ip = "2001:db8::25";
  auto v = policy::submission_headers("", e, kHost, kQid, {});
  CHECK(unfolded_fields(v.prefix)[0].find("([IPv6:2001:db8::25])") != std::string::npos);
  e.client_ip = "::ffff:192.0.2.7";
  v = policy::submission_headers("", e, kHost, kQid, {});
  CHECK(unfolded_fields(v.prefix)[0].find("([192.0.2.7])") != std::string::npos);
}

TEST_CASE("unit: a hostile HELO cannot break out of the Received field", "[policy][unit]") {
  const std::string helo =
      GENERATE(as<std::string>{}, "evil\r\nX-Injected: yes", "a;b (c) \"d\" \\e",
               std::string(5000, 'h'), "caf\xc3\xa9.example", "");
  auto e = envelope();
  e.client_helo = helo;
  const auto v = policy::submission_headers("", e, kHost, kQid, {});
  const auto lines = lines_of(v.prefix);
  for (const auto& line : lines) {
    CHECK(line.size() < 998);
    CHECK(line.find('\r') == std::string::npos);
    CHECK(line.find('\n') == std::string::npos);
  }
  const auto fields = unfolded_fields(v.prefix);
  REQUIRE(fields.size() == 1);
  std::smatch m;
  INFO(fields[0]);
  REQUIRE(std::regex_match(fields[0], m, kReceived));
  CHECK(m[1].length() <= 255);
  CHECK(m[1].length() > 0);
}

TEST_CASE("unit: Received is folded before 78 columns where it can be", "[policy][unit]") {
  auto e = envelope();
  e.client_helo = "a-rather-long-client-name.department.example.com";
  e.recipients[0].address = addr("someone.with.a.long.name@subsidiary.example.org");
  const auto v = policy::submission_headers("", e, "relay-01.mail.example.com", kQid, {});
  const auto lines = lines_of(v.prefix);
  CHECK(lines.size() >= 2);
  CHECK(lines[0].rfind("Received: from ", 0) == 0);
  for (size_t i = 0; i < lines.size(); ++i) {
    INFO(lines[i]);
    CHECK(lines[i].size() <= 78);
    if (i > 0) CHECK(lines[i][0] == '\t');
  }
}

TEST_CASE("unit: Date and Message-ID are added only when missing", "[policy][unit]") {
  const auto [headers, want_date, want_id] = GENERATE(table<std::string, bool, bool>({
      {"Subject: hi\r\n\r\n", true, true},
      {"", true, true},
      {"Date: Mon, 1 Jan 2024 00:00:00 +0100\r\nSubject: hi\r\n\r\n", false, true},
      {"DATE: whatever\r\n\r\n", false, true},
      {"Message-ID: <a@b>\r\n\r\n", true, false},
      {"message-id:\r\n <folded@b>\r\n\r\n", true, false},
      {"Message-Id: <a@b>\r\ndate: x\r\n\r\n", false, false},
      // A field name only in the body or as a prefix of another name does not count.
      {"X-Date: x\r\nMessage-IDs: y\r\n\r\nDate: body\r\n", true, true},
  }));
  const auto v = policy::submission_headers(headers, envelope(), kHost, kQid, submission_options());
  REQUIRE_FALSE(v.refusal);
  const auto fields = unfolded_fields(v.prefix);
  std::vector<std::string> expected = {fields[0]};
  if (want_date) expected.push_back("Date: Tue, 14 Nov 2023 22:13:20 +0000");
  if (want_id) expected.push_back(std::string("Message-ID: <") + kQid + "@" + kHost + ">");
  CHECK(fields == expected);
  // Whatever is prepended must still parse as header fields in front of the message.
  const std::string message = v.prefix + headers;
  CHECK(core::parse_header_fields(message).size() >= fields.size());
}

TEST_CASE("unit: relay role adds nothing but Received", "[policy][unit]") {
  const auto v =
      policy::submission_headers("Subject: x\r\n\r\n", envelope(1, false, false), kHost, kQid, {});
  CHECK_FALSE(v.refusal);
  const auto fields = unfolded_fields(v.prefix);
  REQUIRE(fields.size() == 1);
  CHECK(fields[0].rfind("Received:", 0) == 0);
}

TEST_CASE("unit: From must be owned by the authenticated user", "[policy][unit]") {
  const auto [from, refusal] = GENERATE(table<std::string, std::string>({
      {"alice@example.com", ""},
      {"Alice <alice@example.com>", ""},
      {"ALICE@Example.COM", ""},
      {"\"Doe, Alice\" <alice@example.com>", ""},
      {"\"Alice \\\"the boss\\\" Doe\" <alice@example.com>", ""},
      {"=?UTF-8?B?w4FsaWNl?= <alice@example.com>", ""},
      {"=?ISO-8859-1?Q?Al=EDce?= <alice@example.com>", ""},
      {"alice@example.com (Alice Doe)", ""},
      {"Alice (work) <alice@example.com> (via app)", ""},
      {"\r\n Alice\r\n <alice@example.com>", ""},
      {"alice@example.com, orders@shop.example", ""},
      {"<@relay.example:alice@example.com>", ""},
      {"bob@example.com", "From header <bob@example.com> is not owned by user alice"},
      {"Alice <bob@example.com>", "From header <bob@example.com> is not owned by user alice"},
      {"alice@example.com, bob@example.com",
       "From header <bob@example.com> is not owned by user alice"},
      {"\"alice@example.com\" <mallory@evil.test>",
       "From header <mallory@evil.test> is not owned by user alice"},
      {"\"Alice, <alice@example.com>\" <mallory@evil.test>",
       "From header <mallory@evil.test> is not owned by user alice"},
      {"Alice (<alice@example.com>) <mallory@evil.test>",
       "From header <mallory@evil.test> is not owned by user alice"},
      {"orders@sub.shop.example",
       "From header <orders@sub.shop.example> is not owned by user alice"},
      {"", "From header cannot be parsed"},
      {"Alice", "From header cannot be parsed"},
      {"Alice <alice@example.com", "From header cannot be parsed"},
      {"<alice@example.com> <mallory@evil.test>", "From header cannot be parsed"},
      {"<alice@example.com> mallory@evil.test", "From header cannot be parsed"},
      {"Friends: alice@example.com;", "From header cannot be parsed"},
      {"\"unterminated <alice@example.com>", "From header cannot be parsed"},
  }));
  INFO("From:" << from);
  const std::string headers = "Subject: x\r\nFrom: " + from + "\r\nTo: y@remote.test\r\n\r\n";
  const auto v = policy::submission_headers(headers, envelope(), kHost, kQid, submission_options());
  if (refusal.empty()) {
    CHECK_FALSE(v.refusal);
    CHECK_FALSE(v.prefix.empty());
  } else {
    REQUIRE(v.refusal);
    CHECK(v.refusal->code == 553);
    CHECK(v.refusal->enhanced == "5.7.1");
    CHECK_THAT(v.refusal->text, Catch::StartsWith(refusal));
    CHECK_THAT(v.refusal->text, Catch::EndsWith("user alice"));
  }

  SECTION("without the ownership option nothing is refused") {
    auto options = submission_options();
    options.check_from_ownership = false;
    CHECK_FALSE(policy::submission_headers(headers, envelope(), kHost, kQid, options).refusal);
  }
}

TEST_CASE("unit: every From field is checked", "[policy][unit]") {
  const std::string headers = "From: alice@example.com\r\nfrom: bob@example.com\r\n\r\n";
  const auto v = policy::submission_headers(headers, envelope(), kHost, kQid, submission_options());
  REQUIRE(v.refusal);
  CHECK(v.refusal->text == "From header <bob@example.com> is not owned by user alice");
}

TEST_CASE("unit: a missing From is neither refused nor added", "[policy][unit]") {
  const auto v = policy::submission_headers("Subject: x\r\n\r\n", envelope(), kHost, kQid,
                                            submission_options());
  CHECK_FALSE(v.refusal);
  CHECK(v.prefix.find("From:") == std::string::npos);
}

TEST_CASE("unit: with no user, no From is owned", "[policy][unit]") {
  auto options = submission_options();
  options.user = nullptr;
  const auto v = policy::submission_headers("From: alice@example.com\r\n\r\n", envelope(), kHost,
                                            kQid, options);
  REQUIRE(v.refusal);
  CHECK(v.refusal->code == 553);
}

TEST_CASE("unit: the envelope sender must be owned; the null sender is allowed", "[policy][unit]") {
  CHECK_FALSE(policy::check_envelope_sender(kAlice, addr("alice@example.com")));
  CHECK_FALSE(policy::check_envelope_sender(kAlice, addr("alice@EXAMPLE.com")));
  CHECK_FALSE(policy::check_envelope_sender(kAlice, addr("anything@shop.example")));
  CHECK_FALSE(policy::check_envelope_sender(kAlice, core::Address{}));
  const auto r = policy::check_envelope_sender(kAlice, addr("ceo@example.com"));
  REQUIRE(r);
  CHECK(r->to_wire() ==
        "553 5.7.1 Sender address <ceo@example.com> is not owned by user alice\r\n");
}

TEST_CASE("unit: parse_mailbox_list extracts addr-specs", "[policy][unit]") {
  using List = std::vector<std::string>;
  const auto [value, expected] = GENERATE(table<std::string, List>({
      {"a@b.example", {"a@b.example"}},
      {"  a@b.example  ", {"a@b.example"}},
      {"A <a@b.example>, \"B, the second\" <b@b.example>", {"a@b.example", "b@b.example"}},
      {"a@b.example, , c@b.example", {"a@b.example", "c@b.example"}},
      {"\"quoted local\"@b.example", {"\"quoted local\"@b.example"}},
      {"x <\"q,l\"@b.example>", {"\"q,l\"@b.example"}},
      {"(comment, with <a@evil.test>) real@b.example", {"real@b.example"}},
      {"(nested (comment) here) real@b.example", {"real@b.example"}},
      {"J\xc3\xb6rg <j\xc3\xb6rg@b.example>", {"j\xc3\xb6rg@b.example"}},
  }));
  INFO(value);
  auto list = policy::parse_mailbox_list(value);
  REQUIRE(list.is_ok());
  List got;
  for (const auto& a : *list) got.push_back(a.str());
  CHECK(got == expected);
}
