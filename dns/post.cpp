#include "dns/post.h"

namespace dns {

struct LoopPoster::State {
  uv_timer_t timer;
  std::deque<std::function<void()>> queue;
  bool closed = false;
};

void LoopPoster::on_timer(uv_timer_t* timer) {
  auto* state = static_cast<State*>(timer->data);
  // Only what was queued when the batch began: a function that keeps posting must not
  // starve the rest of the loop.
  for (size_t n = state->queue.size(); n > 0 && !state->closed; --n) {
    std::function<void()> fn = std::move(state->queue.front());
    state->queue.pop_front();
    fn();
  }
  // A closed state stays valid until its close callback, which runs after this one returns.
  if (!state->closed && !state->queue.empty()) uv_timer_start(&state->timer, on_timer, 0, 0);
}

LoopPoster::LoopPoster(uv_loop_t* loop) : state_(new State) {
  uv_timer_init(loop, &state_->timer);
  state_->timer.data = state_;
}

LoopPoster::~LoopPoster() {
  state_->closed = true;
  state_->queue.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&state_->timer),
           [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
}

void LoopPoster::post(std::function<void()> fn) {
  state_->queue.push_back(std::move(fn));
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&state_->timer))) {
    uv_timer_start(&state_->timer, on_timer, 0, 0);
  }
}

size_t ManualPoster::run_pending() {
  size_t ran = 0;
  while (!queue_.empty()) {
    std::function<void()> fn = std::move(queue_.front());
    queue_.pop_front();
    fn();
    ++ran;
  }
  return ran;
}

}  // namespace dns
