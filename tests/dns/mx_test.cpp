#include "dns/mx.h"

#include <catch2/catch.hpp>
#include <map>
#include <optional>

#include "dns/fake_resolver.h"
#include "dns/post.h"

namespace dns {
namespace {

std::vector<std::string> hosts_of(const MxOrder& order) {
  std::vector<std::string> out;
  for (const MxRecord& r : order.hosts) out.push_back(r.host);
  return out;
}

TEST_CASE("unit: order_mx sorts by ascending preference", "[dns][unit]") {
  std::mt19937 rng(1);
  const MxOrder order = order_mx({{30, "c.test"}, {10, "a.test"}, {20, "b.test"}}, rng, {});
  CHECK(order.outcome == MxOutcome::kOk);
  CHECK(hosts_of(order) == std::vector<std::string>{"a.test", "b.test", "c.test"});
}

TEST_CASE("unit: order_mx shuffles equal preferences uniformly", "[dns][unit]") {
  std::mt19937 rng(12345);
  const std::vector<MxRecord> records = {
      {20, "b1.test"}, {10, "primary.test"}, {20, "b2.test"}, {20, "b3.test"}, {30, "last.test"}};
  constexpr int kRounds = 2000;
  std::map<std::string, int> first_backup;
  for (int i = 0; i < kRounds; ++i) {
    const MxOrder order = order_mx(records, rng, {});
    REQUIRE(order.hosts.size() == 5);
    // Preference classes never mix, whatever the shuffle did.
    REQUIRE(order.hosts.front().host == "primary.test");
    REQUIRE(order.hosts.back().host == "last.test");
    ++first_backup[order.hosts[1].host];
  }
  // Each of three equal hosts leads about a third of the time: 667 expected, sd about 21;
  // the bounds are about 5 sd wide so that the test is not flaky for any seed.
  REQUIRE(first_backup.size() == 3);
  for (const auto& [host, count] : first_backup) {
    INFO(host << " first " << count << " times of " << kRounds);
    CHECK(count > 560);
    CHECK(count < 775);
  }
}

TEST_CASE("unit: order_mx recognises a null MX", "[dns][unit]") {
  std::mt19937 rng(1);
  SECTION("a single root record is a null MX") {
    auto host = GENERATE(".", "");
    CHECK(order_mx({{0, host}}, rng, {}).outcome == MxOutcome::kNullMx);
  }
  SECTION("a root record among others is dropped") {
    const MxOrder order = order_mx({{0, "."}, {10, "mx.test"}}, rng, {});
    CHECK(order.outcome == MxOutcome::kOk);
    CHECK(hosts_of(order) == std::vector<std::string>{"mx.test"});
  }
  SECTION("no records is not a null MX (the caller applies the implicit MX)") {
    const MxOrder order = order_mx({}, rng, {});
    CHECK(order.outcome == MxOutcome::kOk);
    CHECK(order.hosts.empty());
  }
}

TEST_CASE("unit: order_mx keeps only hosts more preferred than ourselves", "[dns][unit]") {
  std::mt19937 rng(1);
  const std::vector<MxRecord> records = {
      {10, "a.test"}, {20, "me.test"}, {20, "peer.test"}, {30, "c.test"}};
  SECTION("we are a backup: only better hosts remain") {
    auto self = GENERATE("me.test", "ME.Test.", "me.test.");
    const MxOrder order = order_mx(records, rng, {"other.test", self});
    CHECK(order.outcome == MxOutcome::kOk);
    CHECK(hosts_of(order) == std::vector<std::string>{"a.test"});
  }
  SECTION("we are the most preferred: mail loops back to us") {
    const MxOrder order = order_mx({{10, "me.test"}, {20, "b.test"}}, rng, {"me.test"});
    CHECK(order.outcome == MxOutcome::kLoopsToSelf);
    CHECK(order.hosts.empty());
  }
  SECTION("we share the best preference with another host: still a loop") {
    const MxOrder order = order_mx({{10, "me.test"}, {10, "b.test"}}, rng, {"me.test"});
    CHECK(order.outcome == MxOutcome::kLoopsToSelf);
  }
  SECTION("listed twice, our best preference counts") {
    const MxOrder order = order_mx(
        {{5, "a.test"}, {10, "me.test"}, {30, "me.test"}, {20, "b.test"}}, rng, {"me.test"});
    CHECK(hosts_of(order) == std::vector<std::string>{"a.test"});
  }
}

// resolve_route over a FakeResolver, drained by hand.
struct RouteFixture {
  ManualPoster poster;
  FakeResolver dns{poster};
  std::mt19937 rng{7};
  RouteOptions options;

  Route resolve(const std::string& domain) {
    std::optional<Route> route;
    resolve_route(dns, domain, options, rng, [&](Route r) { route = std::move(r); });
    REQUIRE_FALSE(route);  // never answered inside the call
    poster.run_pending();
    REQUIRE(route);
    return *route;
  }
};

TEST_CASE("unit: resolve_route lists hosts by preference, IPv6 then IPv4", "[dns][unit]") {
  RouteFixture f;
  f.dns.add_mx("example.test", 20, "mx2.example.test");
  f.dns.add_mx("example.test", 10, "mx1.example.test");
  f.dns.add_a("mx1.example.test", "192.0.2.1");
  f.dns.add_aaaa("mx1.example.test", "2001:db8::1");
  f.dns.add_a("mx2.example.test", "192.0.2.2");
  f.dns.add_a("mx2.example.test", "192.0.2.3");

  SECTION("both families, IPv6 first") {
    const Route route = f.resolve("example.test");
    CHECK(route.outcome == RouteOutcome::kOk);
    CHECK(route.hops == std::vector<RouteHop>{{"mx1.example.test", "2001:db8::1", 10},
                                              {"mx1.example.test", "192.0.2.1", 10},
                                              {"mx2.example.test", "192.0.2.2", 20},
                                              {"mx2.example.test", "192.0.2.3", 20}});
  }
  SECTION("IPv4 preferred") {
    f.options.prefer_ipv6 = false;
    const Route route = f.resolve("example.test");
    REQUIRE(route.hops.size() == 4);
    CHECK(route.hops[0].ip == "192.0.2.1");
    CHECK(route.hops[1].ip == "2001:db8::1");
  }
  SECTION("IPv4 only: no AAAA query at all") {
    f.options.use_ipv6 = false;
    const Route route = f.resolve("example.test");
    CHECK(route.hops.size() == 3);
    for (const std::string& q : f.dns.queries()) CHECK(q.rfind("AAAA", 0) != 0);
  }
  SECTION("an address shared by two hosts is tried once") {
    f.dns.add_a("mx2.example.test", "192.0.2.1");
    const Route route = f.resolve("example.test");
    CHECK(route.hops.size() == 4);
  }
}

TEST_CASE("unit: resolve_route outcomes", "[dns][unit]") {
  RouteFixture f;
  f.dns.add_a("implicit.test", "192.0.2.8");
  f.dns.add_mx("nullmx.test", 0, ".");
  f.dns.add_mx("self.test", 10, "mx.self.test");
  f.dns.add_mx("nohost.test", 10, "missing.nohost.test");
  f.dns.add_mx("halfbroken.test", 10, "broken.halfbroken.test");
  f.dns.add_mx("halfbroken.test", 20, "good.halfbroken.test");
  f.dns.add_a("good.halfbroken.test", "192.0.2.20");
  f.dns.add_a("broken.halfbroken.test", "192.0.2.19");
  f.dns.set_fault("broken.halfbroken.test", FakeResolver::Fault::kServfail);
  f.dns.add_mx("allbroken.test", 10, "broken.halfbroken.test");
  f.dns.add_mx("allbroken.test", 20, "missing.nohost.test");
  f.dns.set_fault("servfail.test", FakeResolver::Fault::kServfail);
  f.dns.set_fault("timeout.test", FakeResolver::Fault::kTimeout);
  f.options.self_names = {"mx.self.test"};

  struct Case {
    std::string domain;
    RouteOutcome outcome;
    size_t hops;
  };
  auto c = GENERATE(values<Case>({
      {"implicit.test", RouteOutcome::kOk, 1},
      {"nullmx.test", RouteOutcome::kNullMx, 0},
      {"nosuch.test", RouteOutcome::kNoSuchDomain, 0},
      {"self.test", RouteOutcome::kLoopsToSelf, 0},
      {"nohost.test", RouteOutcome::kUnroutable, 0},
      {"halfbroken.test", RouteOutcome::kOk, 1},
      {"allbroken.test", RouteOutcome::kTemporary, 0},
      {"servfail.test", RouteOutcome::kTemporary, 0},
      {"timeout.test", RouteOutcome::kTemporary, 0},
  }));
  INFO(c.domain);
  const Route route = f.resolve(c.domain);
  CHECK(route.outcome == c.outcome);
  CHECK(route.hops.size() == c.hops);
  CHECK(route.detail.empty() == (c.outcome == RouteOutcome::kOk));
  if (c.domain == "implicit.test") {
    CHECK(route.hops[0] == RouteHop{"implicit.test", "192.0.2.8", 0});
  }
  if (c.domain == "halfbroken.test") CHECK(route.hops[0].host == "good.halfbroken.test");
}

}  // namespace
}  // namespace dns
