#include "policy/local_recipients.h"

#include <catch2/catch.hpp>

namespace {

// `openssl passwd -6 -salt saltsalt secret`
constexpr const char* kHash =
    "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq."
    "H91p5hVO1";

core::Address addr(const char* s) { return core::parse_mailbox(s, true).value(); }

policy::UserDb users() {
  std::vector<policy::User> u = {
      {"alice", kHash, {"alice@example.com", "a.smith@example.com", "@example.com"}, 1 << 20},
      {"Bob", kHash, {"bob@example.com", "bob@elsewhere.org"}},
      {"carol", kHash, {"carol@example.net", "shared@example.com"}},
      {"dave", kHash, {"shared@example.com"}},
      {"eve", kHash, {}},
  };
  return policy::UserDb::create(std::move(u)).value();
}

const std::vector<std::string> kDomains = {"example.com", "Example.NET"};

policy::LocalRecipients make(const std::vector<policy::LocalAlias>& aliases = {},
                             std::string_view delimiter = "+", std::string_view catch_all = "") {
  const policy::UserDb db = users();
  auto r = policy::LocalRecipients::create(kDomains, db, aliases, delimiter, catch_all);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

using Logins = std::vector<std::string>;

}  // namespace

TEST_CASE("unit: users receive at their full addresses in local domains", "[policy][unit]") {
  const auto r = make();
  const auto [address, logins] = GENERATE(table<const char*, Logins>({
      {"alice@example.com", {"alice"}},
      {"a.smith@example.com", {"alice"}},
      {"bob@example.com", {"Bob"}},
      {"carol@example.net", {"carol"}},
      {"shared@example.com", {"carol", "dave"}},  // claimed by two users: both receive
      {"bob@elsewhere.org", {}},                  // not a local domain
      {"nobody@example.com", {}},                 // "@example.com" lets alice send, not receive
      {"alice@sub.example.com", {}},              // subdomains are not local
  }));
  INFO(address);
  CHECK(r.resolve(addr(address)) == logins);
  CHECK(r.resolve(core::Address{}).empty());
}

TEST_CASE("unit: local parts and domains compare ignoring ASCII case", "[policy][unit]") {
  const auto r = make();
  const auto address = GENERATE("ALICE@example.com", "Alice@EXAMPLE.com", "a.SMITH@Example.Com");
  INFO(address);
  CHECK(r.resolve(addr(address)) == Logins{"alice"});
  CHECK(r.is_local_domain("EXAMPLE.net"));
  CHECK_FALSE(r.is_local_domain("example.org"));
}

TEST_CASE("unit: aliases fan out to several users", "[policy][unit]") {
  const auto r = make({{"team@example.com", {"alice", "bob", "ALICE"}},
                       {"shared@example.com", {"eve"}},
                       {"Info@Example.NET", {"carol"}}});
  CHECK(r.resolve(addr("team@example.com")) == Logins{"alice", "Bob"});
  CHECK(r.resolve(addr("TEAM@example.com")) == Logins{"alice", "Bob"});
  CHECK(r.resolve(addr("info@example.net")) == Logins{"carol"});
  // Users who list the address and the alias's users all receive it.
  CHECK(r.resolve(addr("shared@example.com")) == Logins{"carol", "dave", "eve"});
}

TEST_CASE("unit: plus-addressing reaches the address before the delimiter", "[policy][unit]") {
  SECTION("default delimiter") {
    const auto r = make({{"team@example.com", {"carol", "dave"}}});
    CHECK(r.resolve(addr("alice+lists@example.com")) == Logins{"alice"});
    CHECK(r.resolve(addr("Alice+Lists+More@example.com")) == Logins{"alice"});
    CHECK(r.resolve(addr("team+x@example.com")) == Logins{"carol", "dave"});
    CHECK(r.resolve(addr("nobody+x@example.com")).empty());
    CHECK(r.resolve(addr("+x@example.com")).empty());  // nothing before the delimiter
  }
  SECTION("an exact match wins over the cut") {
    const auto r = make({{"alice+bulk@example.com", {"eve"}}});
    CHECK(r.resolve(addr("alice+bulk@example.com")) == Logins{"eve"});
    CHECK(r.resolve(addr("alice+other@example.com")) == Logins{"alice"});
  }
  SECTION("another delimiter") {
    const auto r = make({}, "-");
    CHECK(r.resolve(addr("alice-x@example.com")) == Logins{"alice"});
    CHECK(r.resolve(addr("alice+x@example.com")).empty());
  }
  SECTION("off") {
    const auto r = make({}, "");
    CHECK(r.resolve(addr("alice+x@example.com")).empty());
  }
}

TEST_CASE("unit: the catch-all takes unknown addresses of local domains only", "[policy][unit]") {
  const auto r = make({}, "+", "EVE");
  CHECK(r.resolve(addr("unknown@example.com")) == Logins{"eve"});
  CHECK(r.resolve(addr("unknown+tag@example.net")) == Logins{"eve"});
  CHECK(r.resolve(addr("alice@example.com")) == Logins{"alice"});  // known: not the catch-all
  CHECK(r.resolve(addr("unknown@example.org")).empty());
}

TEST_CASE("unit: quotas come from the users", "[policy][unit]") {
  const auto r = make();
  CHECK(r.quota_bytes("alice") == 1 << 20);
  CHECK(r.quota_bytes("ALICE") == 1 << 20);
  CHECK(r.quota_bytes("Bob") == 0);
  CHECK(r.quota_bytes("nobody") == 0);
}

TEST_CASE("unit: bad aliases, catch-alls and delimiters are refused", "[policy][unit]") {
  const policy::UserDb db = users();
  const auto [aliases, delimiter, catch_all, error] =
      GENERATE(table<std::vector<policy::LocalAlias>, const char*, const char*, const char*>({
          {{{"team@example.com", {"alice", "mallory"}}}, "+", "", "no user mallory"},
          {{{"team@example.org", {"alice"}}}, "+", "", "not in a local domain"},
          {{{"not an address", {"alice"}}}, "+", "", "is not an address"},
          {{{"team@example.com", {}}}, "+", "", "has no users"},
          {{}, "+", "mallory", "catch-all: no user mallory"},
          {{}, "@", "", "delimiter"},
          {{}, "++", "", "delimiter"},
      }));
  auto r = policy::LocalRecipients::create(kDomains, db, aliases, delimiter, catch_all);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(r.status().message(), Catch::Contains(error));
}
