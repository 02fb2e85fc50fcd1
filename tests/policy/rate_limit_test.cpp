#include "policy/rate_limit.h"

#include <catch2/catch.hpp>

#include <atomic>

#include <string>
#include <thread>
#include <vector>

using policy::RateLimiter;

TEST_CASE("rate limit: the n+1th event in the window is refused", "[policy][unit]") {
  RateLimiter limiter(3, 60'000);
  const int64_t t0 = 1'700'000'000'000;
  for (int i = 0; i < 3; ++i) CHECK(limiter.take("alice", t0 + i * 1000).allowed);
  const auto refused = limiter.take("alice", t0 + 5000);
  CHECK_FALSE(refused.allowed);
  CHECK(refused.used == 3);
  // The first event leaves the window first: 60 s after it, at most 1 s + 61 ms late.
  CHECK(refused.retry_after_ms >= 60'000 - 5000);
  CHECK(refused.retry_after_ms <= 60'000 - 5000 + 1061);
  SECTION("other keys are counted apart") { CHECK(limiter.take("bob", t0 + 5000).allowed); }
  SECTION("a refusal records nothing") { CHECK(limiter.used("alice", t0 + 5000) == 3); }
}

TEST_CASE("rate limit: the limit resets once the window has passed", "[policy][unit]") {
  RateLimiter limiter(2, 10'000);
  const int64_t t0 = 1'700'000'000'000;
  REQUIRE(limiter.take("k", t0).allowed);
  REQUIRE(limiter.take("k", t0).allowed);
  REQUIRE_FALSE(limiter.take("k", t0 + 9'999).allowed);
  const auto refused = limiter.take("k", t0 + 5'000);
  REQUIRE_FALSE(refused.allowed);
  // Waiting exactly as long as told is enough.
  CHECK(limiter.take("k", t0 + 5'000 + refused.retry_after_ms).allowed);
}

TEST_CASE("rate limit: never forgets an event earlier than the window", "[policy][unit]") {
  const int64_t window = GENERATE(1, 59, 60, 61, 1000, 3'600'000);
  RateLimiter limiter(1, window);
  for (int64_t t : {int64_t(0), int64_t(12345), int64_t(1'700'000'000'017)}) {
    const std::string key = std::to_string(t);
    REQUIRE(limiter.take(key, t).allowed);
    INFO("window " << window << " event at " << t);
    CHECK_FALSE(limiter.take(key, t + window - 1).allowed);
    CHECK(limiter.take(key, t + window + window / 60 + 61).allowed);
  }
}

TEST_CASE("rate limit: several units at once", "[policy][unit]") {
  RateLimiter limiter(10, 60'000);
  CHECK(limiter.take("k", 0, 7).allowed);
  CHECK_FALSE(limiter.take("k", 0, 4).allowed);
  CHECK(limiter.take("k", 0, 3).allowed);
  SECTION("more than the limit can never fit") {
    const auto d = limiter.take("other", 0, 11);
    CHECK_FALSE(d.allowed);
    CHECK(d.retry_after_ms == 60'000);
  }
}

TEST_CASE("rate limit: zero means unlimited", "[policy][unit]") {
  RateLimiter limiter(0, 1000);
  for (int i = 0; i < 1000; ++i) REQUIRE(limiter.take("k", 0).allowed);
  CHECK(limiter.keys() == 0);
}

TEST_CASE("rate limit: the key table is bounded", "[policy][unit]") {
  RateLimiter limiter(1, 1000, 4);
  for (int i = 0; i < 10; ++i) CHECK(limiter.take("k" + std::to_string(i), 0).allowed);
  CHECK(limiter.keys() <= 4);
  SECTION("expired keys go before live ones") {
    REQUIRE(limiter.take("new", 5000).allowed);  // everything older has expired
    CHECK(limiter.keys() == 1);
  }
  SECTION("the most recently used keys stay") { CHECK_FALSE(limiter.take("k9", 0).allowed); }
}

TEST_CASE("rate limit: threads racing for the last units", "[policy][unit]") {
  RateLimiter limiter(1000, 60'000);
  std::vector<std::thread> threads;
  std::atomic<int> granted{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i)
        if (limiter.take("shared", 0).allowed) ++granted;
    });
  for (auto& t : threads) t.join();
  CHECK(granted == 1000);
}
