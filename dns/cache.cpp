#include "dns/cache.h"

#include <algorithm>

namespace dns {

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
  if (auto it = table.entries.find(key); it != table.entries.end()) {
    if (now < it->second.expires_ms) {
      ++stats_.hits;
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
    return;
  }
  ++stats_.misses;
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
