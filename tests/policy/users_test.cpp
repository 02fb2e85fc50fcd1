#include "policy/users.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

namespace {

// Made with `openssl passwd -6 -salt saltsalt secret` (an implementation independent of
// libxcrypt).
constexpr const char* kSha512Secret =
    "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq."
    "H91p5hVO1";
// The bcrypt test vector of OpenBSD and crypt_blowfish: password "U*U".
constexpr const char* kBcryptUU = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

core::Address addr(const char* s) { return core::parse_mailbox(s, true).value(); }

policy::User user(std::string name, std::vector<std::string> addresses) {
  return {std::move(name), kSha512Secret, std::move(addresses)};
}

}  // namespace

TEST_CASE("unit: constant_time_equals compares whole strings", "[policy][unit]") {
  CHECK(policy::constant_time_equals("", ""));
  CHECK(policy::constant_time_equals("$6$abc", "$6$abc"));
  CHECK_FALSE(policy::constant_time_equals("$6$abc", "$6$abd"));
  CHECK_FALSE(policy::constant_time_equals("x$6$abc", "y$6$abc"));
  CHECK_FALSE(policy::constant_time_equals("$6$abc", "$6$ab"));
  CHECK_FALSE(policy::constant_time_equals("", "a"));
  CHECK_FALSE(policy::constant_time_equals(std::string_view("a\0b", 3), "a"));
  CHECK_FALSE(
      policy::constant_time_equals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST_CASE("unit: known hashes of other implementations verify", "[policy][unit]") {
  CHECK(policy::UserDb::verify_password("secret", kSha512Secret));
  CHECK_FALSE(policy::UserDb::verify_password("Secret", kSha512Secret));
  CHECK_FALSE(policy::UserDb::verify_password("secret ", kSha512Secret));
  CHECK_FALSE(policy::UserDb::verify_password("", kSha512Secret));
  CHECK(policy::UserDb::verify_password("U*U", kBcryptUU));
  CHECK_FALSE(policy::UserDb::verify_password("U*V", kBcryptUU));
}

TEST_CASE("unit: hash_password makes a yescrypt hash that verifies", "[policy][unit]") {
  auto h = policy::UserDb::hash_password("correct horse");
  REQUIRE(h.is_ok());
  CHECK(h->rfind("$y$", 0) == 0);
  CHECK(policy::UserDb::verify_password("correct horse", *h));
  CHECK_FALSE(policy::UserDb::verify_password("correct horsE", *h));
  CHECK_FALSE(policy::UserDb::verify_password("correct horse\n", *h));

  SECTION("salts differ between calls") {
    auto h2 = policy::UserDb::hash_password("correct horse");
    REQUIRE(h2.is_ok());
    CHECK(*h2 != *h);
    CHECK(policy::UserDb::verify_password("correct horse", *h2));
  }
  SECTION("a password is not cut at a NUL byte") {
    using namespace std::string_literals;
    CHECK_FALSE(policy::UserDb::verify_password("correct horse\0evil"s, *h));
    CHECK_FALSE(policy::UserDb::hash_password("a\0b"s).is_ok());
  }
  SECTION("an empty password is refused") {
    CHECK(policy::UserDb::hash_password("").status().kind() == core::Status::Kind::kInvalid);
  }
}

TEST_CASE("unit: unusable hashes never verify", "[policy][unit]") {
  const std::string hash = GENERATE(as<std::string>{}, "", "*", "!", "*0", "!$6$saltsalt$x", "$6$",
                                    "garbage", "$1$abc$xyz", "ab01FAX.bQRSU");
  INFO("hash: " << hash);
  CHECK_FALSE(policy::UserDb::verify_password("", hash));
  CHECK_FALSE(policy::UserDb::verify_password("secret", hash));
  CHECK_FALSE(policy::UserDb::verify_password("garbage", hash));
}

TEST_CASE("unit: UserDb finds logins ignoring case", "[policy][unit]") {
  auto db = policy::UserDb::create({user("alice", {"alice@example.com"}), user("Bob", {})});
  REQUIRE(db.is_ok());
  CHECK(db->size() == 2);
  REQUIRE(db->find("alice") != nullptr);
  CHECK(db->find("ALICE")->name == "alice");
  CHECK(db->find("bob")->name == "Bob");
  CHECK(db->find("carol") == nullptr);
  CHECK(db->find("") == nullptr);
  CHECK(db->find("alice ") == nullptr);

  SECTION("safe to read from several threads") {
    std::vector<std::thread> threads;
    std::atomic<int> found{0};
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 1000; ++i) found += db->find(i % 2 ? "alice" : "BOB") != nullptr;
      });
    for (auto& t : threads) t.join();
    CHECK(found == 4000);
  }
}

TEST_CASE("unit: UserDb::create refuses bad users", "[policy][unit]") {
  using Users = std::vector<policy::User>;
  const auto [users, message] = GENERATE(table<Users, std::string>({
      {Users{user("alice", {}), user("ALICE", {})}, "login ALICE is listed twice"},
      {Users{user("", {})}, "empty login"},
      {Users{user("a b", {})}, "holds a space"},
      {Users{user("a:b", {})}, "holds a space"},
      {Users{{"alice", "$1$abc$xyz", {}}}, "not a crypt(3) hash"},
      {Users{{"alice", "", {}}}, "not a crypt(3) hash"},
      {Users{user("alice", {"alice"})}, "malformed address \"alice\""},
      {Users{user("alice", {"@exa mple.com"})}, "malformed domain entry"},
      {Users{user("alice", {"a..b@example.com"})}, "malformed address"},
  }));
  auto db = policy::UserDb::create(users);
  REQUIRE_FALSE(db.is_ok());
  CHECK(db.status().kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(db.status().message(), Catch::Contains(message));
}

TEST_CASE("unit: may_send_as matches addresses and whole domains", "[policy][unit]") {
  const auto u = user("alice", {"alice@example.com", "@Shop.Example", "billing@example.org"});
  const auto [address, owned] = GENERATE(table<const char*, bool>({
      {"alice@example.com", true},
      {"alice@EXAMPLE.COM", true},
      {"Alice@example.com", true},  // local parts compare ASCII-case-insensitively
      {"bob@example.com", false},
      {"alice@example.org", false},
      {"billing@example.org", true},
      {"anyone@shop.example", true},
      {"anyone@sub.shop.example", false},  // a domain entry does not cover subdomains
      {"alice@example.com.evil", false},
      {"alice@xample.com", false},
  }));
  INFO(address);
  CHECK(policy::may_send_as(u, addr(address)) == owned);
  CHECK_FALSE(policy::may_send_as(u, core::Address{}));
}

TEST_CASE("unit: load_users_file reads login:hash:addresses lines", "[policy][unit]") {
  const std::string text = std::string("# users of example.com\r\n") +
                           "\n"
                           "alice:" +
                           kSha512Secret +
                           ":alice@example.com, @shop.example\r\n"
                           "   # indented comment\n"
                           " bob : " +
                           kBcryptUU +
                           " : \n"
                           "carol:" +
                           kBcryptUU + ":carol@example.com";
  auto users = policy::load_users_file(text);
  REQUIRE(users.is_ok());
  REQUIRE(users->size() == 3);
  CHECK((*users)[0].name == "alice");
  CHECK((*users)[0].password_hash == kSha512Secret);
  CHECK((*users)[0].addresses == std::vector<std::string>{"alice@example.com", "@shop.example"});
  CHECK((*users)[1].name == "bob");
  CHECK((*users)[1].password_hash == kBcryptUU);
  CHECK((*users)[1].addresses.empty());
  CHECK((*users)[2].addresses == std::vector<std::string>{"carol@example.com"});
  CHECK(policy::UserDb::create(std::move(*users)).is_ok());
}

TEST_CASE("unit: load_users_file names the bad line", "[policy][unit]") {
  const std::string good = std::string("alice:") + kSha512Secret + ":alice@example.com\n";
  const auto [bad_line, message] = GENERATE(table<std::string, std::string>({
      {"bob", "line 3: expected login:hash:addresses"},
      {"bob:hash", "line 3: expected login:hash:addresses"},
      {"bob:notahash:", "line 3: password hash of bob"},
      {std::string("bob:") + kBcryptUU + ":bob@", "line 3: user bob: malformed address"},
      {std::string("bob:") + kBcryptUU + ":a@example.com,,b@example.com", "line 3: empty entry"},
      {std::string(":") + kBcryptUU + ":", "line 3: empty login"},
      {std::string("Alice:") + kBcryptUU + ":", "line 3: login Alice already given on line 1"},
  }));
  auto users = policy::load_users_file(good + "# comment\n" + bad_line + "\n");
  REQUIRE_FALSE(users.is_ok());
  CHECK_THAT(users.status().message(), Catch::StartsWith(message));
}

TEST_CASE("unit: an empty users file holds no users", "[policy][unit]") {
  auto users = policy::load_users_file("# nobody yet\n\n");
  REQUIRE(users.is_ok());
  CHECK(users->empty());
}
