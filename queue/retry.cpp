#include "queue/retry.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace queue {

core::Status validate(const RetryPolicy& policy) {
  if (policy.backoff_ms.empty()) return core::Status::invalid("retry: backoff list is empty");
  for (size_t i = 0; i < policy.backoff_ms.size(); ++i)
    if (policy.backoff_ms[i] <= 0)
      return core::Status::invalid("retry: backoff[" + std::to_string(i) +
                                   "] must be positive, is " +
                                   std::to_string(policy.backoff_ms[i]) + " ms");
  if (!(policy.jitter >= 0.0 && policy.jitter < 1.0))
    return core::Status::invalid("retry: jitter must be in [0, 1), is " +
                                 std::to_string(policy.jitter));
  if (policy.max_lifetime_ms < 0) return core::Status::invalid("retry: lifetime is negative");
  if (policy.delay_warning_ms < 0)
    return core::Status::invalid("retry: delay warning time is negative");
  return core::Status::ok();
}

int64_t next_attempt_ms(const RetryPolicy& policy, uint32_t attempts_so_far, int64_t now_ms,
                        std::mt19937_64& rng) {
  int64_t wait = 0;
  if (!policy.backoff_ms.empty()) {
    const size_t step = std::min<size_t>(attempts_so_far == 0 ? 0 : attempts_so_far - 1,
                                         policy.backoff_ms.size() - 1);
    wait = policy.backoff_ms[step];
    if (policy.jitter > 0.0) {
      std::uniform_real_distribution<double> spread(-policy.jitter, policy.jitter);
      wait = std::llround(static_cast<double>(wait) * (1.0 + spread(rng)));
    }
  }
  return now_ms + std::max<int64_t>(wait, 1);
}

bool expired(const RetryPolicy& policy, int64_t created_ms, int64_t now_ms) {
  return now_ms - created_ms >= policy.max_lifetime_ms;
}

bool delay_warning_due(const RetryPolicy& policy, const MessageRecord& record, int64_t now_ms) {
  if (policy.delay_warning_ms <= 0 || record.delay_warned) return false;
  if (now_ms - record.created_ms < policy.delay_warning_ms) return false;
  return std::any_of(record.status.begin(), record.status.end(),
                     [](const RecipientStatus& s) { return s.state == RecipientState::kPending; });
}

namespace {
std::string describe_duration(int64_t ms) {
  struct Unit {
    int64_t ms;
    const char* name;
  };
  static constexpr Unit kUnits[] = {
      {86'400'000, "day"}, {3'600'000, "hour"}, {60'000, "minute"}, {1000, "second"}};
  for (const Unit& u : kUnits) {
    if (ms == 0 || ms % u.ms != 0) continue;
    const int64_t n = ms / u.ms;
    return std::to_string(n) + " " + u.name + (n == 1 ? "" : "s");
  }
  return std::to_string(ms) + " ms";
}
}  // namespace

std::string expiry_reply(const RetryPolicy& policy, std::string_view last_reply) {
  std::string why =
      "4.4.7 message expired after " + describe_duration(policy.max_lifetime_ms) + " in queue";
  if (!last_reply.empty()) why += "; last error: " + std::string(last_reply);
  return why;
}

}  // namespace queue
