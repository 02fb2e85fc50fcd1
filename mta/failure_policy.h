#pragma once
// Failure policy, in one place (Postfix's smtp_trouble.c): given what one delivery attempt
// did to each recipient of a message, decide what the queue records and which notices go
// back to the sender.
//
//   delivered             -> done
//   permanent (5xx)       -> failed now; a failure DSN (RFC 3464) unless the sender is null
//                            or NOTIFY says otherwise (never a bounce of a bounce)
//   temporary (4xx, DNS, connection) -> deferred to the retry schedule; failed with a DSN
//                            once the message's lifetime is over; one delay warning after
//                            `delay_warning`
//
// A notice is queued in the same batch that records the failure, so a crash can lose
// neither. Mechanisms (the SMTP client, DNS) only report; nothing else decides.
//
// A hard bounce also puts the recipient on the suppression list (queue/suppression.h) of the
// message's scope (its AUTH login, "" without AUTH), in that same batch, with one
// `suppressed` log line once committed. Hard means: a permanent failure whose enhanced status
// says the address is bad (is_hard_bounce), given by the remote server in answer to RCPT TO,
// or by local delivery ("no such user here"). Not: an administrator's bounce, the end of the
// queue lifetime, DNS verdicts on the domain (NXDOMAIN, null MX: one resolver mishap must not
// silence a domain for weeks), refusals of the whole transaction (MAIL, DATA) or policy
// refusals (5.7.x: a blocklisted IP is the sender's problem, not the address's), replies
// without a real enhanced code, and failures of messages with the null sender (DSNs: nobody's
// list). A DSN *received* later for mail we sent is not parsed here (out of scope).
//
// Thread safety: used on the delivery loop only.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/queue_id.h"
#include "mta/config.h"
#include "queue/db.h"
#include "queue/record.h"
#include "queue/retry.h"
#include "queue/scheduler.h"
#include "queue/suppression.h"
#include "queue/writer.h"

namespace mta {

// What happened to one recipient in one attempt.
struct AttemptOutcome {
  size_t rcpt = 0;           // index into the message's envelope recipients
  enum class Kind { kDelivered, kTemporary, kPermanent } kind = Kind::kTemporary;
  std::string reply;         // "250 2.0.0 Ok", "550 5.1.1 <x>: User unknown", our own text
  std::string status;        // enhanced status "5.1.1"
  std::string remote_mta;    // "mx.example.com[192.0.2.1]:25", or "" when none answered
  bool from_remote = false;  // reply came from the remote server
  bool remote_dsn = false;   // the server offered DSN, so NOTIFY went on with the mail
  bool local = false;        // local delivery's outcome: a success DSN says "delivered"
  bool at_rcpt = false;      // the remote reply answered this recipient's RCPT TO
};

// RFC 3463 statuses that say the address itself is bad: X.1.0 other address status, X.1.1
// bad mailbox, X.1.2 bad system, X.1.3 bad mailbox syntax, X.1.6 mailbox moved, X.1.10 null MX
// (RFC 7505), X.2.1 mailbox disabled; and only as the outcomes described above.
bool is_hard_bounce(const AttemptOutcome& o);

// Whether hard bounces are recorded, and for how long (config [suppression], wired by the
// caller). expire_ms 0: entries never expire.
struct SuppressionSettings {
  bool enabled = true;
  int64_t expire_ms = int64_t{30} * 24 * 3600 * 1000;
};

class FailurePolicy {
 public:
  FailurePolicy(const Config& config, queue::Db& db, queue::Scheduler& scheduler,
                core::QueueIdGenerator& ids, const queue::RetryPolicy& retry,
                SuppressionSettings suppression = {});

  // Records the outcomes of every recipient attempted for `record`, queues any DSN in the
  // same batch, and calls `done` on the writer thread when it is durable (or at once, on the
  // calling thread, when the scheduler refuses the settle before writing).
  // `local` adds the mailbox appends of local deliveries to that batch, last (see
  // mailbox::Store on why last); if it throws, nothing of the settle is written. `due_by_ms`
  // is passed to Scheduler::settle (recipients held back by a throttle, without outcome).
  // `done` gets the scheduler's SettleResult too (when ok): which recipients failed for good,
  // expiry included, for the metrics. Hard bounces are suppressed in that batch (above).
  using SettledDone = std::function<void(core::Status, const queue::SettleResult&)>;
  void settle(const queue::MessageRecord& record, std::vector<AttemptOutcome> outcomes,
              int64_t now_ms, SettledDone done, queue::Writer::Fill local = {},
              std::optional<int64_t> due_by_ms = std::nullopt);
  void settle(const queue::MessageRecord& record, std::vector<AttemptOutcome> outcomes,
              int64_t now_ms, std::function<void(core::Status)> done,
              queue::Writer::Fill local = {}, std::optional<int64_t> due_by_ms = std::nullopt);

 private:
  const Config& config_;
  queue::Db& db_;
  queue::Scheduler& scheduler_;
  core::QueueIdGenerator& ids_;
  queue::RetryPolicy retry_;
  SuppressionSettings suppression_;
  queue::SuppressionList suppressions_;
};

}  // namespace mta
