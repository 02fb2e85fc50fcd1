#include "mta/net/timer.h"

#include "mta/net/internal.h"

namespace net {

Timer::Timer(Loop& loop) : handle_(new uv_timer_t) {
  uv_timer_init(&loop.impl().uv, handle_);
  handle_->data = this;
}

Timer::~Timer() {
  uv_timer_stop(handle_);
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void Timer::start(uint64_t ms, std::function<void()> fn) {
  fn_ = std::move(fn);
  uv_timer_start(handle_, on_fire, ms, 0);
}

void Timer::stop() {
  uv_timer_stop(handle_);
  fn_ = nullptr;
}

bool Timer::active() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(handle_)) != 0;
}

void Timer::on_fire(uv_timer_t* handle) {
  auto* self = static_cast<Timer*>(handle->data);
  if (self == nullptr) return;
  // Moved out first: the callback may restart or destroy this Timer.
  auto fn = std::move(self->fn_);
  self->fn_ = nullptr;
  if (fn) fn();
}

}  // namespace net
