#pragma once
// Wall-clock time as an interface, so that retry schedules, lockouts and Date headers can
// be tested with a clock the test moves by hand.
//
// Thread safety: SystemClock is safe from any thread; FakeClock only from the test thread.

#include <chrono>
#include <cstdint>

namespace core {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;  // milliseconds since the Unix epoch
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}
  int64_t now_ms() const override { return ms_; }
  void advance_ms(int64_t d) { ms_ += d; }

 private:
  int64_t ms_;
};

}  // namespace core
