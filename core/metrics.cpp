#include "core/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <variant>

namespace core {
namespace {

// Metric definitions are constants in the code, so a bad one is a programming error that the
// first start (and every test) shows at once.
[[noreturn]] void misuse(const std::string& what) {
  std::fprintf(stderr, "metrics: %s\n", what.c_str());
  std::abort();
}

bool valid_name(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    // Whole numbers (every counter) in plain digits, as people and grep expect them: the
    // shortest round trip would write 100000 as "1e+05". Others: the shortest exact form.
    char buf[400];
    const bool whole = std::fabs(v) < 9007199254740992.0 && v == std::trunc(v);
    const auto r = whole ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_escaped(std::string& out, std::string_view s, bool quotes) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// {a="x",b="y"} with `extra` (le="...") last; nothing when there are no labels at all.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& names, const std::vector<std::string>& values,
                   double v, std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  append_labels(out, names, values, extra_name, extra_value);
  out += ' ';
  append_number(out, v);
  out += '\n';
}

void render_family(std::string& out, const CounterFamily& f) {
  append_header(out, f.name(), f.help(), "counter");
  f.for_each([&](const std::vector<std::string>& values, const Counter& c) {
    append_sample(out, f.name(), "", f.label_names(), values, static_cast<double>(c.value()));
  });
}

void render_family(std::string& out, const GaugeFamily& f) {
  append_header(out, f.name(), f.help(), "gauge");
  f.for_each([&](const std::vector<std::string>& values, const Gauge& g) {
    append_sample(out, f.name(), "", f.label_names(), values, g.value());
  });
}

void render_family(std::string& out, const HistogramFamily& f) {
  append_header(out, f.name(), f.help(), "histogram");
  f.for_each([&](const std::vector<std::string>& values, const Histogram& h) {
    const std::vector<uint64_t> cumulative = h.cumulative_counts();
    std::string le;
    for (size_t i = 0; i <= f.buckets().size(); ++i) {
      le.clear();
      append_number(le, i < f.buckets().size() ? f.buckets()[i] : INFINITY);
      append_sample(out, f.name(), "_bucket", f.label_names(), values,
                    static_cast<double>(cumulative[i]), "le", le);
    }
    append_sample(out, f.name(), "_sum", f.label_names(), values, h.sum());
    append_sample(out, f.name(), "_count", f.label_names(), values,
                  static_cast<double>(cumulative.back()));
  });
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (std::isnan(bounds_[i]) || (i > 0 && !(bounds_[i] > bounds_[i - 1])))
      misuse("histogram bucket bounds must be strictly increasing");
  }
  if (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
}

void Histogram::observe(double v) {
  // The first bound >= v: buckets are "less than or equal" (le).
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

uint64_t Histogram::count() const { return cumulative_counts().back(); }

std::vector<double> exponential_buckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) misuse("bad exponential_buckets arguments");
  std::vector<double> out;
  out.reserve(static_cast<size_t>(count));
  for (double b = start; count-- > 0; b *= factor) out.push_back(b);
  return out;
}

template <typename M>
Family<M>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

template <typename M>
M& Family<M>::with(std::initializer_list<std::string_view> values) {
  if (values.size() != label_names_.size())
    misuse(name_ + ": " + std::to_string(values.size()) + " label values for " +
           std::to_string(label_names_.size()) + " labels");
  std::vector<std::string> key(values.begin(), values.end());
  std::lock_guard lock(mu_);
  auto it = children_.find(key);
  if (it == children_.end()) {
    std::unique_ptr<M> child;
    if constexpr (std::is_same_v<M, Histogram>)
      child = std::make_unique<M>(buckets_);
    else
      child = std::make_unique<M>();
    it = children_.emplace(std::move(key), std::move(child)).first;
  }
  return *it->second;
}

template <typename M>
void Family<M>::for_each(
    const std::function<void(const std::vector<std::string>&, const M&)>& fn) const {
  std::lock_guard lock(mu_);
  for (const auto& [values, child] : children_) fn(values, *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct Registry::Entry {
  MetricType type;
  std::string help;
  std::variant<std::unique_ptr<CounterFamily>, std::unique_ptr<GaugeFamily>,
               std::unique_ptr<HistogramFamily>>
      family;
  std::function<double()> callback;  // callback gauges only; guarded by Registry::mu_
  bool is_callback = false;
};

Registry::Registry() = default;
Registry::~Registry() = default;

namespace {

void check_labels(std::string_view name, const std::vector<std::string>& labels, bool histogram) {
  for (const auto& l : labels) {
    if (!valid_name(l, false) || l.starts_with("__") || (histogram && l == "le"))
      misuse(std::string(name) + ": bad label name \"" + l + "\"");
  }
}

template <typename F>
F& checked(std::string_view name, F& f, const std::vector<std::string>& labels,
           const std::vector<double>& buckets) {
  if (f.label_names() != labels || f.buckets() != buckets)
    misuse(std::string(name) + " registered twice with different labels or buckets");
  return f;
}

}  // namespace

CounterFamily& Registry::counter(std::string_view name, std::string_view help,
                                 std::vector<std::string> label_names) {
  check_labels(name, label_names, false);
  std::lock_guard lock(mu_);
  Entry& e = find_or_add(name, MetricType::kCounter, help);
  auto& f = std::get<std::unique_ptr<CounterFamily>>(e.family);
  if (!f) {
    f = std::make_unique<CounterFamily>(std::string(name), std::string(help), label_names);
  }
  return checked(name, *f, label_names, {});
}

GaugeFamily& Registry::gauge(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names) {
  check_labels(name, label_names, false);
  std::lock_guard lock(mu_);
  Entry& e = find_or_add(name, MetricType::kGauge, help);
  if (e.is_callback) misuse(std::string(name) + " is already a callback gauge");
  auto& f = std::get<std::unique_ptr<GaugeFamily>>(e.family);
  if (!f) f = std::make_unique<GaugeFamily>(std::string(name), std::string(help), label_names);
  return checked(name, *f, label_names, {});
}

HistogramFamily& Registry::histogram(std::string_view name, std::string_view help,
                                     std::vector<double> upper_bounds,
                                     std::vector<std::string> label_names) {
  check_labels(name, label_names, true);
  // Normalises the bounds (drops an explicit +Inf) and checks their order once.
  upper_bounds = Histogram(std::move(upper_bounds)).upper_bounds();
  std::lock_guard lock(mu_);
  Entry& e = find_or_add(name, MetricType::kHistogram, help);
  auto& f = std::get<std::unique_ptr<HistogramFamily>>(e.family);
  if (!f) {
    f = std::make_unique<HistogramFamily>(std::string(name), std::string(help), label_names,
                                          upper_bounds);
  }
  return checked(name, *f, label_names, upper_bounds);
}

void Registry::callback_gauge(std::string_view name, std::string_view help,
                              std::function<double()> fn) {
  std::lock_guard lock(mu_);
  Entry& e = find_or_add(name, MetricType::kGauge, help);
  if (std::get<std::unique_ptr<GaugeFamily>>(e.family))
    misuse(std::string(name) + " is already a plain gauge");
  e.is_callback = true;
  e.callback = std::move(fn);
}

Registry::Entry& Registry::find_or_add(std::string_view name, MetricType type,
                                       std::string_view help) {
  if (!valid_name(name, true)) misuse("bad metric name \"" + std::string(name) + "\"");
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    auto e = std::make_unique<Entry>();
    e->type = type;
    e->help = std::string(help);
    switch (type) {
      case MetricType::kCounter:
        e->family = std::unique_ptr<CounterFamily>();
        break;
      case MetricType::kGauge:
        e->family = std::unique_ptr<GaugeFamily>();
        break;
      case MetricType::kHistogram:
        e->family = std::unique_ptr<HistogramFamily>();
        break;
    }
    it = entries_.emplace(std::string(name), std::move(e)).first;
  }
  if (it->second->type != type)
    misuse(std::string(name) + " registered twice with different types");
  return *it->second;
}

std::string Registry::render() const {
  // Snapshot under the mutex (families are never removed, so the pointers stay valid); render
  // and run the callbacks without it, so a callback may itself use the registry.
  struct Item {
    std::string_view name;
    std::string_view help;
    std::variant<const CounterFamily*, const GaugeFamily*, const HistogramFamily*> family;
    std::function<double()> callback;
    bool is_callback;
  };
  std::vector<Item> items;
  {
    std::lock_guard lock(mu_);
    items.reserve(entries_.size());
    for (const auto& [name, e] : entries_) {
      Item item{name, e->help, {}, e->callback, e->is_callback};
      std::visit([&](const auto& f) { item.family = f.get(); }, e->family);
      items.push_back(std::move(item));
    }
  }
  std::string out;
  for (const Item& item : items) {
    if (item.is_callback) {
      if (!item.callback) continue;
      append_header(out, item.name, item.help, "gauge");
      append_sample(out, item.name, "", {}, {}, item.callback());
      continue;
    }
    std::visit(
        [&](const auto* family) {
          if (family) render_family(out, *family);
        },
        item.family);
  }
  return out;
}

Registry& metrics_registry() {
  static Registry* registry = new Registry();  // never destroyed: threads may outlive main()
  return *registry;
}

std::string render_prometheus(const Registry& registry) { return registry.render(); }

}  // namespace core
