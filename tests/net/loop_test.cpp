#include "mta/net/loop.h"

#include <vector>

#include "tests/net/test_support.h"

namespace net::test {
namespace {

TEST_CASE("unit: post from other threads runs on the loop thread, in order per thread",
          "[net][unit]") {
  LoopThread lt;
  CHECK_FALSE(lt.loop.in_loop_thread());
  constexpr int kPerThread = 1000;
  std::vector<int> seen[2];  // touched only on the loop thread
  bool all_on_loop = true;
  std::vector<std::thread> posters;
  for (int t = 0; t < 2; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        lt.loop.post([&, t, i] {
          all_on_loop = all_on_loop && lt.loop.in_loop_thread();
          seen[t].push_back(i);
        });
      }
    });
  }
  for (auto& p : posters) p.join();
  // A call posted after every other post has returned runs after all of them.
  lt.call([] {});
  CHECK(all_on_loop);
  for (const auto& s : seen) {
    REQUIRE(s.size() == kPerThread);
    CHECK(std::is_sorted(s.begin(), s.end()));
  }
}

TEST_CASE("unit: stop() makes run() return, also when it came first", "[net][unit]") {
  Loop loop;
  const bool early = GENERATE(true, false);
  if (early) loop.stop();
  auto ran = std::async(std::launch::async, [&] { loop.run(); });
  if (!early) {
    std::this_thread::sleep_for(20ms);
    CHECK(ran.wait_for(0ms) == std::future_status::timeout);  // run() waits for work
    loop.stop();
  }
  CHECK(ran.wait_for(kWait) == std::future_status::ready);
  loop.stop();  // unblocks a run() that failed to return, so the test ends either way
}

TEST_CASE("unit: run() can run again after stop()", "[net][unit]") {
  Loop loop;
  int calls = 0;
  for (int round = 0; round < 2; ++round) {
    loop.post([&] { ++calls; });
    loop.stop();
    loop.run();
  }
  CHECK(calls == 2);
}

}  // namespace
}  // namespace net::test
