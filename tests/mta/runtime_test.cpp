// load_runtime() over real files, and what a reload cannot change.
#include "mta/runtime.h"

#include <catch2/catch.hpp>

#include <fstream>

#include "tests/queue/queue_test_util.h"

namespace {

struct Files {
  queue_test::TempDir dir;
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir.path() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string config(const std::string& extra) {
    return write("porter.toml", "[server]\ndata_dir = \"" + dir.path() +
                                    "\"\n[[listener]]\nrole = \"relay\"\nport = 2525\n"
                                    "[relay]\nlocal_domains = [\"example.com\"]\n" +
                                    extra);
  }
};

}  // namespace

TEST_CASE("unit: a runtime holds the config, users and who receives local mail", "[mta][unit]") {
  Files f;
  const std::string users = f.write("users", "alice:$6$salt$hash:alice@example.com\n");
  auto rt = mta::load_runtime(f.config("[auth]\nusers_file = \"" + users + "\"\n"));
  INFO(rt.status().message());
  REQUIRE(rt);
  CHECK((*rt)->config->local_domains == std::vector<std::string>{"example.com"});
  CHECK((*rt)->users->find("alice") != nullptr);
  CHECK((*rt)->local->resolve(core::Address{"alice", "example.com"}) ==
        std::vector<std::string>{"alice"});
  CHECK((*rt)->dkim == nullptr);
  CHECK((*rt)->tls == nullptr);
}

TEST_CASE("unit: a runtime that cannot be built says why and which file", "[mta][unit]") {
  Files f;
  SECTION("a syntax error names the file and line") {
    auto rt = mta::load_runtime(f.config("[limits\n"));
    REQUIRE_FALSE(rt);
    CHECK_THAT(rt.status().message(), Catch::Contains("porter.toml:8: Error while parsing table header"));
  }
  SECTION("a missing users file") {
    auto rt = mta::load_runtime(f.config("[auth]\nusers_file = \"/nonexistent/users\"\n"));
    REQUIRE_FALSE(rt);
    CHECK_THAT(rt.status().message(), Catch::Contains("/nonexistent/users"));
  }
  SECTION("an alias for an unknown user") {
    auto rt = mta::load_runtime(
        f.config("[[alias]]\naddress = \"team@example.com\"\nusers = [\"nobody\"]\n"));
    REQUIRE_FALSE(rt);
    CHECK_THAT(rt.status().message(), Catch::Contains("nobody"));
  }
  SECTION("a DKIM key file that is not there") {
    auto rt = mta::load_runtime(f.config(
        "[[dkim]]\ndomain = \"example.com\"\nselector = \"s\"\nkey_file = \"/nonexistent.key\"\n"));
    REQUIRE_FALSE(rt);
    CHECK_THAT(rt.status().message(), Catch::Contains("/nonexistent.key"));
  }
}

TEST_CASE("unit: restart_needed names what a reload leaves as it was", "[mta][unit]") {
  mta::Config a;
  a.listeners.push_back({});
  mta::Config b = a;
  CHECK(mta::restart_needed(a, b).empty());
  b.listeners[0].port = 2526;
  b.threads = 3;
  b.user_messages = 10;
  CHECK(mta::restart_needed(a, b) == "listener, server.threads, rate");
  mta::Config c = a;
  c.local_domains = {"new.example"};
  c.log_level = "debug";
  CHECK(mta::restart_needed(a, c).empty());
}

TEST_CASE("unit: the runtime holder hands out the one set last", "[mta][unit]") {
  auto one = std::make_shared<mta::Runtime>();
  auto two = std::make_shared<mta::Runtime>();
  mta::RuntimeHolder h(one);
  auto kept = h.get();
  h.set(two);
  CHECK(h.get() == two);
  CHECK(kept == one);  // a session's snapshot is not changed by a reload
}
