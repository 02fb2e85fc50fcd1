#include "mta/net/worker.h"

#include "tests/net/test_support.h"

namespace net::test {
namespace {

TEST_CASE("unit: run_blocking runs work off the loop and then after on the loop", "[net][unit]") {
  LoopThread lt;
  std::thread::id loop_thread;
  std::thread::id work_thread;
  std::thread::id after_thread;
  bool work_saw_loop = true;
  std::atomic<bool> loop_free{false};
  bool loop_was_free_during_work = false;
  std::promise<void> done;
  lt.loop.post([&] {
    loop_thread = std::this_thread::get_id();
    run_blocking(
        lt.loop,
        [&] {
          work_thread = std::this_thread::get_id();
          work_saw_loop = lt.loop.in_loop_thread();
          // The loop stays responsive meanwhile; a slow crypt(3) would be here.
          std::this_thread::sleep_for(50ms);
        },
        [&] {
          after_thread = std::this_thread::get_id();
          loop_was_free_during_work = loop_free;
          done.set_value();
        });
  });
  // Posted while the work sleeps: the loop runs it before the work completes.
  std::this_thread::sleep_for(10ms);
  lt.call([&] { loop_free = true; });
  REQUIRE(done.get_future().wait_for(kWait) == std::future_status::ready);
  CHECK(loop_was_free_during_work);
  CHECK(work_thread != loop_thread);
  CHECK_FALSE(work_saw_loop);
  CHECK(after_thread == loop_thread);
}

}  // namespace
}  // namespace net::test
