#include "policy/apps.h"

#include <catch2/catch.hpp>
#include <cctype>
#include <string>
#include <vector>

namespace {

using policy::App;
using policy::AppDb;
using policy::AppQuota;

// SHA-512-crypt of "change-me-alice" (etc/porter.toml's example).
const std::string kHash =
    "$6$Xq3vR9tLm2$R5z92KkMDu/DKiAWgwy8EADx8.ZvdMHOYGvey1zVZOkEhXNW93tsqJY8B6JMKtWBKdZ9bH/"
    "G6qNNnNf0xbBXF/";

App app(std::string name, std::vector<std::string> senders = {"@billing.example"}) {
  App a;
  a.name = std::move(name);
  a.password_hash = kHash;
  a.senders = std::move(senders);
  return a;
}

core::Address addr(const std::string& s) {
  auto a = core::parse_mailbox(s, true);
  REQUIRE(a.is_ok());
  return *a;
}

}  // namespace

TEST_CASE("unit: sha256_hex is the standard digest in lower-case hex", "[policy][unit]") {
  CHECK(policy::sha256_hex("") ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(policy::sha256_hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("unit: AppDb refuses invalid apps and says why", "[policy][unit]") {
  auto [mutate, expected] = GENERATE(table<void (*)(App&), std::string>({
      {[](App& a) { a.name = ""; }, "empty name"},
      {[](App& a) { a.name = "bad name"; }, "holds a space"},
      {[](App& a) { a.senders.clear(); }, "no senders"},
      {[](App& a) { a.senders = {"not an address"}; }, "sender \"not an address\""},
      {[](App& a) { a.senders = {"@bad..domain"}; }, "sender \"@bad..domain\""},
      {[](App& a) { a.password_hash = "$1$legacy$md5"; }, "not a crypt(3) hash"},
      {[](App& a) { a.password_hash.clear(); }, "neither a password nor an api_key_sha256"},
      {[](App& a) { a.api_key_sha256 = "abc"; }, "64 hex digits"},
      {[](App& a) { a.tags = {"two words"}; }, "tag \"two words\""},
  }));
  App a = app("billing");
  mutate(a);
  auto db = AppDb::create({a});
  REQUIRE_FALSE(db);
  INFO(db.status().message());
  CHECK(db.status().message().find(expected) != std::string::npos);
}

TEST_CASE("unit: AppDb refuses a name or an API key given twice", "[policy][unit]") {
  SECTION("names compare ignoring ASCII case") {
    auto db = AppDb::create({app("billing"), app("Billing")});
    REQUIRE_FALSE(db);
    CHECK(db.status().message() == "app Billing is listed twice");
  }
  SECTION("two apps with one key hash (compared after lower-casing)") {
    App a = app("a"), b = app("b");
    a.api_key_sha256 = policy::sha256_hex("k");
    b.api_key_sha256 = policy::sha256_hex("k");
    for (char& c : b.api_key_sha256) c = static_cast<char>(std::toupper(c));
    auto db = AppDb::create({a, b});
    REQUIRE_FALSE(db);
    CHECK(db.status().message() == "app b has the api_key_sha256 of another app");
  }
}

TEST_CASE("unit: AppDb finds apps by login and by API key", "[policy][unit]") {
  App billing = app("billing");
  billing.api_key_sha256 = policy::sha256_hex("secret-key-1");
  App alerts = app("alerts", {"alerts@example.com"});
  alerts.password_hash.clear();
  // Upper-case hex in the config is accepted.
  alerts.api_key_sha256 = policy::sha256_hex("secret-key-2");
  for (char& c : alerts.api_key_sha256) c = static_cast<char>(std::toupper(c));
  auto db = AppDb::create({billing, alerts});
  REQUIRE(db);
  REQUIRE(db->size() == 2);

  CHECK(db->find_by_login("BILLING") == &db->all()[0]);
  CHECK(db->find_by_login("alerts") == &db->all()[1]);
  CHECK(db->find_by_login("nobody") == nullptr);

  CHECK(db->find_by_api_key("secret-key-1") == &db->all()[0]);
  CHECK(db->find_by_api_key("secret-key-2") == &db->all()[1]);
  CHECK(db->find_by_api_key("secret-key-3") == nullptr);
  CHECK(db->find_by_api_key("") == nullptr);
  // The stored hash is not itself a key.
  CHECK(db->find_by_api_key(billing.api_key_sha256) == nullptr);
}

TEST_CASE("unit: may_send_as covers full addresses and whole domains", "[policy][unit]") {
  const App a = app("billing", {"@billing.example", "noreply@example.com"});
  auto [address, allowed] = GENERATE(table<std::string, bool>({
      {"invoice@billing.example", true},
      {"Invoice@BILLING.example", true},
      {"noreply@example.com", true},
      {"NoReply@Example.COM", true},
      {"other@example.com", false},
      {"x@sub.billing.example", false},
      {"x@billing.example.org", false},
  }));
  INFO(address);
  CHECK(AppDb::may_send_as(a, addr(address)) == allowed);
  CHECK_FALSE(AppDb::may_send_as(a, core::Address{}));
}

TEST_CASE("unit: as_user makes the app a login with its senders", "[policy][unit]") {
  const policy::User u = AppDb::as_user(app("billing", {"@billing.example"}));
  CHECK(u.name == "billing");
  CHECK(u.password_hash == kHash);
  CHECK(u.addresses == std::vector<std::string>{"@billing.example"});
  CHECK(policy::may_send_as(u, addr("a@billing.example")));
}

TEST_CASE("unit: AppQuota enforces messages per minute over a sliding minute", "[policy][unit]") {
  AppQuota q;
  App a = app("billing");
  a.messages_per_minute = 3;
  const int64_t t0 = 1'700'000'000'000;  // on a second boundary
  for (int i = 0; i < 3; ++i) CHECK(q.take(a, t0 + i * 10'000).allowed);
  const auto refused = q.take(a, t0 + 30'000);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.period == AppQuota::Period::kMinute);
  CHECK(refused.limit == 3);
  // The first message (at t0) leaves the window 61 s after it was counted, at the latest.
  CHECK(refused.retry_after_ms == 31'000);
  CHECK_FALSE(q.take(a, t0 + 60'999).allowed);
  CHECK(q.take(a, t0 + 61'000).allowed);
  CHECK(q.usage("BILLING", t0 + 61'000).minute == 3);
  SECTION("another app is counted apart") {
    App b = app("alerts");
    b.messages_per_minute = 1;
    CHECK(q.take(b, t0 + 61'000).allowed);
    CHECK_FALSE(q.take(b, t0 + 61'001).allowed);
  }
  SECTION("a refused message is not counted") { CHECK(q.usage("billing", t0 + 61'000).day == 4); }
}

TEST_CASE("unit: AppQuota enforces messages per day over a sliding 24 hours", "[policy][unit]") {
  AppQuota q;
  App a = app("billing");
  a.messages_per_day = 2;
  const int64_t t0 = 1'700'000'100'000;  // on a 5-minute boundary
  REQUIRE(t0 % AppQuota::kDaySlotMs == 0);
  CHECK(q.take(a, t0).allowed);
  CHECK(q.take(a, t0 + 3'600'000).allowed);
  const auto refused = q.take(a, t0 + 7'200'000);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.period == AppQuota::Period::kDay);
  CHECK(refused.limit == 2);
  const int64_t day_and_slot = 86'400'000 + AppQuota::kDaySlotMs;
  CHECK(refused.retry_after_ms == day_and_slot - 7'200'000);
  CHECK_FALSE(q.take(a, t0 + day_and_slot - 1).allowed);
  CHECK(q.take(a, t0 + day_and_slot).allowed);
  SECTION("a limit set later (a reload) sees the messages counted before") {
    App unlimited = app("news");
    for (int i = 0; i < 5; ++i) CHECK(q.take(unlimited, t0 + i).allowed);
    unlimited.messages_per_day = 5;
    CHECK_FALSE(q.take(unlimited, t0 + 10).allowed);
    CHECK(q.usage("news", t0 + 10).day == 5);
  }
  SECTION("the minute limit is checked first") {
    App both = app("both");
    both.messages_per_minute = 1;
    both.messages_per_day = 1;
    CHECK(q.take(both, t0).allowed);
    CHECK(q.take(both, t0 + 1).period == AppQuota::Period::kMinute);
    CHECK(q.take(both, t0 + 120'000).period == AppQuota::Period::kDay);
  }
}
