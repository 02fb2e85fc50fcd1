// CaresResolver against a real DNS server on loopback (fake_dns_server.py serving test.zone).

#include "dns/cares_resolver.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <set>

#include "core/clock.h"
#include "dns/cache.h"
#include "dns/mx.h"
#include "dns_test_support.h"

namespace dns {
namespace {

using Kind = core::Status::Kind;

std::string server_address() {
  const test::FakeDnsServer& server = test::FakeDnsServer::shared();
  INFO(server.error());
  REQUIRE_FALSE(server.address().empty());
  return server.address();
}

struct CaresFixture {
  explicit CaresFixture(int timeout_ms = 1000, int tries = 2) {
    auto created = CaresResolver::create(loop.get(), {{server_address()}, timeout_ms, tries});
    INFO(created.status().to_string());
    REQUIRE(created);
    resolver = std::move(created).value();
  }

  // Issues one query and runs the loop until its answer is in.
  template <typename T>
  core::Result<Answer<T>> wait(void (Resolver::*ask)(const std::string&, AnswerCallback<T>),
                               const std::string& name) {
    std::optional<core::Result<Answer<T>>> got;
    ((*resolver).*ask)(name, [&](core::Result<Answer<T>> r) { got = std::move(r); });
    REQUIRE_FALSE(got);  // never inside the call
    REQUIRE(loop.run_until([&] { return got.has_value(); }));
    return std::move(*got);
  }
  core::Result<MxAnswer> mx(const std::string& n) { return wait(&Resolver::query_mx, n); }
  core::Result<AddressAnswer> a(const std::string& n) { return wait(&Resolver::query_a, n); }
  core::Result<AddressAnswer> aaaa(const std::string& n) { return wait(&Resolver::query_aaaa, n); }
  core::Result<TxtAnswer> txt(const std::string& n) { return wait(&Resolver::query_txt, n); }

  test::TestLoop loop;
  std::unique_ptr<CaresResolver> resolver;  // destroyed before the loop closes
};

TEST_CASE("integration: c-ares resolves MX with their TTL", "[dns][integration]") {
  CaresFixture f;
  const auto r = f.mx("example.test");
  REQUIRE(r);
  const std::multiset<std::pair<uint16_t, std::string>> got = [&] {
    std::multiset<std::pair<uint16_t, std::string>> s;
    for (const MxRecord& m : r->records) s.emplace(m.preference, m.host);
    return s;
  }();
  CHECK(got == std::multiset<std::pair<uint16_t, std::string>>{{10, "mx1.example.test"},
                                                               {20, "mx2.example.test"},
                                                               {20, "mx3.example.test"},
                                                               {30, "mx4.example.test"}});
  CHECK(r->ttl == 250);

  const auto null_mx = f.mx("nullmx.test");
  REQUIRE(null_mx);
  CHECK(null_mx->records == std::vector<MxRecord>{{0, "."}});
}

TEST_CASE("integration: c-ares resolves A, AAAA, TXT and CNAME", "[dns][integration]") {
  CaresFixture f;
  SECTION("A, several records, smallest TTL") {
    const auto r = f.a("multi.example.test");
    REQUIRE(r);
    CHECK(std::set<std::string>(r->records.begin(), r->records.end()) ==
          std::set<std::string>{"127.0.0.6", "127.0.0.7"});
    CHECK(r->ttl == 30);
  }
  SECTION("AAAA") {
    const auto r = f.aaaa("MX1.example.test.");
    REQUIRE(r);
    CHECK(r->records == std::vector<std::string>{"::1"});
    CHECK(r->ttl == 90);
  }
  SECTION("TXT: strings of one RR joined, RRs kept apart") {
    const auto r = f.txt("txt.example.test");
    REQUIRE(r);
    CHECK(std::set<std::string>(r->records.begin(), r->records.end()) ==
          std::set<std::string>{"v=spf1 ip4:127.0.0.0/8 -all", "second record"});
    CHECK(r->ttl == 500);
  }
  SECTION("A through a CNAME takes the smaller TTL of the chain") {
    const auto r = f.a("alias.example.test");
    REQUIRE(r);
    CHECK(r->records == std::vector<std::string>{"127.0.0.3"});
    CHECK(r->ttl == 40);
  }
}

TEST_CASE("integration: c-ares negative answers", "[dns][integration]") {
  CaresFixture f;
  SECTION("NXDOMAIN is not_found") {
    const auto r = f.mx("nosuch.test");
    CHECK(r.status().kind() == Kind::kNotFound);
    CHECK_THAT(r.status().message(), Catch::Contains("NXDOMAIN"));
  }
  SECTION("NODATA is an empty answer with the SOA's negative TTL") {
    const auto r = f.mx("implicit.test");
    REQUIRE(r);
    CHECK(r->records.empty());
    CHECK(r->ttl == 120);
  }
}

TEST_CASE("integration: c-ares SERVFAIL is temporary", "[dns][integration]") {
  CaresFixture f;
  const auto start = std::chrono::steady_clock::now();
  const auto r = f.a("broken.test");
  CHECK(r.status().kind() == Kind::kTemporary);
  CHECK_THAT(r.status().message(), Catch::Contains("SERVFAIL"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(900));
}

TEST_CASE("integration: c-ares timeout is temporary and on time", "[dns][integration]") {
  CaresFixture f(/*timeout_ms=*/300, /*tries=*/1);
  const auto start = std::chrono::steady_clock::now();
  const auto r = f.mx("slow.test");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(r.status().kind() == Kind::kTemporary);
  CHECK_THAT(r.status().message(), Catch::Contains("timeout"));
  CHECK(elapsed >= std::chrono::milliseconds(250));
  CHECK(elapsed < std::chrono::milliseconds(1000));
}

TEST_CASE("integration: c-ares answers many concurrent queries", "[dns][integration]") {
  CaresFixture f;
  int answered = 0, wrong = 0;
  constexpr int kQueries = 40;
  for (int i = 0; i < kQueries; ++i) {
    const std::string host = "mx" + std::to_string(1 + i % 4) + ".example.test";
    const std::string expected = "127.0.0." + std::to_string(2 + i % 4);
    f.resolver->query_a(host, [&, expected](core::Result<AddressAnswer> r) {
      ++answered;
      if (!r || r->records != std::vector<std::string>{expected}) ++wrong;
    });
  }
  REQUIRE(f.loop.run_until([&] { return answered == kQueries; }));
  CHECK(wrong == 0);
}

TEST_CASE("integration: destroying a c-ares resolver mid-query closes cleanly",
          "[dns][integration]") {
  test::TestLoop loop;
  bool called = false;
  {
    auto resolver = CaresResolver::create(loop.get(), {{server_address()}, 1000, 2});
    REQUIRE(resolver);
    (*resolver)->query_mx("slow.test", [&](core::Result<MxAnswer>) { called = true; });
    loop.run_until([] { return false; }, 50);  // the query is on the wire
  }
  CHECK(loop.close() == 0);  // every uv handle of the resolver was closed
  CHECK_FALSE(called);
}

TEST_CASE("integration: c-ares options are checked", "[dns][integration]") {
  test::TestLoop loop;
  SECTION("a bad server list") {
    auto resolver = CaresResolver::create(loop.get(), {{"not an address"}, 1000, 2});
    CHECK(resolver.status().kind() == Kind::kInvalid);
    CHECK_THAT(resolver.status().message(), Catch::Contains("not an address"));
  }
  SECTION("a zero timeout") {
    CHECK(CaresResolver::create(loop.get(), {{}, 0, 2}).status().kind() == Kind::kInvalid);
  }
  SECTION("no servers: those of /etc/resolv.conf (or c-ares's default)") {
    CHECK(CaresResolver::create(loop.get(), {}));
  }
  CHECK(loop.close() == 0);
}

// The whole stack as delivery will use it: route over the cache over c-ares.
struct RouteStack : CaresFixture {
  RouteStack() : poster(loop.get()), cache(*resolver, poster, clock) {}

  Route resolve(const std::string& domain) {
    std::optional<Route> route;
    resolve_route(cache, domain, options, rng, [&](Route r) { route = std::move(r); });
    REQUIRE(loop.run_until([&] { return route.has_value(); }));
    return *route;
  }

  LoopPoster poster;
  core::SystemClock clock;
  CachingResolver cache;
  RouteOptions options;
  std::mt19937 rng{42};
};

TEST_CASE("integration: resolve_route over c-ares", "[dns][integration]") {
  RouteStack s;
  SECTION("MX by preference, a host's IPv6 before its IPv4, cached the second time") {
    for (int round = 0; round < 2; ++round) {
      const Route route = s.resolve("example.test");
      REQUIRE(route.outcome == RouteOutcome::kOk);
      REQUIRE(route.hops.size() == 5);
      CHECK(route.hops[0] == RouteHop{"mx1.example.test", "::1", 10});
      CHECK(route.hops[1] == RouteHop{"mx1.example.test", "127.0.0.2", 10});
      CHECK(std::set<std::string>{route.hops[2].ip, route.hops[3].ip} ==
            std::set<std::string>{"127.0.0.3", "127.0.0.4"});
      CHECK(route.hops[4] == RouteHop{"mx4.example.test", "127.0.0.5", 30});
    }
    CHECK(s.cache.stats().misses == 1 + 4 * 2);  // MX, then A and AAAA of 4 hosts, once
  }
  SECTION("implicit MX") {
    const Route route = s.resolve("implicit.test");
    REQUIRE(route.outcome == RouteOutcome::kOk);
    CHECK(route.hops == std::vector<RouteHop>{{"implicit.test", "127.0.0.8", 0}});
  }
  SECTION("failures") {
    struct Case {
      std::string domain;
      RouteOutcome outcome;
    };
    auto c = GENERATE(values<Case>({{"nullmx.test", RouteOutcome::kNullMx},
                                    {"nosuch.test", RouteOutcome::kNoSuchDomain},
                                    {"nohost.test", RouteOutcome::kUnroutable},
                                    {"broken.test", RouteOutcome::kTemporary}}));
    INFO(c.domain);
    const Route route = s.resolve(c.domain);
    CHECK(route.outcome == c.outcome);
    CHECK(route.hops.empty());
    CHECK_FALSE(route.detail.empty());
  }
}

}  // namespace
}  // namespace dns
