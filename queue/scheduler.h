#pragma once
// The schedule side of delivery: which queued messages are due, which are being tried right
// now (leased), and how the outcome of an attempt changes the queue (docs/queue-format.md
// "Schedule and delivery state").
//
// Scheduler owns the in-memory leases and nothing on disk that the queue does not already
// describe: the schedule family says what is due, the record says what is left to do. So on
// process start nothing is leased and every schedule entry is due at its time; a restart
// resumes where the queue stands, and a crash during an attempt at worst repeats it.
//
// A lease is taken by take_due() (or take() for one message by ID) and ends when the settle()
// that reports the attempt is answered, or by release() (an attempt given up without an
// outcome: the entry still stands, the message comes back at its old time). While leased, a
// message is changed only by its settle(), which is what lets settle() compute the new record
// before the writer runs. The administrator's changes (hold, release_held, remove, flush)
// refuse a leased message with kTemporary ("being delivered now; try again") and lease what
// they change themselves until their write commits, so that take_due() never starts an
// attempt on a version about to change.
// Every change goes through the Writer, so it shares its group commit; settle() writes the
// outcome, the new schedule entry (or the removal of the whole message) and the caller's
// `extra` writes (a DSN made with add_new_message) in one batch.
//
// Threading: a Scheduler belongs to ONE thread, the delivery loop; every method but
// is_leased() and leased_count() must be called there. The lease set is guarded by a mutex,
// because settle() and the administrator's changes end their lease on the writer thread just
// before their `done` runs (after the commit, so a take_due() that no longer sees the lease
// reads the committed state). Every `done` runs on the writer thread after the commit, or at
// once on the calling thread when the request is refused (or needs no write); it must not
// block: post to your loop. The Db, the Writer and the Clock must outlive the Scheduler, and
// the Writer must be stopped (which answers every pending request) before the Scheduler is
// destroyed.
//
// Limits: take_due() and next_due_ms() scan the schedule from a floor below which nothing
// live is due (see floor_ms_), past leased entries (bounded by the delivery concurrency) and
// the tombstones of deletions since the floor (the family compacts on deletions). An entry
// written by another thread with a due time more than kLateWriteMs before its commit waits
// for the next full scan (at most kFullScanEveryMs).
// A record that cannot be decoded is logged once and skipped until
// restart; its entry stays for an administrator. Every other writer of queue records must go
// through this Scheduler's thread too. A held message is never taken by take_due(): it has
// no schedule entry, and a stale entry of a held record is removed rather than taken.

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "queue/db.h"
#include "queue/record.h"
#include "queue/retry.h"
#include "queue/writer.h"

namespace queue {

// What one attempt learnt about one recipient (an index into the envelope's recipients).
struct Outcome {
  enum class Kind { kDelivered, kDeferred, kFailed };
  size_t rcpt = 0;
  Kind kind = Kind::kDeferred;
  std::string reply;       // "250 2.0.0 Ok", "451 4.7.1 Greylisted", as said (or made up) then
  std::string remote_mta;  // "mx.example.com[192.0.2.1]:25"; empty when no server was reached
};

struct SettleResult {
  bool finished = false;             // every recipient is final; the message is gone
  std::vector<size_t> newly_failed;  // recipients failed by this settle, expiry included
  // The message stays deferred, is old enough for a delay warning and none is recorded
  // (see settle() for how to send one atomically).
  bool delay_warning_due = false;
  int64_t next_attempt_ms = 0;  // the new due time; 0 when finished
  MessageRecord record_after;   // as committed (as it was last, when finished)
};

// Which deferred messages flush() makes due now; the fields set must all hold.
struct FlushScope {
  std::optional<std::string> id;      // this message only
  std::optional<std::string> domain;  // a pending recipient in this domain (ASCII case ignored)
};

class Scheduler {
 public:
  // How late (wall clock) another thread may commit an entry whose due time it read earlier
  // without the entry waiting for a full scan, and how often a full scan runs.
  static constexpr int64_t kLateWriteMs = 10'000;
  static constexpr int64_t kFullScanEveryMs = 10'000;

  using SettleDone = std::function<void(core::Status, SettleResult)>;
  using Done = std::function<void(core::Status)>;
  // true: the message changed; false: it was already as asked (held, or not held).
  using ChangeDone = std::function<void(core::Result<bool>)>;
  using CountDone = std::function<void(core::Result<size_t>)>;

  // Requires validate(policy) to be ok.
  Scheduler(Db& db, Writer& writer, RetryPolicy policy, const core::Clock& clock);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Up to `max` messages whose entry is due at or before now_ms, earliest first (same time:
  // ID order), now leased. Entries of leased messages are passed over, as are stale ones
  // (no record, a held record, or a record whose next_attempt_ms is another time), which are
  // also removed through the writer. Fails (leasing nothing) only when RocksDB does.
  core::Result<std::vector<MessageRecord>> take_due(int64_t now_ms, size_t max);

  // The earliest due time among entries not leased, for arming a timer; nullopt when
  // nothing waits. It may be a stale entry's time: the take_due() it triggers removes it.
  core::Result<std::optional<int64_t>> next_due_ms() const;

  // Applies the outcomes of an attempt on the leased message `id` and commits, in one batch:
  // - each outcome moves its recipient forward only: a pending recipient becomes delivered
  //   or failed, or stays pending (deferred); its attempts grow by one, last_attempt_ms,
  //   last_reply and remote_mta are set. Outcomes for recipients already final are ignored.
  // - every recipient final: the record, its body chunks and its schedule entry are deleted;
  // - else, the lifetime is over: every pending recipient fails with "4.4.7 message expired
  //   after <lifetime> in queue; last error: <its last reply>" and the message is deleted;
  // - else the message is deferred: due at next_attempt_ms() for the most attempts among
  //   pending recipients, but no later than its expiry (one last try at the deadline); the
  //   old schedule entry is replaced.
  // - due_by_ms is for recipients this attempt left alone (a throttled destination), which
  //   wait without an attempt counted: the message is due then (never before now + 1 ms),
  //   or at the backoff time if a recipient deferred by this attempt comes first. A message
  //   none of whose recipients was ever tried stays active.
  // - mark_delay_warned records that the delay warning was sent. To send one, check
  //   delay_warning_due() on the leased record before settling and queue the warning in
  //   `extra` with this flag, so that the warning and the flag commit together.
  // - `extra` runs on the writer thread and adds the caller's writes (add_new_message for a
  //   DSN). If it throws, nothing of this settle is written and `done` gets kInvalid.
  // `done` gets the commit's status and, when ok, the result. The lease ends just before
  // `done` runs, whatever the status; after a failure nothing was written and the message
  // is due again at its old time (an attempt that delivered will be repeated). kInvalid for
  // an ID that is not leased or a recipient index out of range.
  void settle(const std::string& id, const std::vector<Outcome>& outcomes, Writer::Fill extra,
              SettleDone done, bool mark_delay_warned = false,
              std::optional<int64_t> due_by_ms = std::nullopt);

  // Leases the message `id` whatever its due time or state (held included), for a caller
  // that settles it at once: an administrator's bounce. kNotFound for an unknown ID,
  // kTemporary when it is leased already.
  core::Result<MessageRecord> take(const std::string& id);

  // Ends a lease without an outcome (shutdown mid-attempt).
  void release(const std::string& id);

  bool is_leased(const std::string& id) const;
  size_t leased_count() const;

  // The administrator's changes. Each refuses with kNotFound for an unknown ID and with
  // kTemporary ("being delivered now; try again") while the message is leased, then commits
  // one batch and answers after it.
  //
  // hold: state held, schedule entry deleted; delivery will not take it until released.
  // The record keeps its next_attempt_ms, the time it would have been tried. false when it
  // was held already (nothing written).
  void hold(const std::string& id, ChangeDone done);
  // release_held: a held message becomes due now: state deferred if any recipient was ever
  // tried, else active; next_attempt_ms = now and its schedule entry written. false when it
  // was not held (nothing written). A message past its lifetime expires at its next attempt.
  void release_held(const std::string& id, ChangeDone done);
  // remove: the record, every body chunk and the schedule entry deleted; no DSN.
  void remove(const std::string& id, Done done);

  // `porter queue flush [ID]`, retry now: makes the deferred messages in `scope` due now by
  // moving their schedule entries (one batch), and answers how many moved: a message
  // already due, or leased, needs nothing. With an ID: kNotFound when unknown, kInvalid when
  // held (release it first). Without one, the whole schedule is scanned (held messages have
  // no entry).
  void flush(const FlushScope& scope, CountDone done);

  const RetryPolicy& policy() const { return policy_; }

 private:
  void lease(const std::string& id);
  // kTemporary when `id` is leased.
  core::Status refuse_leased(const std::string& id) const;
  // Leases `ids` (not leased now) until `fill` commits, then releases them and calls done.
  void commit_leased(std::vector<std::string> ids, Writer::Fill fill, Done done);
  void remove_stale(std::vector<std::string> keys);
  // Where scans of the schedule start (see floor_ms_).
  std::string scan_start() const { return schedule_key(floor_ms_, ""); }

  Db& db_;
  Writer& writer_;
  const RetryPolicy policy_;
  const core::Clock& clock_;
  std::mt19937_64 rng_;
  std::unordered_set<std::string> unreadable_;  // IDs whose record is corrupt, logged once
  // No live entry is due before this: scans seek here instead of walking, from the front,
  // past the deletions every delivered message leaves (a drained backlog of 100,000 left
  // half the delivery loop's CPU there). take_due() sets it to the first entry it keeps, but
  // never later than now - kLateWriteMs (an entry committed by another thread may carry a due
  // time read a little earlier), and from time to time back to 0 (a full scan: a clock
  // stepped back, or a writer later than that).
  int64_t floor_ms_ = 0;
  int64_t full_scan_ms_ = 0;  // when the last full scan ran

  mutable std::mutex mu_;
  std::unordered_set<std::string> leased_;    // guarded by mu_
  std::unordered_set<std::string> cleaning_;  // stale schedule keys being removed; by mu_
};

}  // namespace queue
