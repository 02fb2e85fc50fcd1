#include "mta/net/loop.h"

#include <csignal>
#include <cstdlib>

#include "core/log.h"
#include "mta/net/connection.h"
#include "mta/net/internal.h"

namespace net {
namespace {

void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

void on_wakeup(uv_async_t* handle) {
  auto& impl = *static_cast<Loop::Impl*>(handle->data);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(impl.inbox_mu);
    batch.swap(impl.inbox);
  }
  for (auto& fn : batch) fn();
  if (impl.stop_requested.exchange(false)) uv_stop(&impl.uv);
}

void on_turn(uv_prepare_t* handle) {
  detail::run_connection_turns(*static_cast<Loop::Impl*>(handle->data));
}

}  // namespace

Loop::Loop() : impl_(std::make_unique<Impl>()) {
  ignore_sigpipe();
  Impl& impl = *impl_;
  // Fails only when the process is out of file descriptors at start-up: nothing to serve.
  if (const int rc = uv_loop_init(&impl.uv); rc != 0) {
    core::LogLine(core::LogLevel::kError, "net_loop_init_failed")
        .kv("error", uv_strerror(rc))
        .emit();
    std::abort();
  }
  uv_async_init(&impl.uv, &impl.wakeup, on_wakeup);
  impl.wakeup.data = &impl;
  uv_prepare_init(&impl.uv, &impl.turn);
  impl.turn.data = &impl;
  uv_prepare_start(&impl.turn, on_turn);
  // The turn handle alone must not keep run() alive; the wakeup handle does that.
  uv_unref(reinterpret_cast<uv_handle_t*>(&impl.turn));
}

Loop::~Loop() {
  Impl& impl = *impl_;
  // Handlers learn of the end through on_closed, and typically free their Timers there;
  // run until every connection has gone, so those Timers are closed before the check below.
  while (!impl.connections.empty()) {
    const std::vector<Connection*> open(impl.connections.begin(), impl.connections.end());
    for (Connection* c : open) c->abort();
    uv_run(&impl.uv, UV_RUN_ONCE);  // closing handles make this poll without blocking
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&impl.wakeup), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl.turn), nullptr);
  // A Listener or Timer that outlives its Loop is a bug in the caller; say so rather than
  // hang here waiting for a handle nobody will close.
  uv_walk(
      &impl.uv,
      [](uv_handle_t* h, void*) {
        if (uv_is_closing(h)) return;
        core::LogLine(core::LogLevel::kError, "net_loop_handle_leaked")
            .kv("type", uv_handle_type_name(uv_handle_get_type(h)))
            .emit();
        uv_unref(h);
      },
      nullptr);
  uv_run(&impl.uv, UV_RUN_DEFAULT);
  if (const int rc = uv_loop_close(&impl.uv); rc != 0)
    core::LogLine(core::LogLevel::kError, "net_loop_close_failed")
        .kv("error", uv_strerror(rc))
        .emit();
}

void Loop::run() {
  impl_->thread = std::this_thread::get_id();
  uv_run(&impl_->uv, UV_RUN_DEFAULT);
  impl_->thread = std::thread::id();
}

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(impl_->inbox_mu);
    impl_->inbox.push_back(std::move(fn));
  }
  uv_async_send(&impl_->wakeup);
}

void Loop::stop() {
  impl_->stop_requested = true;
  uv_async_send(&impl_->wakeup);
}

::uv_loop_s* Loop::uv_loop() { return &impl_->uv; }

bool Loop::in_loop_thread() const { return impl_->thread.load() == std::this_thread::get_id(); }

size_t Loop::connection_count() const { return impl_->connections.size(); }

}  // namespace net
