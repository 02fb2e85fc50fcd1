#include "mta/net/worker.h"

#include <memory>

#include "mta/net/internal.h"

namespace net {
namespace {

struct Job {
  uv_work_t req{};
  std::function<void()> work;
  std::function<void()> after;
};

}  // namespace

void run_blocking(Loop& loop, std::function<void()> work, std::function<void()> after_on_loop) {
  auto* job = new Job{{}, std::move(work), std::move(after_on_loop)};
  job->req.data = job;
  // Fails only for a null work callback, which this is not.
  uv_queue_work(
      &loop.impl().uv, &job->req, [](uv_work_t* req) { static_cast<Job*>(req->data)->work(); },
      [](uv_work_t* req, int) {
        const std::unique_ptr<Job> done(static_cast<Job*>(req->data));
        if (done->after) done->after();
      });
}

}  // namespace net
