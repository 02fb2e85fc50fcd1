#pragma once
// When to try a deferred message again, when to give up on it, and when to warn its sender
// that it is late (issue 3: backoff about 1m, 5m, 15m, 30m, then up to 4h, jittered, for a
// lifetime of 5 days, with a delay warning after 4h).
//
// The policy is a value from the configuration; the functions are pure (randomness comes from
// the caller's generator, so tests can seed it). The decision to retry or bounce is the
// caller's; these only say when.
//
// Thread safety: pure functions on values; the generator belongs to the caller.
// Limits: times are wall-clock milliseconds; a clock stepped backwards delays retries, it
// never loses them.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "queue/record.h"

namespace queue {

struct RetryPolicy {
  // Wait after the 1st, 2nd, ... failed attempt; the last value repeats.
  std::vector<int64_t> backoff_ms = {60'000,    300'000,   900'000,   1'800'000,
                                     3'600'000, 7'200'000, 14'400'000};
  // Each wait is spread uniformly over [wait * (1 - jitter), wait * (1 + jitter)], so that
  // messages deferred together (one destination down) do not all come back together.
  double jitter = 0.1;
  // A message still undelivered this long after it was queued fails (4.4.7). 0 fails a
  // message at its first temporary failure.
  int64_t max_lifetime_ms = 5 * 86'400'000LL;
  // A deferred message this old gets one delay warning; 0 = never.
  int64_t delay_warning_ms = 4 * 3'600'000LL;
};

// Ok, or kInvalid naming the field: backoff empty or not positive, jitter outside [0, 1),
// a negative lifetime or warning time.
core::Status validate(const RetryPolicy& policy);

// The time of the next attempt after `attempts_so_far` attempts (0 counts as 1), at least
// 1 ms after now_ms.
int64_t next_attempt_ms(const RetryPolicy& policy, uint32_t attempts_so_far, int64_t now_ms,
                        std::mt19937_64& rng);

// The message has been queued for its whole lifetime.
bool expired(const RetryPolicy& policy, int64_t created_ms, int64_t now_ms);

// A delay warning is due: warnings are on, none was sent for this message, some recipient
// is still pending and the message has waited at least delay_warning_ms.
bool delay_warning_due(const RetryPolicy& policy, const MessageRecord& record, int64_t now_ms);

// The reply recorded for a recipient whose delivery time ran out (RFC 3463 4.4.7), with the
// last error that kept it from going: "4.4.7 message expired after 5 days in queue; last
// error: 451 4.4.1 ...".
std::string expiry_reply(const RetryPolicy& policy, std::string_view last_reply);

}  // namespace queue
