#pragma once
// Loop: one libuv event loop, run by one thread, owning the connections accepted on it.
//
// Threading: run() is called by exactly one thread at a time (the loop thread). post() and
// stop() are safe from any thread; everything else in net:: (Connection, Listener, Timer,
// run_blocking) is used only on the loop thread, or before run() starts.
//
// Lifetime: destroy Listeners and Timers before their Loop. The destructor (called when
// run() has returned) aborts every Connection still open, so each Handler still gets its
// on_closed(), waits for run_blocking() work in flight, then closes the loop. Functions
// posted but not yet run may run during the destructor (on its thread) or be dropped, so
// they must check that what they touch still exists (a weak_ptr, as the glue does).
//
// Process-wide side effect: the first Loop sets SIGPIPE to SIG_IGN, because libuv writes
// with write(2) and a peer that vanished must become an EPIPE, not a dead process.
//
// Limits: callbacks must not throw; post() after the Loop is destroyed is undefined; the
// constructor aborts the process if libuv cannot make a loop (no file descriptors left).

#include <cstddef>
#include <functional>
#include <memory>

struct uv_loop_s;  // libuv's loop, opaque outside mta/net and dns/

namespace net {

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs until stop(). May be called again after it returns.
  void run();
  // Runs fn on the loop thread soon; functions posted by one thread run in order.
  void post(std::function<void()> fn);
  // Makes run() return after the current iteration; a stop() before run() is kept.
  void stop();
  // True on the thread currently inside run().
  bool in_loop_thread() const;
  // Connections accepted or connected on this loop and not yet closed.
  size_t connection_count() const;

  // net-internal: the libuv state, defined in mta/net/internal.h (no other module sees it).
  struct Impl;
  Impl& impl() { return *impl_; }
  // The libuv loop, opaque here, for dns/ (c-ares is driven by libuv too; DESIGN.md gives
  // dns/ libuv). Only loop-thread code may use it.
  ::uv_loop_s* uv_loop();

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace net
