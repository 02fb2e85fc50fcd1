#include "core/metrics.h"

#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace {

TEST_CASE("unit: metrics render in the text exposition format", "[core][unit]") {
  core::Registry r;
  auto& accepted = r.counter("porter_test_accepted_total", "Messages accepted.", {"listener"});
  accepted.with({"submission"}).inc(3);
  accepted.with({"relay"}).inc();
  // Label values escape backslash, quote and newline; HELP escapes backslash and newline.
  r.counter("porter_test_odd_total", "Odd \\ help\nsecond line", {"v"}).with({"a\"b\\c\nd"}).inc(7);
  auto& open = r.gauge("porter_test_open", "Open connections.", {"protocol", "listener"});
  open.with({"smtp", "relay"}).inc(2);
  open.with({"smtp", "relay"}).dec();
  r.gauge("porter_test_plain", "No labels.").with({}).set(-2.5);
  auto& h = r.histogram("porter_test_seconds", "Latency.", {0.1, 1, 10}).with({});
  for (double v : {0.05, 0.1, 0.5, 20.0}) h.observe(v);
  r.callback_gauge("porter_test_queue", "Queue size.", [] { return 42.0; });
  r.counter("porter_test_unused_total", "Never incremented.", {"x"});

  const std::string expected =
      "# HELP porter_test_accepted_total Messages accepted.\n"
      "# TYPE porter_test_accepted_total counter\n"
      "porter_test_accepted_total{listener=\"relay\"} 1\n"
      "porter_test_accepted_total{listener=\"submission\"} 3\n"
      "# HELP porter_test_odd_total Odd \\\\ help\\nsecond line\n"
      "# TYPE porter_test_odd_total counter\n"
      "porter_test_odd_total{v=\"a\\\"b\\\\c\\nd\"} 7\n"
      "# HELP porter_test_open Open connections.\n"
      "# TYPE porter_test_open gauge\n"
      "porter_test_open{protocol=\"smtp\",listener=\"relay\"} 1\n"
      "# HELP porter_test_plain No labels.\n"
      "# TYPE porter_test_plain gauge\n"
      "porter_test_plain -2.5\n"
      "# HELP porter_test_queue Queue size.\n"
      "# TYPE porter_test_queue gauge\n"
      "porter_test_queue 42\n"
      "# HELP porter_test_seconds Latency.\n"
      "# TYPE porter_test_seconds histogram\n"
      "porter_test_seconds_bucket{le=\"0.1\"} 2\n"
      "porter_test_seconds_bucket{le=\"1\"} 3\n"
      "porter_test_seconds_bucket{le=\"10\"} 3\n"
      "porter_test_seconds_bucket{le=\"+Inf\"} 4\n"
      "porter_test_seconds_sum 20.65\n"
      "porter_test_seconds_count 4\n"
      "# HELP porter_test_unused_total Never incremented.\n"
      "# TYPE porter_test_unused_total counter\n";
  CHECK(core::render_prometheus(r) == expected);
}

TEST_CASE("unit: metrics histogram buckets are cumulative and inclusive", "[core][unit]") {
  core::Registry r;
  auto& family = r.histogram("porter_test_batch", "Batch sizes.", {1, 2, 4, 8}, {"kind"});
  auto& h = family.with({"x"});

  struct Case {
    std::vector<double> observations;
    std::vector<uint64_t> cumulative;  // le=1, 2, 4, 8, +Inf
  };
  const Case c = GENERATE(values<Case>({
      {{}, {0, 0, 0, 0, 0}},
      {{1}, {1, 1, 1, 1, 1}},  // on a bound: that bucket
      {{1.5}, {0, 1, 1, 1, 1}},
      {{9}, {0, 0, 0, 0, 1}},  // above the last bound: only +Inf
      {{0, 2, 3, 8, 100, -1}, {2, 3, 4, 5, 6}},
  }));
  core::Histogram fresh(family.buckets());
  double sum = 0;
  for (double v : c.observations) {
    fresh.observe(v);
    sum += v;
  }
  CHECK(fresh.cumulative_counts() == c.cumulative);
  CHECK(fresh.count() == c.observations.size());
  CHECK(fresh.sum() == Approx(sum));

  h.observe(3);
  const std::string text = r.render();
  CHECK(text.find("porter_test_batch_bucket{kind=\"x\",le=\"2\"} 0\n") != std::string::npos);
  CHECK(text.find("porter_test_batch_bucket{kind=\"x\",le=\"4\"} 1\n") != std::string::npos);
  CHECK(text.find("porter_test_batch_bucket{kind=\"x\",le=\"+Inf\"} 1\n") != std::string::npos);
}

TEST_CASE("unit: metrics children are stable and families registered once", "[core][unit]") {
  core::Registry r;
  auto& f = r.counter("porter_test_total", "Help.", {"a", "b"});
  core::Counter& x = f.with({"1", "2"});
  CHECK(&f.with({"1", "2"}) == &x);
  CHECK(&f.with({"2", "1"}) != &x);
  // A second registration (another module, another accessor) gets the same family.
  CHECK(&r.counter("porter_test_total", "Help.", {"a", "b"}) == &f);
  x.inc(5);
  CHECK(r.counter("porter_test_total", "Help.", {"a", "b"}).with({"1", "2"}).value() == 5);

  SECTION("callback gauges are replaced and can be withdrawn") {
    r.callback_gauge("porter_test_cb", "Cb.", [] { return 1.0; });
    CHECK(r.render().find("porter_test_cb 1\n") != std::string::npos);
    r.callback_gauge("porter_test_cb", "Cb.", [] { return 2.0; });
    CHECK(r.render().find("porter_test_cb 2\n") != std::string::npos);
    r.callback_gauge("porter_test_cb", "Cb.", {});
    CHECK(r.render().find("porter_test_cb") == std::string::npos);
  }
  SECTION("a callback may use the registry while it is rendered") {
    r.callback_gauge("porter_test_cb", "Cb.", [&r] {
      return static_cast<double>(
          r.counter("porter_test_total", "Help.", {"a", "b"}).with({"1", "2"}).value());
    });
    CHECK(r.render().find("porter_test_cb 5\n") != std::string::npos);
  }
}

TEST_CASE("unit: metrics concurrent updates from several threads all count", "[core][unit]") {
  core::Registry r;
  auto& counters = r.counter("porter_test_total", "Help.", {"t"});
  auto& gauges = r.gauge("porter_test_gauge", "Help.");
  auto& hist = r.histogram("porter_test_h", "Help.", {0.5});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread looks the shared child up itself, as separate loops would.
      core::Counter& shared = counters.with({"shared"});
      core::Counter& own = counters.with({std::to_string(t)});
      core::Gauge& g = gauges.with({});
      core::Histogram& h = hist.with({});
      for (int i = 0; i < kPerThread; ++i) {
        shared.inc();
        own.inc(2);
        g.inc();
        if (i % 2 == 0) g.dec();
        h.observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(counters.with({"shared"}).value() == uint64_t{kThreads} * kPerThread);
  for (int t = 0; t < kThreads; ++t)
    CHECK(counters.with({std::to_string(t)}).value() == 2 * kPerThread);
  CHECK(gauges.with({}).value() == kThreads * kPerThread / 2);
  const auto buckets = hist.with({}).cumulative_counts();
  CHECK(buckets == std::vector<uint64_t>{kThreads * kPerThread / 2, kThreads * kPerThread});
  CHECK(hist.with({}).sum() == Approx(kThreads * kPerThread / 2 * 1.25));
}

TEST_CASE("unit: metrics exponential buckets", "[core][unit]") {
  CHECK(core::exponential_buckets(1, 2, 5) == std::vector<double>{1, 2, 4, 8, 16});
  CHECK(core::exponential_buckets(0.5, 10, 1) == std::vector<double>{0.5});
}

TEST_CASE("unit: metrics process-wide registry is one object", "[core][unit]") {
  CHECK(&core::metrics_registry() == &core::metrics_registry());
}

}  // namespace

TEST_CASE("unit: metrics write whole numbers in plain digits", "[core][unit]") {
  core::Registry r;
  r.counter("big_total", "a large count").with({}).inc(100000);
  r.gauge("huge", "beyond 2^53 and fractions").with({}).set(1e300);
  r.gauge("ratio", "a fraction").with({}).set(0.25);
  const std::string text = core::render_prometheus(r);
  CHECK_THAT(text, Catch::Contains("big_total 100000\n"));
  CHECK_THAT(text, Catch::Contains("huge 1e+300\n"));
  CHECK_THAT(text, Catch::Contains("ratio 0.25\n"));
}
