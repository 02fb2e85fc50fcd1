#pragma once
// Metrics: counters, gauges and histograms in named families with labels, rendered in the
// Prometheus text exposition format 0.0.4 (served by the admin API as GET /metrics).
//
//   auto& accepted = core::metrics_registry().counter(
//       "porter_messages_accepted_total", "Messages committed to the queue.", {"listener"});
//   core::Counter& c = accepted.with({"submission"});  // once: takes the family's mutex
//   c.inc();                                            // hot path: one relaxed atomic add
//
// Ownership and lifetime: a Registry owns its families and a family owns its children; neither
// is ever removed, so every reference handed out stays valid for the registry's life (the
// process-wide registry lives until exit). Registering a name again returns the family
// already there; registering it with another type, other labels or other buckets is a
// programming error and aborts with a message.
//
// Threading: everything may be called from any thread. Counter/Gauge/Histogram updates are
// lock-free; with() and registration take a mutex, so look children up once and keep the
// reference. Rendering reads atomics without stopping writers: a histogram's _sum may lag its
// buckets by an observation in flight, but _count always equals the +Inf bucket.
//
// Limits: no summaries, no exemplars, no timestamps, no OpenMetrics. Children are never
// dropped, so label values must come from a bounded set (listener names, DNS types), never
// from peers (addresses, user names).

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace core {

// A monotonic count (events, bytes).
class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A value that goes up and down (open connections). Doubles hold integers exactly to 2^53.
class Gauge {
 public:
  void inc(double n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  void dec(double n = 1) { v_.fetch_sub(n, std::memory_order_relaxed); }
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Observations counted into fixed buckets (upper bounds, inclusive, strictly increasing; the
// +Inf bucket is implicit). Buckets are stored per bucket and made cumulative when rendered.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);

  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Cumulative counts, one per upper bound plus the +Inf bucket (== count()).
  std::vector<uint64_t> cumulative_counts() const;
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 slots
  std::atomic<double> sum_{0};
};

// Bucket bounds start, start*factor, ... (count of them); for latencies and sizes.
std::vector<double> exponential_buckets(double start, double factor, int count);

enum class MetricType { kCounter, kGauge, kHistogram };

// Children of one metric name, one per distinct tuple of label values.
template <typename M>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> buckets = {});
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The child for these label values (as many as label names, in the same order), created at
  // the first call. The reference stays valid for the family's life.
  M& with(std::initializer_list<std::string_view> values);

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<double>& buckets() const { return buckets_; }
  // Calls fn(label_values, child) for every child, in label-value order, under the mutex.
  void for_each(const std::function<void(const std::vector<std::string>&, const M&)>& fn) const;

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;  // guarded by mu_
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Names follow Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*); counters should end in _total.
  CounterFamily& counter(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(std::string_view name, std::string_view help,
                     std::vector<std::string> label_names = {});
  HistogramFamily& histogram(std::string_view name, std::string_view help,
                             std::vector<double> upper_bounds,
                             std::vector<std::string> label_names = {});

  // A gauge without labels whose value is fn(), evaluated at every render (queue size). fn runs
  // on the rendering thread, so it must be thread-safe and quick. Setting it again replaces
  // the function; an empty fn leaves the gauge out of the output until one is set.
  void callback_gauge(std::string_view name, std::string_view help, std::function<double()> fn);

  // The exposition text, families sorted by name, children by label values.
  std::string render() const;

 private:
  struct Entry;
  Entry& find_or_add(std::string_view name, MetricType type, std::string_view help);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;  // guarded by mu_
};

// The process-wide registry every module registers into.
Registry& metrics_registry();

// Text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8).
std::string render_prometheus(const Registry& registry);

}  // namespace core
