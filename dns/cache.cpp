#include "dns/cache.h"

#include <algorithm>
#include <array>

#include "core/metrics.h"

namespace dns {
namespace {

// porter_dns_cache_{hits,misses,coalesced}_total{type}, made once for every type the cache
// serves so that a lookup only adds to an atomic.
struct CacheCounters {
  core::Counter* hits;
  core::Counter* misses;
  core::Counter* coalesced;
};
constexpr std::array<RrType, 5> kCachedTypes = {RrType::kMx, RrType::kA, RrType::kAaaa,
                                                RrType::kTxt, RrType::kPtr};

const CacheCounters& cache_counters(RrType type) {
  static const std::array<CacheCounters, kCachedTypes.size()> all = [] {
    auto& r = core::metrics_registry();
    auto& hits = r.counter("porter_dns_cache_hits_total", "DNS lookups answered from the cache.",
                           {"type"});
    auto& misses = r.counter("porter_dns_cache_misses_total",
                             "DNS lookups the cache sent upstream.", {"type"});
    auto& coalesced = r.counter("porter_dns_cache_coalesced_total",
                                "DNS lookups that joined an identical one in flight.", {"type"});
    std::array<CacheCounters, kCachedTypes.size()> out{};
    for (size_t i = 0; i < kCachedTypes.size(); ++i) {
      const std::string_view name = rr_type_name(kCachedTypes[i]);
      out[i] = {&hits.with({name}), &misses.with({name}), &coalesced.with({name})};
    }
    return out;
  }();
  const size_t i = std::find(kCachedTypes.begin(), kCachedTypes.end(), type) - kCachedTypes.begin();
  return all[i];
}

// The record type behind one of the Resolver query methods.
RrType type_of(void (Resolver::*)(const std::string&, AnswerCallback<MxRecord>)) {
  return RrType::kMx;
}
RrType type_of(void (Resolver::*ask)(const std::string&, AnswerCallback<std::string>)) {
  if (ask == &Resolver::query_a) return RrType::kA;
  if (ask == &Resolver::query_aaaa) return RrType::kAaaa;
  if (ask == &Resolver::query_txt) return RrType::kTxt;
  return RrType::kPtr;
}

}  // namespace

CachingResolver::CachingResolver(Resolver& upstream, Poster& poster, const core::Clock& clock,
                                 CacheOptions options)
    : upstream_(upstream), poster_(poster), clock_(clock), options_(options) {}

void CachingResolver::query_mx(const std::string& domain, AnswerCallback<MxRecord> cb) {
  lookup(mx_, &Resolver::query_mx, domain, std::move(cb));
}

void CachingResolver::query_a(const std::string& name, AnswerCallback<std::string> cb) {
  lookup(a_, &Resolver::query_a, name, std::move(cb));
}

void CachingResolver::query_aaaa(const std::string& name, AnswerCallback<std::string> cb) {
  lookup(aaaa_, &Resolver::query_aaaa, name, std::move(cb));
}

void CachingResolver::query_txt(const std::string& name, AnswerCallback<std::string> cb) {
  lookup(txt_, &Resolver::query_txt, name, std::move(cb));
}

void CachingResolver::query_ptr(const std::string& name, AnswerCallback<std::string> cb) {
  lookup(ptr_, &Resolver::query_ptr, name, std::move(cb));
}

template <typename T>
void CachingResolver::lookup(Table<T>& table, Ask<T> ask, const std::string& name,
                             AnswerCallback<T> cb) {
  const std::string key = normalize_name(name);
  const int64_t now = clock_.now_ms();
  const CacheCounters& counters = cache_counters(type_of(ask));
  if (auto it = table.entries.find(key); it != table.entries.end()) {
    if (now < it->second.expires_ms) {
      ++stats_.hits;
      counters.hits->inc();
      core::Result<Answer<T>> result = it->second.result;
      if (result)
        result.value().ttl = static_cast<uint32_t>((it->second.expires_ms - now + 999) / 1000);
      poster_.post(
          [cb = std::move(cb), result = std::move(result)]() mutable { cb(std::move(result)); });
      return;
    }
    table.entries.erase(it);
  }

  auto [waiting, first] = table.waiting.try_emplace(key);
  waiting->second.push_back(std::move(cb));
  if (!first) {
    ++stats_.coalesced;
    counters.coalesced->inc();
    return;
  }
  ++stats_.misses;
  counters.misses->inc();
  std::weak_ptr<char> alive = alive_;
  (upstream_.*ask)(key, [this, alive, &table, key](core::Result<Answer<T>> result) {
    if (alive.expired()) return;
    store(table, key, result);
    // Out of the table first: a callback may ask for the same name again, or destroy us.
    auto node = table.waiting.extract(key);
    for (AnswerCallback<T>& waiter : node.mapped()) {
      if (alive.expired()) return;
      waiter(result);
    }
  });
}

uint32_t CachingResolver::ttl_for(bool ok, bool empty, uint32_t ttl,
                                  core::Status::Kind kind) const {
  if (ok) return std::min(ttl, empty ? options_.max_negative_ttl : options_.max_ttl);
  if (kind == core::Status::Kind::kNotFound || kind == core::Status::Kind::kInvalid) {
    return std::min(options_.nxdomain_ttl, options_.max_negative_ttl);
  }
  return options_.failure_ttl;
}

template <typename T>
void CachingResolver::store(Table<T>& table, const std::string& key,
                            const core::Result<Answer<T>>& result) {
  const uint32_t ttl = ttl_for(result.is_ok(), result.is_ok() && result->records.empty(),
                               result.is_ok() ? result->ttl : 0, result.status().kind());
  if (ttl == 0) return;
  const int64_t now = clock_.now_ms();
  if (table.entries.size() >= options_.max_entries) {
    std::erase_if(table.entries, [now](const auto& kv) { return kv.second.expires_ms <= now; });
    if (table.entries.size() >= options_.max_entries && !table.entries.empty()) {
      table.entries.erase(table.entries.begin());
    }
  }
  table.entries.insert_or_assign(key, typename Table<T>::Entry{result, now + int64_t{ttl} * 1000});
}

}  // namespace dns
