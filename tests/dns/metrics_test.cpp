#include <uv.h>

#include <catch2/catch.hpp>
#include <optional>

#include "core/clock.h"
#include "core/metrics.h"
#include "dns/cache.h"
#include "dns/cares_resolver.h"
#include "dns/fake_resolver.h"
#include "dns/post.h"

namespace {

uint64_t value(const char* name, std::initializer_list<std::string_view> labels,
               std::vector<std::string> label_names) {
  return core::metrics_registry().counter(name, "", std::move(label_names)).with(labels).value();
}

TEST_CASE("unit: the DNS cache counts hits, misses and coalesced lookups by type", "[dns][unit]") {
  dns::ManualPoster poster;
  dns::FakeResolver upstream(poster);
  upstream.add_a("a.test", "192.0.2.1", 60);
  upstream.add_mx("m.test", 10, "mx.m.test", 60);
  core::FakeClock clock;
  dns::CachingResolver cache(upstream, poster, clock);
  auto hits = [](const char* t) { return value("porter_dns_cache_hits_total", {t}, {"type"}); };
  auto misses = [](const char* t) { return value("porter_dns_cache_misses_total", {t}, {"type"}); };
  auto coalesced = [](const char* t) {
    return value("porter_dns_cache_coalesced_total", {t}, {"type"});
  };
  const uint64_t a_hits = hits("A"), a_misses = misses("A"), a_coalesced = coalesced("A");
  const uint64_t mx_hits = hits("MX"), mx_misses = misses("MX");
  int answers = 0;
  auto count = [&](auto) { ++answers; };
  cache.query_a("a.test", count);
  cache.query_a("a.test", count);  // joins the first, still in flight
  poster.run_pending();
  cache.query_a("A.TEST.", count);  // the same name: a hit
  cache.query_mx("m.test", count);
  poster.run_pending();
  CHECK(answers == 4);
  CHECK(misses("A") == a_misses + 1);
  CHECK(coalesced("A") == a_coalesced + 1);
  CHECK(hits("A") == a_hits + 1);
  CHECK(misses("MX") == mx_misses + 1);
  CHECK(hits("MX") == mx_hits);
}

TEST_CASE("unit: c-ares queries are counted by type and outcome", "[dns][unit]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    // Port 9 on loopback: nothing listens, so the query fails without any answer.
    auto resolver = dns::CaresResolver::create(&loop, {{"127.0.0.1:9"}, 200, 1});
    REQUIRE(resolver.is_ok());
    const auto total = [] {
      uint64_t n = 0;
      for (const char* r : {"ok", "nodata", "nxdomain", "servfail", "timeout", "error"})
        n += value("porter_dns_queries_total", {"TXT", r}, {"type", "result"});
      return n;
    };
    const uint64_t before = total();
    const uint64_t ok_before = value("porter_dns_queries_total", {"TXT", "ok"}, {"type", "result"});
    std::optional<core::Status> got;
    (*resolver)->query_txt("x.test", [&](auto r) { got = r.status(); });
    while (!got) uv_run(&loop, UV_RUN_ONCE);
    CHECK_FALSE(got->is_ok());
    CHECK(total() == before + 1);
    CHECK(value("porter_dns_queries_total", {"TXT", "ok"}, {"type", "result"}) == ok_before);
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // let the closed handles go
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
