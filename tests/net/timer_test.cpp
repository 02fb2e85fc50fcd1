#include "mta/net/timer.h"

#include "tests/net/test_support.h"

namespace net::test {
namespace {

struct Fired {
  std::atomic<int> count{0};
  std::chrono::steady_clock::time_point at;
};

TEST_CASE("unit: a Timer fires once after its delay", "[net][unit]") {
  LoopThread lt;
  Fired fired;
  std::unique_ptr<Timer> timer;
  const auto start = std::chrono::steady_clock::now();
  lt.call([&] {
    timer = std::make_unique<Timer>(lt.loop);
    timer->start(30, [&] {
      fired.at = std::chrono::steady_clock::now();
      ++fired.count;
    });
  });
  std::this_thread::sleep_for(150ms);
  CHECK(fired.count == 1);
  CHECK(fired.at - start >= 29ms);
  CHECK_FALSE(lt.call([&] { return timer->active(); }));
  lt.call([&] { timer.reset(); });
}

TEST_CASE("unit: stop(), restart and destruction keep a Timer from firing", "[net][unit]") {
  LoopThread lt;
  std::atomic<int> first{0};
  std::atomic<int> second{0};
  std::unique_ptr<Timer> timer;
  lt.call([&] { timer = std::make_unique<Timer>(lt.loop); });

  SECTION("stop") {
    lt.call([&] {
      timer->start(30, [&] { ++first; });
      timer->stop();
    });
    std::this_thread::sleep_for(100ms);
    CHECK(first == 0);
  }
  SECTION("a restart replaces the pending callback") {
    lt.call([&] {
      timer->start(30, [&] { ++first; });
      timer->start(60, [&] { ++second; });
    });
    std::this_thread::sleep_for(150ms);
    CHECK(first == 0);
    CHECK(second == 1);
  }
  SECTION("destroyed while pending") {
    lt.call([&] {
      timer->start(30, [&] { ++first; });
      timer.reset();
    });
    std::this_thread::sleep_for(100ms);
    CHECK(first == 0);
  }
  SECTION("restarted and destroyed from inside its own callback") {
    lt.call([&] {
      timer->start(10, [&] {
        ++first;
        timer->start(10, [&] {
          ++second;
          timer.reset();
        });
      });
    });
    std::this_thread::sleep_for(150ms);
    CHECK(first == 1);
    CHECK(second == 1);
    CHECK(lt.call([&] { return timer == nullptr; }));
  }
  lt.call([&] { timer.reset(); });
}

}  // namespace
}  // namespace net::test
