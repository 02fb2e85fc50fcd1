#pragma once
// CachingResolver: a TTL cache in front of any Resolver (a decorator; it is one itself).
//
//   records        cached for their TTL, capped at max_ttl; a hit reports the TTL remaining
//   NODATA         cached for the reply's negative TTL (RFC 2308 §5), capped at max_negative_ttl
//   NXDOMAIN       cached for nxdomain_ttl, capped at max_negative_ttl (the upstream does not
//                  report the SOA of an NXDOMAIN, so RFC 2308's own value is not available);
//                  a bad name (Status::invalid) the same way
//   other failures (SERVFAIL, timeout) cached for failure_ttl, 0 by default: not at all
//
// Identical queries in flight are coalesced: N callers of the same (type, name) while the
// upstream has not answered make one upstream query and all get its answer. Names are keyed
// case-insensitively and without trailing dot.
//
// Threading: the upstream's thread; hits are delivered through `poster`, never inside the
// query call. Lifetime: upstream, poster and clock must outlive the cache; destroying the
// cache drops the callbacks of callers still waiting on the upstream.
//
// Limits: max_entries is per record type; when a table is full, expired entries are swept
// and, if that is not enough, an arbitrary entry goes (no LRU). No prefetch before expiry.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "dns/post.h"
#include "dns/resolver.h"

namespace dns {

struct CacheOptions {
  uint32_t max_ttl = 86400;  // seconds
  uint32_t nxdomain_ttl = kDefaultNegativeTtl;
  uint32_t max_negative_ttl = 3600;  // RFC 2308 §5: "one to three hours" is sensible
  uint32_t failure_ttl = 0;
  size_t max_entries = 10000;
};

class CachingResolver final : public Resolver {
 public:
  struct Stats {
    uint64_t hits = 0;       // answered from the cache
    uint64_t misses = 0;     // sent upstream
    uint64_t coalesced = 0;  // joined a query already in flight
  };

  CachingResolver(Resolver& upstream, Poster& poster, const core::Clock& clock,
                  CacheOptions options = {});
  CachingResolver(const CachingResolver&) = delete;
  CachingResolver& operator=(const CachingResolver&) = delete;

  void query_mx(const std::string& domain, AnswerCallback<MxRecord> cb) override;
  void query_a(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_aaaa(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_txt(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_ptr(const std::string& name, AnswerCallback<std::string> cb) override;

  const Stats& stats() const { return stats_; }
  // Entries held, expired ones not yet swept included.
  size_t size() const {
    return mx_.entries.size() + a_.entries.size() + aaaa_.entries.size() + txt_.entries.size() +
           ptr_.entries.size();
  }

 private:
  template <typename T>
  struct Table {
    struct Entry {
      core::Result<Answer<T>> result;
      int64_t expires_ms;
    };
    std::unordered_map<std::string, Entry> entries;
    std::unordered_map<std::string, std::vector<AnswerCallback<T>>> waiting;
  };
  template <typename T>
  using Ask = void (Resolver::*)(const std::string&, AnswerCallback<T>);

  template <typename T>
  void lookup(Table<T>& table, Ask<T> ask, const std::string& name, AnswerCallback<T> cb);
  template <typename T>
  void store(Table<T>& table, const std::string& key, const core::Result<Answer<T>>& result);
  uint32_t ttl_for(bool ok, bool empty, uint32_t ttl, core::Status::Kind kind) const;

  Resolver& upstream_;
  Poster& poster_;
  const core::Clock& clock_;
  CacheOptions options_;
  Stats stats_;
  Table<MxRecord> mx_;
  Table<std::string> a_, aaaa_, txt_, ptr_;
  // Upstream callbacks hold a weak_ptr to this: expired means the cache is gone.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace dns
