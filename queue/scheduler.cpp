#include "queue/scheduler.h"

#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>

#include "core/address.h"
#include "core/log.h"
#include "queue/store.h"

namespace queue {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// "5 days", "4 hours", "90 minutes": the largest unit that divides the duration exactly.

// The upper bound of schedule keys due at or before `ms`.
std::string due_bound(int64_t ms) {
  return schedule_key(ms == kNever ? ms : ms + 1, "");
}

bool has_pending(const MessageRecord& r) {
  return std::any_of(r.status.begin(), r.status.end(),
                     [](const RecipientStatus& s) { return s.state == RecipientState::kPending; });
}

// A schedule entry is live when its record exists, is not held, and names this due time.
bool entry_matches(const MessageRecord& r, const std::string& key) {
  return r.state != MessageState::kHeld && schedule_key(r.next_attempt_ms, r.id) == key;
}

// A WriteBatch operation fails only when the batch outgrows its limits; the writer rolls back
// a fill that throws and reports kInvalid.
void must(const rocksdb::Status& rs, const std::string& what) {
  if (!rs.ok()) throw std::runtime_error(what + ": " + rs.ToString());
}

// What settle() will commit, computed on the scheduler's thread.
struct Plan {
  SettleResult result;
  std::string old_key;  // the schedule entry the message was leased from
  std::string encoded;  // the new record; empty when the message is finished
};

core::Result<Plan> plan_settle(MessageRecord record, const std::vector<Outcome>& outcomes,
                               const RetryPolicy& policy, int64_t now, bool mark_delay_warned,
                               std::optional<int64_t> due_by, std::mt19937_64& rng) {
  for (const Outcome& o : outcomes)
    if (o.rcpt >= record.status.size())
      return core::Status::invalid("queue: settle of " + record.id + ": recipient " +
                                   std::to_string(o.rcpt) + " of " +
                                   std::to_string(record.status.size()));
  Plan plan;
  SettleResult& result = plan.result;
  plan.old_key = schedule_key(record.next_attempt_ms, record.id);

  std::vector<bool> tried(record.status.size());
  bool deferred_now = false;  // some recipient tried by this attempt is still pending
  for (const Outcome& o : outcomes) {
    RecipientStatus& s = record.status[o.rcpt];
    if (s.state != RecipientState::kPending) continue;  // states only move forward
    if (!tried[o.rcpt] && s.attempts < std::numeric_limits<uint32_t>::max()) ++s.attempts;
    tried[o.rcpt] = true;
    s.last_attempt_ms = now;
    s.last_reply = o.reply;
    s.remote_mta = o.remote_mta;
    if (o.kind == Outcome::Kind::kDelivered) {
      s.state = RecipientState::kDelivered;
    } else if (o.kind == Outcome::Kind::kFailed) {
      s.state = RecipientState::kFailed;
      result.newly_failed.push_back(o.rcpt);
    } else {
      deferred_now = true;
    }
  }
  if (mark_delay_warned) record.delay_warned = true;

  if (has_pending(record) && expired(policy, record.created_ms, now)) {
    // RFC 3463 4.4.7: delivery time expired. The last reply says why it never went.
    for (size_t i = 0; i < record.status.size(); ++i) {
      RecipientStatus& s = record.status[i];
      if (s.state != RecipientState::kPending) continue;
      s.state = RecipientState::kFailed;
      s.last_reply = expiry_reply(policy, s.last_reply);
      result.newly_failed.push_back(i);
    }
  }
  std::sort(result.newly_failed.begin(), result.newly_failed.end());

  if (has_pending(record)) {
    uint32_t most = 0;
    bool tried_ever = false;
    for (const RecipientStatus& s : record.status) {
      if (s.state == RecipientState::kPending) most = std::max(most, s.attempts);
      tried_ever = tried_ever || s.attempts > 0;
    }
    // One last attempt at the deadline rather than a backoff step past it.
    const int64_t deadline = policy.max_lifetime_ms > kNever - record.created_ms
                                 ? kNever
                                 : record.created_ms + policy.max_lifetime_ms;
    // Recipients held back (due_by) come back then; recipients tried now, after their backoff.
    int64_t next = kNever;
    if (deferred_now || !due_by) next = next_attempt_ms(policy, most, now, rng);
    if (due_by) next = std::min(next, std::max(*due_by, now + 1));
    record.next_attempt_ms = std::min(next, deadline);
    if (tried_ever) record.state = MessageState::kDeferred;
    result.next_attempt_ms = record.next_attempt_ms;
    result.delay_warning_due = delay_warning_due(policy, record, now);
    plan.encoded = encode_record(record);
  } else {
    result.finished = true;
  }
  result.record_after = std::move(record);
  return plan;
}

void write_plan(const Db& db, rocksdb::WriteBatch& b, const Plan& plan) {
  const MessageRecord& r = plan.result.record_after;
  const std::string what = "queue: settling " + r.id;
  must(b.Delete(db.cf(Family::kSchedule), plan.old_key), what);
  if (plan.result.finished) {
    must(b.Delete(db.cf(Family::kEnvelopes), r.id), what);
    for (uint32_t c = 0; c < r.body_chunks; ++c)
      must(b.Delete(db.cf(Family::kBodies), body_key(r.id, c)), what);
    return;
  }
  must(b.Put(db.cf(Family::kEnvelopes), r.id, plan.encoded), what);
  must(b.Put(db.cf(Family::kSchedule), schedule_key(r.next_attempt_ms, r.id), ""), what);
}

std::unique_ptr<rocksdb::Iterator> schedule_iterator(const Db& db, const rocksdb::ReadOptions& ro) {
  return std::unique_ptr<rocksdb::Iterator>(db.raw()->NewIterator(ro, db.cf(Family::kSchedule)));
}

}  // namespace

Scheduler::Scheduler(Db& db, Writer& writer, RetryPolicy policy, const core::Clock& clock)
    : db_(db),
      writer_(writer),
      policy_(std::move(policy)),
      clock_(clock),
      rng_(std::random_device{}()) {}

core::Result<std::vector<MessageRecord>> Scheduler::take_due(int64_t now_ms, size_t max) {
  std::vector<MessageRecord> due;
  if (max == 0) return due;
  if (now_ms < floor_ms_ || now_ms - full_scan_ms_ >= kFullScanEveryMs) {
    floor_ms_ = 0;
    full_scan_ms_ = now_ms;
  }
  std::optional<int64_t> first_kept;  // the due time of the first entry not found stale
  std::vector<std::string> stale;
  core::Status error;
  const std::string upper = due_bound(now_ms);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  auto it = schedule_iterator(db_, ro);
  for (it->Seek(scan_start()); it->Valid() && due.size() < max; it->Next()) {
    std::string key = it->key().ToString();
    const auto parsed = parse_schedule_key(key);
    if (!parsed) {
      stale.push_back(std::move(key));
      continue;
    }
    const std::string id(parsed->id);
    if (is_leased(id) || unreadable_.count(id) != 0) {
      if (!first_kept) first_kept = parsed->due_ms;
      continue;
    }
    // The latest record, not the iterator's snapshot: a settle that committed since the scan
    // began has moved the message, and its old entry must not be taken.
    auto record = get(db_, id);
    if (!record) {
      if (record.status().kind() == core::Status::Kind::kNotFound) {
        stale.push_back(std::move(key));
        continue;
      }
      if (record.status().kind() == core::Status::Kind::kCorrupt) {
        unreadable_.insert(id);
        core::LogLine(core::LogLevel::kError, "queue-record-unreadable")
            .kv("id", id)
            .kv("error", record.status().message())
            .emit();
        continue;
      }
      error = record.status();
      break;
    }
    if (!entry_matches(*record, key)) {
      stale.push_back(std::move(key));
      continue;
    }
    if (!first_kept) first_kept = parsed->due_ms;
    lease(id);
    due.push_back(std::move(record).value());
  }
  if (error.is_ok() && !it->status().ok())
    error = to_status(it->status(), "queue: scanning the schedule in " + db_.dir());
  if (!error) {
    for (const MessageRecord& r : due) release(r.id);
    return error;
  }
  floor_ms_ = std::min(first_kept.value_or(now_ms), now_ms - kLateWriteMs);
  remove_stale(std::move(stale));
  return due;
}

core::Result<std::optional<int64_t>> Scheduler::next_due_ms() const {
  auto it = schedule_iterator(db_, rocksdb::ReadOptions());
  for (it->Seek(scan_start()); it->Valid(); it->Next()) {
    const std::string key = it->key().ToString();
    const auto parsed = parse_schedule_key(key);
    if (!parsed) continue;
    const std::string id(parsed->id);
    if (unreadable_.count(id) != 0) continue;
    {
      std::lock_guard lock(mu_);
      if (leased_.count(id) != 0 || cleaning_.count(key) != 0) continue;
    }
    return std::optional<int64_t>(parsed->due_ms);
  }
  if (!it->status().ok())
    return to_status(it->status(), "queue: scanning the schedule in " + db_.dir());
  return std::optional<int64_t>();
}

void Scheduler::settle(const std::string& id, const std::vector<Outcome>& outcomes,
                       Writer::Fill extra, SettleDone done, bool mark_delay_warned,
                       std::optional<int64_t> due_by_ms) {
  if (!is_leased(id)) {
    done(core::Status::invalid("queue: settle of " + id + ", which is not leased"), {});
    return;
  }
  auto record = get(db_, id);
  core::Result<Plan> plan = record ? plan_settle(std::move(record).value(), outcomes, policy_,
                                                 clock_.now_ms(), mark_delay_warned, due_by_ms,
                                                 rng_)
                                   : core::Result<Plan>(record.status());
  if (!plan) {
    release(id);
    done(plan.status(), {});
    return;
  }
  auto shared = std::make_shared<Plan>(std::move(plan).value());
  writer_.submit(
      [&db = db_, shared, extra = std::move(extra)](rocksdb::WriteBatch& b) {
        write_plan(db, b, *shared);
        if (extra) extra(b);
      },
      [this, id, shared, done = std::move(done)](const core::Status& s) {
        release(id);
        done(s, s ? std::move(shared->result) : SettleResult{});
      });
}

void Scheduler::lease(const std::string& id) {
  std::lock_guard lock(mu_);
  leased_.insert(id);
}

void Scheduler::release(const std::string& id) {
  std::lock_guard lock(mu_);
  leased_.erase(id);
}

bool Scheduler::is_leased(const std::string& id) const {
  std::lock_guard lock(mu_);
  return leased_.count(id) != 0;
}

size_t Scheduler::leased_count() const {
  std::lock_guard lock(mu_);
  return leased_.size();
}

void Scheduler::remove_stale(std::vector<std::string> keys) {
  {
    std::lock_guard lock(mu_);
    // One removal in flight per key, however often the loop scans meanwhile.
    std::erase_if(keys, [&](const std::string& k) { return !cleaning_.insert(k).second; });
  }
  if (keys.empty()) return;
  // Filled on the writer thread, read by `done` on the same thread after the commit.
  auto removed = std::make_shared<std::vector<std::string>>();
  writer_.submit(
      [&db = db_, keys, removed](rocksdb::WriteBatch& b) {
        for (const std::string& key : keys) {
          std::string ignored;
          const rocksdb::Status rs =
              db.raw()->Get(rocksdb::ReadOptions(), db.cf(Family::kSchedule), key, &ignored);
          // Gone already: the settle that moved its message deleted it after the scan began.
          if (rs.IsNotFound()) continue;
          must(rs, "queue: reading a schedule entry");
          must(b.Delete(db.cf(Family::kSchedule), key), "queue: removing a schedule entry");
          removed->push_back(key);
        }
      },
      [this, keys, removed](const core::Status& s) {
        {
          std::lock_guard lock(mu_);
          for (const std::string& k : keys) cleaning_.erase(k);
        }
        if (!s) {
          core::LogLine(core::LogLevel::kWarn, "stale-schedule-entries-kept")
              .kv("count", static_cast<int64_t>(keys.size()))
              .kv("error", s.to_string())
              .emit();
          return;
        }
        for (const std::string& k : *removed) {
          core::LogLine line(core::LogLevel::kWarn, "stale-schedule-entry-removed");
          if (const auto parsed = parse_schedule_key(k))
            line.kv("id", parsed->id).kv("due_ms", parsed->due_ms);
          else
            line.kv("key_bytes", static_cast<int64_t>(k.size()));
          line.emit();
        }
      });
}

core::Result<MessageRecord> Scheduler::take(const std::string& id) {
  if (core::Status s = refuse_leased(id); !s) return s;
  auto record = get(db_, id);
  if (record) lease(id);
  return record;
}

core::Status Scheduler::refuse_leased(const std::string& id) const {
  if (!is_leased(id)) return core::Status::ok();
  return core::Status::temporary("queue: " + id + " is being delivered now; try again");
}

void Scheduler::commit_leased(std::vector<std::string> ids, Writer::Fill fill, Done done) {
  for (const std::string& id : ids) lease(id);
  writer_.submit(std::move(fill),
                 [this, ids = std::move(ids), done = std::move(done)](core::Status s) {
                   for (const std::string& id : ids) release(id);
                   done(std::move(s));
                 });
}

void Scheduler::hold(const std::string& id, ChangeDone done) {
  if (core::Status s = refuse_leased(id); !s) return done(s);
  auto record = get(db_, id);
  if (!record) return done(record.status());
  if (record->state == MessageState::kHeld) return done(false);
  const std::string old_key = schedule_key(record->next_attempt_ms, id);
  record->state = MessageState::kHeld;
  commit_leased(
      {id},
      [&db = db_, id, old_key, encoded = encode_record(*record)](rocksdb::WriteBatch& b) {
        const std::string what = "queue: holding " + id;
        must(b.Delete(db.cf(Family::kSchedule), old_key), what);
        must(b.Put(db.cf(Family::kEnvelopes), id, encoded), what);
      },
      [done = std::move(done)](core::Status s) {
        done(s ? core::Result<bool>(true) : core::Result<bool>(std::move(s)));
      });
}

void Scheduler::release_held(const std::string& id, ChangeDone done) {
  if (core::Status s = refuse_leased(id); !s) return done(s);
  auto record = get(db_, id);
  if (!record) return done(record.status());
  if (record->state != MessageState::kHeld) return done(false);
  const bool tried = std::any_of(record->status.begin(), record->status.end(),
                                 [](const RecipientStatus& s) { return s.attempts > 0; });
  record->state = tried ? MessageState::kDeferred : MessageState::kActive;
  record->next_attempt_ms = clock_.now_ms();
  commit_leased(
      {id},
      [&db = db_, id, key = schedule_key(record->next_attempt_ms, id),
       encoded = encode_record(*record)](rocksdb::WriteBatch& b) {
        const std::string what = "queue: releasing " + id;
        must(b.Put(db.cf(Family::kEnvelopes), id, encoded), what);
        must(b.Put(db.cf(Family::kSchedule), key, ""), what);
      },
      [done = std::move(done)](core::Status s) {
        done(s ? core::Result<bool>(true) : core::Result<bool>(std::move(s)));
      });
}

void Scheduler::remove(const std::string& id, Done done) {
  if (core::Status s = refuse_leased(id); !s) return done(s);
  auto record = get(db_, id);
  if (!record) return done(record.status());
  commit_leased(
      {id},
      [&db = db_, id, key = schedule_key(record->next_attempt_ms, id),
       chunks = record->body_chunks](rocksdb::WriteBatch& b) {
        const std::string what = "queue: removing " + id;
        must(b.Delete(db.cf(Family::kSchedule), key), what);
        must(b.Delete(db.cf(Family::kEnvelopes), id), what);
        for (uint32_t c = 0; c < chunks; ++c)
          must(b.Delete(db.cf(Family::kBodies), body_key(id, c)), what);
      },
      std::move(done));
}

void Scheduler::flush(const FlushScope& scope, CountDone done) {
  const int64_t now = clock_.now_ms();
  struct Move {
    std::string id;
    std::string old_key;
    std::string encoded;  // the record, due now
  };
  std::vector<Move> moves;
  auto in_scope = [&](const MessageRecord& r) {
    if (!scope.domain) return true;
    for (size_t i = 0; i < r.status.size() && i < r.envelope.recipients.size(); ++i)
      if (r.status[i].state == RecipientState::kPending &&
          core::iequals(r.envelope.recipients[i].address.domain, *scope.domain))
        return true;
    return false;
  };
  auto move_now = [&](MessageRecord r) {
    std::string old_key = schedule_key(r.next_attempt_ms, r.id);
    r.next_attempt_ms = now;
    moves.push_back(Move{r.id, std::move(old_key), encode_record(r)});
  };
  if (scope.id) {
    auto record = get(db_, *scope.id);
    if (!record) return done(record.status());
    if (record->state == MessageState::kHeld)
      return done(core::Status::invalid("queue: " + *scope.id + " is held; release it first"));
    if (!is_leased(*scope.id) && record->next_attempt_ms > now && in_scope(*record))
      move_now(std::move(record).value());
  } else {
    auto it = schedule_iterator(db_, rocksdb::ReadOptions());
    for (it->Seek(due_bound(now)); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      const auto parsed = parse_schedule_key(key);
      if (!parsed) continue;
      const std::string entry_id(parsed->id);
      if (is_leased(entry_id)) continue;
      auto record = get(db_, entry_id);
      if (!record) {
        const auto kind = record.status().kind();
        if (kind == core::Status::Kind::kNotFound || kind == core::Status::Kind::kCorrupt) continue;
        return done(record.status());
      }
      if (entry_matches(*record, key) && in_scope(*record)) move_now(std::move(record).value());
    }
    if (!it->status().ok())
      return done(to_status(it->status(), "queue: scanning the schedule in " + db_.dir()));
  }
  if (moves.empty()) return done(size_t{0});

  std::vector<std::string> ids;
  for (const Move& m : moves) ids.push_back(m.id);
  auto shared = std::make_shared<std::vector<Move>>(std::move(moves));
  commit_leased(
      std::move(ids),
      [&db = db_, shared, now](rocksdb::WriteBatch& b) {
        for (const Move& m : *shared) {
          const std::string what = "queue: flushing " + m.id;
          must(b.Delete(db.cf(Family::kSchedule), m.old_key), what);
          must(b.Put(db.cf(Family::kEnvelopes), m.id, m.encoded), what);
          must(b.Put(db.cf(Family::kSchedule), schedule_key(now, m.id), ""), what);
        }
      },
      [n = shared->size(), done = std::move(done)](core::Status s) {
        done(s ? core::Result<size_t>(n) : core::Result<size_t>(std::move(s)));
      });
}

}  // namespace queue
