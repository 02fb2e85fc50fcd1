#include "dns/cache.h"

#include <catch2/catch.hpp>
#include <optional>

#include "core/clock.h"
#include "dns/fake_resolver.h"
#include "dns/post.h"

namespace dns {
namespace {

using Fault = FakeResolver::Fault;

struct CacheFixture {
  explicit CacheFixture(CacheOptions options = {}) : cache(upstream, poster, clock, options) {
    upstream.add_mx("example.test", 10, "mx1.example.test", 600);
    upstream.add_a("mx1.example.test", "192.0.2.1", 60);
    upstream.set_negative_ttl(120);
  }

  core::Result<MxAnswer> mx(const std::string& name) {
    std::optional<core::Result<MxAnswer>> got;
    cache.query_mx(name, [&](core::Result<MxAnswer> r) { got = std::move(r); });
    REQUIRE_FALSE(got);  // never inside the call, not even on a hit
    poster.run_pending();
    REQUIRE(got);
    return *got;
  }
  core::Result<AddressAnswer> a(const std::string& name) {
    std::optional<core::Result<AddressAnswer>> got;
    cache.query_a(name, [&](core::Result<AddressAnswer> r) { got = std::move(r); });
    poster.run_pending();
    REQUIRE(got);
    return *got;
  }
  size_t upstream_queries() const { return upstream.queries().size(); }

  ManualPoster poster;
  core::FakeClock clock;
  FakeResolver upstream{poster};
  CachingResolver cache;
};

TEST_CASE("unit: cache answers from memory until the TTL runs out", "[dns][unit]") {
  CacheFixture f;
  auto first = f.mx("example.test");
  REQUIRE(first);
  CHECK(first->ttl == 600);
  CHECK(f.upstream_queries() == 1);

  f.clock.advance_ms(100'500);
  auto second = f.mx("EXAMPLE.test.");  // same name, other spelling
  REQUIRE(second);
  CHECK(second->records == first->records);
  CHECK(second->ttl == 500);  // what is left, rounded up
  CHECK(f.upstream_queries() == 1);
  CHECK(f.cache.stats().hits == 1);

  f.clock.advance_ms(499'500);  // exactly 600 s after the answer
  REQUIRE(f.mx("example.test"));
  CHECK(f.upstream_queries() == 2);

  SECTION("types are cached apart") {
    REQUIRE(f.a("mx1.example.test"));
    REQUIRE(f.a("mx1.example.test"));
    CHECK(f.upstream_queries() == 3);
  }
}

TEST_CASE("unit: cache caps TTLs", "[dns][unit]") {
  CacheOptions options;
  options.max_ttl = 30;
  CacheFixture f(options);
  REQUIRE(f.mx("example.test"));
  f.clock.advance_ms(29'000);
  CHECK(f.mx("example.test")->ttl == 1);
  CHECK(f.upstream_queries() == 1);
  f.clock.advance_ms(1'000);
  REQUIRE(f.mx("example.test"));
  CHECK(f.upstream_queries() == 2);
}

TEST_CASE("unit: cache keeps negative answers (RFC 2308)", "[dns][unit]") {
  CacheOptions options;
  options.nxdomain_ttl = 200;
  options.max_negative_ttl = 100;
  CacheFixture f(options);

  SECTION("NXDOMAIN for nxdomain_ttl, capped") {
    auto r = f.mx("nosuch.test");
    REQUIRE(r.status().kind() == core::Status::Kind::kNotFound);
    f.clock.advance_ms(99'000);
    CHECK(f.mx("nosuch.test").status().kind() == core::Status::Kind::kNotFound);
    CHECK(f.upstream_queries() == 1);
    f.clock.advance_ms(1'000);
    CHECK_FALSE(f.mx("nosuch.test"));
    CHECK(f.upstream_queries() == 2);
  }
  SECTION("NODATA for the reply's negative TTL, capped") {
    auto nodata = f.mx("mx1.example.test");  // has an A record, no MX
    REQUIRE(nodata);
    CHECK(nodata->records.empty());
    CHECK(nodata->ttl == 120);
    f.clock.advance_ms(99'000);
    REQUIRE(f.mx("mx1.example.test"));
    CHECK(f.upstream_queries() == 1);
    f.clock.advance_ms(1'000);
    REQUIRE(f.mx("mx1.example.test"));
    CHECK(f.upstream_queries() == 2);
  }
}

TEST_CASE("unit: cache does not keep temporary failures", "[dns][unit]") {
  auto fault = GENERATE(Fault::kServfail, Fault::kTimeout);
  SECTION("by default every query goes upstream") {
    CacheFixture f;
    f.upstream.set_fault("example.test", fault);
    CHECK(f.mx("example.test").status().kind() == core::Status::Kind::kTemporary);
    CHECK(f.mx("example.test").status().kind() == core::Status::Kind::kTemporary);
    CHECK(f.upstream_queries() == 2);
    f.upstream.set_fault("example.test", Fault::kNone);
    CHECK(f.mx("example.test"));
  }
  SECTION("failure_ttl keeps them for a few seconds") {
    CacheOptions options;
    options.failure_ttl = 5;
    CacheFixture f(options);
    f.upstream.set_fault("example.test", fault);
    CHECK_FALSE(f.mx("example.test"));
    f.clock.advance_ms(4'999);
    CHECK_FALSE(f.mx("example.test"));
    CHECK(f.upstream_queries() == 1);
    f.clock.advance_ms(1);
    CHECK_FALSE(f.mx("example.test"));
    CHECK(f.upstream_queries() == 2);
  }
}

TEST_CASE("unit: cache coalesces identical queries in flight", "[dns][unit]") {
  CacheFixture f;
  auto outcome = GENERATE(Fault::kNone, Fault::kServfail);
  f.upstream.set_fault("example.test", outcome);
  std::vector<core::Result<MxAnswer>> got;
  for (int i = 0; i < 5; ++i) {
    f.cache.query_mx(i % 2 ? "Example.Test" : "example.test",
                     [&](core::Result<MxAnswer> r) { got.push_back(std::move(r)); });
  }
  f.cache.query_a("example.test", [](core::Result<AddressAnswer>) {});  // another type
  CHECK(got.empty());
  f.poster.run_pending();
  REQUIRE(got.size() == 5);
  CHECK(f.upstream.queries() == std::vector<std::string>{"MX example.test", "A example.test"});
  CHECK(f.cache.stats().coalesced == 4);
  for (const auto& r : got) {
    CHECK(r.is_ok() == (outcome == Fault::kNone));
    if (r) CHECK(r->records == std::vector<MxRecord>{{10, "mx1.example.test"}});
  }
}

TEST_CASE("unit: cache callbacks may query again", "[dns][unit]") {
  CacheFixture f;
  int answers = 0;
  f.cache.query_mx("example.test", [&](core::Result<MxAnswer> r) {
    ++answers;
    f.cache.query_mx("example.test", [&](core::Result<MxAnswer> again) {
      CHECK(again);
      ++answers;
    });
  });
  f.poster.run_pending();
  CHECK(answers == 2);
  CHECK(f.upstream_queries() == 1);
}

TEST_CASE("unit: destroying the cache drops callbacks still waiting", "[dns][unit]") {
  ManualPoster poster;
  core::FakeClock clock;
  FakeResolver upstream(poster);
  upstream.add_a("a.test", "192.0.2.1");
  bool called = false;
  {
    CachingResolver cache(upstream, poster, clock);
    cache.query_a("a.test", [&](core::Result<AddressAnswer>) { called = true; });
  }
  CHECK(poster.run_pending() == 1);  // the upstream answer arrives and is ignored
  CHECK_FALSE(called);
}

TEST_CASE("unit: cache bounds its size", "[dns][unit]") {
  CacheOptions options;
  options.max_entries = 2;
  CacheFixture f(options);
  f.upstream.add_a("b.test", "192.0.2.2");
  f.upstream.add_a("c.test", "192.0.2.3");
  for (const char* name : {"mx1.example.test", "b.test", "c.test"}) REQUIRE(f.a(name));
  CHECK(f.cache.size() == 2);
  // One of the first two made room; the newest is kept.
  REQUIRE(f.a("c.test"));
  CHECK(f.upstream_queries() == 3);

  SECTION("expired entries go first") {
    f.clock.advance_ms(300'000);
    f.upstream.add_a("d.test", "192.0.2.4", 600);
    REQUIRE(f.a("d.test"));
    CHECK(f.cache.size() == 1);
  }
}

}  // namespace
}  // namespace dns
