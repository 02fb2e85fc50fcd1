#pragma once
// Poster: "run this later on my thread", the one way dns code defers a callback so that it
// never runs inside the call that caused it.
//
// LoopPoster runs posted functions from a libuv timer on its loop, in posting order.
// ManualPoster queues them until the test calls run_pending(), for tests without a loop.
//
// Lifetime: destroying a poster drops what it has not run yet. A function run by a LoopPoster
// may destroy that poster (or its owner); the rest of the batch is then dropped, never run on
// freed state. A ManualPoster must outlive run_pending().
// Threading: a poster is used only from its loop's thread; it is not a cross-thread queue.
//
// Limits: no priorities and no cancellation of a single posted function.

#include <uv.h>

#include <deque>
#include <functional>

namespace dns {

class Poster {
 public:
  virtual ~Poster() = default;
  virtual void post(std::function<void()> fn) = 0;
};

class LoopPoster final : public Poster {
 public:
  explicit LoopPoster(uv_loop_t* loop);
  ~LoopPoster() override;
  LoopPoster(const LoopPoster&) = delete;
  LoopPoster& operator=(const LoopPoster&) = delete;

  void post(std::function<void()> fn) override;

 private:
  struct State;
  static void on_timer(uv_timer_t* timer);
  State* state_;  // freed by the timer's close callback, which may run after this object dies
};

class ManualPoster final : public Poster {
 public:
  void post(std::function<void()> fn) override { queue_.push_back(std::move(fn)); }
  // Runs until the queue is empty, including functions posted meanwhile; returns how many ran.
  size_t run_pending();
  size_t pending() const { return queue_.size(); }

 private:
  std::deque<std::function<void()>> queue_;
};

}  // namespace dns
