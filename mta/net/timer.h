#pragma once
// Timer: a restartable one-shot timer on a Loop (idle timeouts, retry delays, lockouts).
//
// Lifetime and threading: loop thread only; destroy before the Loop. The libuv handle is
// closed on destruction and freed by its close callback, so a Timer may be destroyed at any
// moment -- even from inside its own callback -- and its callback never runs afterwards.
//
// Limits: millisecond resolution, measured from the loop's cached "now" (the start of the
// current iteration), as libuv does.

#include <cstdint>
#include <functional>

struct uv_timer_s;

namespace net {

class Loop;

class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Fires fn once after ms; a start() while pending replaces the earlier one.
  void start(uint64_t ms, std::function<void()> fn);
  void stop();
  bool active() const;

 private:
  static void on_fire(uv_timer_s* handle);

  uv_timer_s* handle_;  // heap: its close callback frees it after we are gone
  std::function<void()> fn_;
};

}  // namespace net
