#pragma once
// RateLimiter: at most `limit` events per key within a sliding window (messages or
// recipients per user or per client address, issue 5). Over the limit the glue answers
// "450 4.7.1" with the retry time.
//
// The window is cut into kSlots slots (plus the one now is in); a key's count is the sum of
// the slots within the window, so an event is forgotten between window_ms and
// window_ms * 61/60 + 61 ms after it happened (slots are whole milliseconds), never earlier:
// no window of window_ms ever holds more than `limit` events. take() checks
// and records in one step, so two loops racing for the last unit cannot both get it.
//
// One RateLimiter is shared by every loop; its methods take a mutex briefly and never block
// otherwise. Time is passed in by the caller (ms since the epoch) so tests move it by hand.
// A limit of 0 means unlimited: take() always succeeds and remembers nothing.
//
// Limits: at most max_keys keys are remembered; past that, keys whose slots have all expired
// are swept, and if none has, the least recently used key is forgotten (a client with more
// addresses than that can escape its count; the connection limits still bound it).

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace policy {

class RateLimiter {
 public:
  static constexpr int kSlots = 60;

  struct Decision {
    bool allowed = true;
    int64_t retry_after_ms = 0;  // when refused: until enough old events leave the window
    uint64_t used = 0;           // events counted in the window (before this one)
  };

  RateLimiter(uint64_t limit, int64_t window_ms, size_t max_keys = 65536);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Records `n` events for `key` if they fit under the limit; otherwise records nothing.
  Decision take(std::string_view key, int64_t now_ms, uint64_t n = 1);
  // The events counted for `key` in the window ending at now_ms.
  uint64_t used(std::string_view key, int64_t now_ms);

  uint64_t limit() const { return limit_; }
  int64_t window_ms() const { return window_ms_; }
  size_t keys() const;

 private:
  struct Slot {
    int64_t index = -1;  // now_ms / slot_ms_ of the events counted here
    uint64_t count = 0;
  };
  struct Entry {
    std::array<Slot, kSlots + 1> slots{};
    std::list<std::string>::iterator lru;
  };

  static size_t slot_of(int64_t index) { return static_cast<size_t>(index % (kSlots + 1)); }
  uint64_t sum(const Entry& e, int64_t current) const;
  Entry& entry(std::string_view key);
  void make_room(int64_t current);

  const uint64_t limit_;
  const int64_t window_ms_;
  const int64_t slot_ms_;
  const size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // most recently used first
};

}  // namespace policy
