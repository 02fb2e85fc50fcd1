#include "queue/retry.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <set>

using queue::RetryPolicy;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

queue::MessageRecord record_with(const std::vector<queue::RecipientState>& states,
                                 int64_t created) {
  queue::MessageRecord r;
  for (auto s : states) r.status.push_back(queue::RecipientStatus{s, 1, created, "", ""});
  r.created_ms = created;
  return r;
}

}  // namespace

TEST_CASE("retry: the backoff steps through the list, then repeats its last value",
          "[queue][unit]") {
  RetryPolicy policy;
  policy.jitter = 0;
  std::mt19937_64 rng(1);
  const auto [attempts, wait] = GENERATE(table<uint32_t, int64_t>({
      {0, kMinute},  // never tried (a first attempt that could not start): like the first
      {1, kMinute},
      {2, 5 * kMinute},
      {3, 15 * kMinute},
      {4, 30 * kMinute},
      {5, kHour},
      {6, 2 * kHour},
      {7, 4 * kHour},
      {8, 4 * kHour},
      {1000, 4 * kHour},
      {UINT32_MAX, 4 * kHour},
  }));
  INFO("attempts " << attempts);
  CHECK(queue::next_attempt_ms(policy, attempts, kNow, rng) == kNow + wait);
}

TEST_CASE("retry: jitter spreads each wait within its bounds", "[queue][unit]") {
  RetryPolicy policy;  // jitter 0.1
  std::mt19937_64 rng(GENERATE(1u, 2u, 3u));
  const uint32_t attempts = GENERATE(1u, 3u, 7u, 20u);
  const int64_t wait = policy.backoff_ms[std::min<size_t>(attempts - 1, 6)];
  std::set<int64_t> seen;
  int64_t low = INT64_MAX;
  int64_t high = INT64_MIN;
  for (int i = 0; i < 500; ++i) {
    const int64_t d = queue::next_attempt_ms(policy, attempts, kNow, rng) - kNow;
    low = std::min(low, d);
    high = std::max(high, d);
    seen.insert(d);
  }
  INFO("attempts " << attempts << " wait " << wait << " low " << low << " high " << high);
  CHECK(low >= wait * 9 / 10);
  CHECK(high <= wait * 11 / 10);
  // Spread over both sides of the nominal wait, not one value.
  CHECK(low < wait * 97 / 100);
  CHECK(high > wait * 103 / 100);
  CHECK(seen.size() > 400);
}

TEST_CASE("retry: a wait is never zero, whatever the list says", "[queue][unit]") {
  RetryPolicy policy;
  policy.backoff_ms = {};
  std::mt19937_64 rng(1);
  CHECK(queue::next_attempt_ms(policy, 3, kNow, rng) == kNow + 1);
}

TEST_CASE("retry: a message expires when its lifetime is over", "[queue][unit]") {
  RetryPolicy policy;  // 5 days
  const auto [age, expired] = GENERATE(table<int64_t, bool>({
      {0, false},
      {kDay, false},
      {5 * kDay - 1, false},
      {5 * kDay, true},
      {6 * kDay, true},
      {-kDay, false},  // clock stepped back: not a reason to bounce
  }));
  INFO("age " << age);
  CHECK(queue::expired(policy, kNow, kNow + age) == expired);

  SECTION("a lifetime of 0 fails a message at its first temporary failure") {
    policy.max_lifetime_ms = 0;
    CHECK(queue::expired(policy, kNow, kNow));
  }
}

TEST_CASE("retry: a delay warning is due once, after its time, while a recipient waits",
          "[queue][unit]") {
  using S = queue::RecipientState;
  RetryPolicy policy;  // 4 hours
  auto r = record_with({S::kDelivered, S::kPending}, kNow);

  SECTION("not before its time") {
    CHECK_FALSE(queue::delay_warning_due(policy, r, kNow + 4 * kHour - 1));
    CHECK(queue::delay_warning_due(policy, r, kNow + 4 * kHour));
  }
  SECTION("not twice") {
    r.delay_warned = true;
    CHECK_FALSE(queue::delay_warning_due(policy, r, kNow + kDay));
  }
  SECTION("not when nothing is pending") {
    r.status[1].state = S::kFailed;
    CHECK_FALSE(queue::delay_warning_due(policy, r, kNow + kDay));
  }
  SECTION("never when turned off") {
    policy.delay_warning_ms = 0;
    CHECK_FALSE(queue::delay_warning_due(policy, r, kNow + kDay));
  }
}

TEST_CASE("retry: validate names what is wrong with a policy", "[queue][unit]") {
  CHECK(queue::validate(RetryPolicy{}).is_ok());
  RetryPolicy p;
  std::string field;
  SECTION("empty backoff") {
    p.backoff_ms = {};
    field = "empty";
  }
  SECTION("a step that is not positive") {
    p.backoff_ms = {60'000, 0};
    field = "backoff[1]";
  }
  SECTION("jitter of 1 or more") {
    p.jitter = 1.0;
    field = "jitter";
  }
  SECTION("negative jitter") {
    p.jitter = -0.1;
    field = "jitter";
  }
  SECTION("negative lifetime") {
    p.max_lifetime_ms = -1;
    field = "lifetime";
  }
  SECTION("negative warning time") {
    p.delay_warning_ms = -1;
    field = "warning";
  }
  const core::Status s = queue::validate(p);
  CHECK(s.kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(s.message(), Catch::Contains(field));
}
