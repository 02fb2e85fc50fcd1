#include "policy/rate_limit.h"

#include <algorithm>

namespace policy {

RateLimiter::RateLimiter(uint64_t limit, int64_t window_ms, size_t max_keys)
    : limit_(limit),
      window_ms_(std::max<int64_t>(window_ms, 1)),
      // Rounded up, so kSlots slots always cover at least the whole window.
      slot_ms_((std::max<int64_t>(window_ms, 1) + kSlots - 1) / kSlots),
      max_keys_(std::max<size_t>(max_keys, 1)) {}

// Slot `current` is the one now_ms falls in. An event at time t in slot s is counted while
// s >= current - kSlots, so it leaves at (s + kSlots + 1) * slot_ms, which is after
// t + kSlots * slot_ms >= t + window_ms (never early), and by t + (kSlots + 1) * slot_ms at
// the latest, which is at most window_ms / kSlots + kSlots + 1 ms late.
uint64_t RateLimiter::sum(const Entry& e, int64_t current) const {
  uint64_t total = 0;
  for (const Slot& s : e.slots)
    if (s.index >= current - kSlots && s.index <= current) total += s.count;
  return total;
}

RateLimiter::Entry& RateLimiter::entry(std::string_view key) {
  auto it = entries_.find(std::string(key));
  if (it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  lru_.emplace_front(key);
  Entry& e = entries_[lru_.front()];
  e.lru = lru_.begin();
  return e;
}

void RateLimiter::make_room(int64_t current) {
  if (entries_.size() < max_keys_) return;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (sum(it->second, current) == 0) {
      lru_.erase(it->second.lru);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  if (entries_.size() >= max_keys_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
}

RateLimiter::Decision RateLimiter::take(std::string_view key, int64_t now_ms, uint64_t n) {
  if (limit_ == 0) return {};
  const int64_t current = std::max<int64_t>(now_ms, 0) / slot_ms_;
  std::lock_guard<std::mutex> lock(mu_);
  if (!entries_.count(std::string(key))) make_room(current);
  Entry& e = entry(key);
  const uint64_t used = sum(e, current);
  if (used + n > limit_) {
    // The oldest slots leave first; wait until enough of them have.
    uint64_t need = used + n - limit_;
    int64_t leave_at = current + 1;
    for (int64_t s = current - kSlots; s <= current && need > 0; ++s) {
      const Slot& slot = e.slots[slot_of(s)];
      if (slot.index != s) continue;
      need = slot.count >= need ? 0 : need - slot.count;
      leave_at = s + kSlots + 1;
    }
    const int64_t retry = need > 0 ? window_ms_ : leave_at * slot_ms_ - now_ms;
    return {false, std::max<int64_t>(retry, 1), used};
  }
  Slot& slot = e.slots[slot_of(current)];
  if (slot.index != current) slot = Slot{current, 0};
  slot.count += n;
  return {true, 0, used};
}

uint64_t RateLimiter::used(std::string_view key, int64_t now_ms) {
  const int64_t current = std::max<int64_t>(now_ms, 0) / slot_ms_;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(std::string(key));
  return it == entries_.end() ? 0 : sum(it->second, current);
}

size_t RateLimiter::keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace policy
