#include "policy/auth_throttle.h"

#include <algorithm>

namespace policy {
namespace {

AuthThrottleConfig sane(AuthThrottleConfig c) {
  c.max_failures = std::max(c.max_failures, 1);
  c.max_entries = std::max<size_t>(c.max_entries, 1);
  c.base_delay_ms = std::max<int64_t>(c.base_delay_ms, 0);
  c.max_delay_ms = std::max(c.max_delay_ms, c.base_delay_ms);
  return c;
}

}  // namespace

AuthThrottle::AuthThrottle(AuthThrottleConfig config) : config_(sane(config)) {}

// A lockout that has run out starts the client afresh: the failures that caused it have
// been paid for.
void AuthThrottle::drop_expired_lock(Entry& entry, int64_t now_ms) {
  if (entry.locked_until_ms != 0 && now_ms >= entry.locked_until_ms) {
    entry.locked_until_ms = 0;
    entry.failures.clear();
  }
}

AuthThrottle::Entry& AuthThrottle::touch(const std::string& client) {
  if (auto it = entries_.find(client); it != entries_.end()) {
    lru_.splice(lru_.end(), lru_, it->second.lru);
    return it->second;
  }
  if (entries_.size() >= config_.max_entries) {
    entries_.erase(lru_.front());
    lru_.pop_front();
  }
  lru_.push_back(client);
  Entry& entry = entries_[client];
  entry.lru = std::prev(lru_.end());
  return entry;
}

AuthThrottle::Decision AuthThrottle::check(const std::string& client, int64_t now_ms) {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(client);
  if (it == entries_.end()) return {};
  drop_expired_lock(it->second, now_ms);
  if (it->second.locked_until_ms == 0) return {};
  return {false, it->second.locked_until_ms - now_ms};
}

int64_t AuthThrottle::record_failure(const std::string& client, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Entry& entry = touch(client);
  drop_expired_lock(entry, now_ms);
  // A client that keeps trying while locked out gets the longest delay but no longer
  // lockout: extending it would let one user behind a shared (NAT) address keep everyone
  // else there locked out for good.
  if (entry.locked_until_ms != 0) return config_.max_delay_ms;
  auto& f = entry.failures;
  f.erase(f.begin(), std::find_if(f.begin(), f.end(),
                                  [&](int64_t t) { return now_ms - t < config_.window_ms; }));
  f.push_back(now_ms);
  if (f.size() >= static_cast<size_t>(config_.max_failures))
    entry.locked_until_ms = now_ms + config_.lockout_ms;
  int64_t delay = config_.base_delay_ms;
  for (size_t i = 1; i < f.size() && delay < config_.max_delay_ms; ++i) delay *= 2;
  return std::min(delay, config_.max_delay_ms);
}

void AuthThrottle::record_success(const std::string& client) {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(client);
  if (it == entries_.end()) return;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

size_t AuthThrottle::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace policy
