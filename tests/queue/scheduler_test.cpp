#include "queue/scheduler.h"

#include <catch2/catch.hpp>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/queue_id.h"
#include "queue/record.h"
#include "queue/store.h"
#include "tests/queue/queue_test_util.h"

using queue::Family;
using queue::MessageRecord;
using queue::MessageState;
using queue::Outcome;
using queue::RecipientState;
using queue::Scheduler;
using queue::SettleResult;
using queue_test::make_envelope;
using queue_test::open_db;
using queue_test::TempDir;
using Kind = core::Status::Kind;

namespace {

constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// No jitter, so that due times are exact.
queue::RetryPolicy exact_policy() {
  queue::RetryPolicy p;
  p.jitter = 0;
  return p;
}

Outcome delivered(size_t rcpt) {
  return {rcpt, Outcome::Kind::kDelivered, "250 2.0.0 Ok", "mx.example.net[192.0.2.25]:25"};
}
Outcome deferred(size_t rcpt, std::string reply = "451 4.7.1 Greylisted") {
  return {rcpt, Outcome::Kind::kDeferred, std::move(reply), "mx.example.net[192.0.2.25]:25"};
}
Outcome failed(size_t rcpt) {
  return {rcpt, Outcome::Kind::kFailed, "550 5.1.1 No such user", "mx.example.net[192.0.2.25]:25"};
}

// A real database, writer and scheduler in a temporary directory, with a clock the test moves.
struct Queue {
  explicit Queue(queue::RetryPolicy policy = exact_policy()) : policy(std::move(policy)) { open(); }
  void open() {
    db = open_db(tmp.path());
    writer = std::make_unique<queue::Writer>(*db);
    writer->start();
    scheduler = std::make_unique<Scheduler>(*db, *writer, policy, clock);
  }
  // As a process exit does it: the writer answers what is pending, the leases are forgotten.
  void close() {
    writer->stop();
    scheduler.reset();
    writer.reset();
    db.reset();
  }
  ~Queue() {
    if (writer) close();
  }

  std::string enqueue(size_t recipients, std::vector<std::string> chunks, int64_t at) {
    std::string id = ids.next(at);
    const core::Status s =
        commit_new(queue::NewMessage{id, make_envelope(recipients), std::move(chunks), at});
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return id;
  }
  core::Status commit_new(queue::NewMessage m) {
    std::promise<core::Status> p;
    writer->enqueue(std::move(m), [&](core::Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
  // Waits until everything handed to the writer so far is committed (requests are in order).
  void drain() {
    std::promise<core::Status> p;
    writer->submit([](rocksdb::WriteBatch&) {}, [&](core::Status s) { p.set_value(std::move(s)); });
    REQUIRE(p.get_future().get().is_ok());
  }

  std::vector<std::string> take(int64_t now, size_t max = 100) {
    auto due = scheduler->take_due(now, max);
    INFO(due.status().to_string());
    REQUIRE(due.is_ok());
    std::vector<std::string> out;
    for (const auto& r : *due) out.push_back(r.id);
    return out;
  }

  std::pair<core::Status, SettleResult> settle(const std::string& id,
                                               const std::vector<Outcome>& outcomes,
                                               queue::Writer::Fill extra = nullptr,
                                               bool mark_delay_warned = false) {
    std::promise<std::pair<core::Status, SettleResult>> p;
    scheduler->settle(
        id, outcomes, std::move(extra),
        [&](core::Status s, SettleResult r) {
          p.set_value({std::move(s), std::move(r)});
        },
        mark_delay_warned);
    return p.get_future().get();
  }
  SettleResult settle_ok(const std::string& id, const std::vector<Outcome>& outcomes,
                         queue::Writer::Fill extra = nullptr, bool mark_delay_warned = false) {
    auto [s, r] = settle(id, outcomes, std::move(extra), mark_delay_warned);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return r;
  }

  // Runs an asynchronous scheduler call and waits for its answer.
  template <typename R, typename Start>
  R await(Start start) {
    std::promise<R> p;
    start([&](R r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  core::Result<size_t> flush(queue::FlushScope scope) {
    return await<core::Result<size_t>>([&](auto cb) { scheduler->flush(scope, cb); });
  }
  core::Result<bool> hold(const std::string& id) {
    return await<core::Result<bool>>([&](auto cb) { scheduler->hold(id, cb); });
  }
  core::Result<bool> release_held(const std::string& id) {
    return await<core::Result<bool>>([&](auto cb) { scheduler->release_held(id, cb); });
  }
  core::Status remove(const std::string& id) {
    return await<core::Status>([&](auto cb) { scheduler->remove(id, cb); });
  }

  MessageRecord record(const std::string& id) {
    auto r = queue::get(*db, id);
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    return std::move(r).value();
  }
  bool exists(const std::string& id) {
    return queue::get(*db, id).status().kind() != Kind::kNotFound;
  }
  std::vector<std::string> schedule() { return keys(Family::kSchedule); }
  std::vector<std::string> keys(Family f) {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(
        db->raw()->NewIterator(rocksdb::ReadOptions(), db->cf(f)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) out.push_back(it->key().ToString());
    REQUIRE(it->status().ok());
    return out;
  }
  std::optional<int64_t> next_due() {
    auto n = scheduler->next_due_ms();
    REQUIRE(n.is_ok());
    return *n;
  }
  // Writes a record and schedule keys behind the scheduler's back, as a crash or a bug might.
  void put_raw(const MessageRecord& r, const std::vector<int64_t>& due_times) {
    rocksdb::WriteBatch b;
    REQUIRE(b.Put(db->cf(Family::kEnvelopes), r.id, queue::encode_record(r)).ok());
    for (int64_t t : due_times)
      REQUIRE(b.Put(db->cf(Family::kSchedule), queue::schedule_key(t, r.id), "").ok());
    REQUIRE(db->raw()->Write(queue::synced_writes(), &b).ok());
  }

  TempDir tmp;
  queue::RetryPolicy policy;
  core::FakeClock clock{kStart};
  core::QueueIdGenerator ids;
  std::unique_ptr<queue::Db> db;
  std::unique_ptr<queue::Writer> writer;
  std::unique_ptr<Scheduler> scheduler;
};

}  // namespace

TEST_CASE("scheduler: take_due leases due messages in due order, at most max", "[queue][unit]") {
  Queue q;
  const std::string a = q.enqueue(1, {"a"}, kStart);
  const std::string c = q.enqueue(1, {"c"}, kStart + 20);
  const std::string b = q.enqueue(1, {"b"}, kStart + 10);
  const std::string later = q.enqueue(1, {"d"}, kStart + kHour);
  CHECK(q.next_due() == kStart);

  CHECK(q.take(kStart + 20, 2) == std::vector<std::string>{a, b});
  CHECK(q.scheduler->is_leased(a));
  CHECK(q.take(kStart + 20, 0).empty());
  CHECK(q.take(kStart + 20) == std::vector<std::string>{c});  // a and b are leased
  CHECK(q.take(kStart + 20).empty());
  CHECK(q.scheduler->leased_count() == 3);
  CHECK(q.next_due() == kStart + kHour);  // the leased ones do not arm the timer

  SECTION("a released lease makes the message due again") {
    q.scheduler->release(b);
    CHECK_FALSE(q.scheduler->is_leased(b));
    CHECK(q.next_due() == kStart + 10);
    CHECK(q.take(kStart + 20) == std::vector<std::string>{b});
  }
  SECTION("what is not yet due stays") {
    CHECK(q.take(kStart + kHour - 1).empty());
    CHECK(q.take(kStart + kHour) == std::vector<std::string>{later});
    CHECK_FALSE(q.next_due().has_value());
  }
  SECTION("the returned record is the queued one") {
    q.scheduler->release(a);
    auto due = q.scheduler->take_due(kStart, 1);
    REQUIRE(due.is_ok());
    REQUIRE(due->size() == 1);
    CHECK((*due)[0] == q.record(a));
    CHECK((*due)[0].envelope == make_envelope(1));
  }
}

TEST_CASE("scheduler: held messages and stale entries are passed over, stale ones removed",
          "[queue][unit]") {
  Queue q;
  const std::string live = q.enqueue(1, {"x"}, kStart);

  MessageRecord held;
  held.id = q.ids.next(kStart);
  held.envelope = make_envelope(1);
  held.status.resize(1);
  held.state = MessageState::kHeld;
  held.next_attempt_ms = kStart;
  q.put_raw(held, {kStart});  // a held message has no entry (docs/queue-format.md)

  MessageRecord moved = held;
  moved.id = q.ids.next(kStart);
  moved.state = MessageState::kDeferred;
  moved.next_attempt_ms = kStart + kHour;
  q.put_raw(moved, {kStart - 5, kStart + kHour});  // an old entry left behind

  const std::string no_record_key = queue::schedule_key(kStart - 1, q.ids.next(kStart));
  const std::string short_key("\0\0\0\0bad", 7);  // too short to be a schedule key
  REQUIRE(q.db->raw()
              ->Put(queue::synced_writes(), q.db->cf(Family::kSchedule), no_record_key, "")
              .ok());
  REQUIRE(
      q.db->raw()->Put(queue::synced_writes(), q.db->cf(Family::kSchedule), short_key, "").ok());

  CHECK(q.take(kStart) == std::vector<std::string>{live});
  q.drain();  // the removal went through the writer
  CHECK(q.schedule() == std::vector<std::string>{queue::schedule_key(kStart, live),
                                                 queue::schedule_key(kStart + kHour, moved.id)});
  CHECK(q.record(held.id).state == MessageState::kHeld);  // records are left alone
  CHECK(q.flush({held.id, {}}).status().kind() == Kind::kInvalid);
  CHECK(q.next_due() == kStart + kHour);
  CHECK(q.take(kStart + kHour) == std::vector<std::string>{moved.id});
}

TEST_CASE("scheduler: a message whose recipients are all final is removed whole", "[queue][unit]") {
  Queue q;
  const std::string other = q.enqueue(1, {"other"}, kStart);
  const std::string id =
      q.enqueue(2, {std::string(5000, 'a'), std::string(5000, 'b'), "c"}, kStart);
  q.clock.advance_ms(1234);
  REQUIRE(q.take(kStart + 1234) == std::vector<std::string>{other, id});

  const SettleResult r = q.settle_ok(id, {delivered(0), failed(1)});
  CHECK(r.finished);
  CHECK(r.newly_failed == std::vector<size_t>{1});
  CHECK(r.next_attempt_ms == 0);
  CHECK_FALSE(r.delay_warning_due);
  REQUIRE(r.record_after.status.size() == 2);
  CHECK(r.record_after.status[0].state == RecipientState::kDelivered);
  CHECK(r.record_after.status[0].attempts == 1);
  CHECK(r.record_after.status[0].last_attempt_ms == kStart + 1234);
  CHECK(r.record_after.status[0].last_reply == "250 2.0.0 Ok");
  CHECK(r.record_after.status[0].remote_mta == "mx.example.net[192.0.2.25]:25");
  CHECK(r.record_after.status[1].state == RecipientState::kFailed);
  CHECK(r.record_after.status[1].last_reply == "550 5.1.1 No such user");
  CHECK_FALSE(q.scheduler->is_leased(id));

  CHECK_FALSE(q.exists(id));
  CHECK(q.keys(Family::kBodies) == std::vector<std::string>{queue::body_key(other, 0)});
  CHECK(q.schedule() == std::vector<std::string>{queue::schedule_key(kStart, other)});
}

TEST_CASE("scheduler: a partly delivered message is deferred, and states only move forward",
          "[queue][unit]") {
  Queue q;
  const std::string id = q.enqueue(3, {"body"}, kStart);
  REQUIRE(q.take(kStart) == std::vector<std::string>{id});

  // Recipient 2 was not tried (its domain's connection limit was reached, say).
  SettleResult r = q.settle_ok(id, {delivered(0), deferred(1)});
  CHECK_FALSE(r.finished);
  CHECK(r.newly_failed.empty());
  CHECK(r.next_attempt_ms == kStart + kMinute);
  CHECK(r.record_after.state == MessageState::kDeferred);
  CHECK(r.record_after == q.record(id));
  const auto& st = r.record_after.status;
  CHECK(st[0].state == RecipientState::kDelivered);
  CHECK(st[1].state == RecipientState::kPending);
  CHECK(st[1].attempts == 1);
  CHECK(st[1].last_reply == "451 4.7.1 Greylisted");
  CHECK(st[2] == queue::RecipientStatus{});
  CHECK(q.schedule() == std::vector<std::string>{queue::schedule_key(kStart + kMinute, id)});
  CHECK_FALSE(q.scheduler->is_leased(id));
  CHECK(q.take(kStart + kMinute - 1).empty());
  CHECK(q.next_due() == kStart + kMinute);

  q.clock.advance_ms(kMinute);
  REQUIRE(q.take(kStart + kMinute) == std::vector<std::string>{id});
  // A late 5xx for a delivered recipient changes nothing; two outcomes for one recipient in
  // one attempt (next MX) count one attempt, and the final one wins.
  r = q.settle_ok(id,
                  {failed(0), deferred(1, "421 4.3.2 Shutting down"), delivered(1), deferred(2)});
  CHECK(r.record_after.status[0] == st[0]);
  CHECK(r.record_after.status[1].state == RecipientState::kDelivered);
  CHECK(r.record_after.status[1].attempts == 2);
  CHECK(r.record_after.status[1].last_reply == "250 2.0.0 Ok");
  CHECK(r.record_after.status[2].attempts == 1);
  CHECK(r.newly_failed.empty());
  CHECK(r.next_attempt_ms == kStart + 2 * kMinute);  // only recipient 2 is left, tried once

  q.clock.advance_ms(kMinute);
  REQUIRE(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
  r = q.settle_ok(id, {deferred(2)});
  CHECK(r.record_after.status[2].attempts == 2);
  CHECK(r.next_attempt_ms == q.clock.now_ms() + 5 * kMinute);
  CHECK(r.record_after == q.record(id));
}

TEST_CASE("scheduler: a message past its lifetime fails with the expiry reason", "[queue][unit]") {
  queue::RetryPolicy policy = exact_policy();
  policy.max_lifetime_ms = kDay;
  Queue q(policy);
  const std::string id = q.enqueue(3, {"body"}, kStart);
  REQUIRE(q.take(kStart) == std::vector<std::string>{id});
  q.settle_ok(id, {deferred(0), delivered(2)});

  SECTION("the last attempt comes at the deadline, not a backoff step past it") {
    q.clock.advance_ms(kDay - 30'000);
    REQUIRE(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
    const SettleResult r = q.settle_ok(id, {deferred(0)});
    CHECK(r.next_attempt_ms == kStart + kDay);
  }
  SECTION("when the lifetime is over every pending recipient fails") {
    q.clock.advance_ms(kDay);
    REQUIRE(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
    const SettleResult r = q.settle_ok(id, {deferred(0, "450 4.2.0 Mailbox busy")});
    CHECK(r.finished);
    CHECK(r.newly_failed == std::vector<size_t>{0, 1});
    const auto& st = r.record_after.status;
    CHECK(st[0].state == RecipientState::kFailed);
    CHECK(st[0].last_reply ==
          "4.4.7 message expired after 1 day in queue; last error: 450 4.2.0 Mailbox busy");
    CHECK(st[0].remote_mta == "mx.example.net[192.0.2.25]:25");
    CHECK(st[0].attempts == 2);
    CHECK(st[1].state == RecipientState::kFailed);
    CHECK(st[1].last_reply == "4.4.7 message expired after 1 day in queue");  // never tried
    CHECK(st[2].state == RecipientState::kDelivered);
    CHECK_FALSE(q.exists(id));
    CHECK(q.schedule().empty());
    CHECK(q.keys(Family::kBodies).empty());
  }
}

TEST_CASE("scheduler: the caller's writes commit with the settle, or nothing does",
          "[queue][unit]") {
  Queue q;
  const std::string id = q.enqueue(1, {"body"}, kStart);
  REQUIRE(q.take(kStart) == std::vector<std::string>{id});
  const std::string dsn = q.ids.next(kStart);

  SECTION("a bounce queued in the same batch as the failure") {
    auto bounce = std::make_shared<queue::NewMessage>(
        queue::NewMessage{dsn, make_envelope(1), {"Subject: Undelivered Mail\r\n\r\n..."}, kStart});
    const SettleResult r = q.settle_ok(id, {failed(0)}, [&, bounce](rocksdb::WriteBatch& b) {
      if (auto s = queue::add_new_message(*q.db, b, *bounce); !s)
        throw std::runtime_error(s.message());
    });
    CHECK(r.finished);
    CHECK_FALSE(q.exists(id));
    CHECK(q.record(dsn).state == MessageState::kActive);
    CHECK(queue::read_body(*q.db, dsn).value() == "Subject: Undelivered Mail\r\n\r\n...");
    CHECK(q.take(kStart) == std::vector<std::string>{dsn});
  }
  SECTION("extra writes that fail undo the settle") {
    const MessageRecord before = q.record(id);
    auto [s, r] = q.settle(id, {failed(0)}, [](rocksdb::WriteBatch&) {
      throw std::runtime_error("no room for the bounce");
    });
    CHECK(s.kind() == Kind::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("no room for the bounce"));
    CHECK(q.record(id) == before);
    CHECK(q.schedule() == std::vector<std::string>{queue::schedule_key(kStart, id)});
    CHECK_FALSE(q.scheduler->is_leased(id));
    CHECK(q.take(kStart) == std::vector<std::string>{id});  // due again at its old time
  }
}

TEST_CASE("scheduler: a delay warning is reported until it is marked sent", "[queue][unit]") {
  queue::RetryPolicy policy = exact_policy();
  policy.delay_warning_ms = kHour;
  Queue q(policy);
  const std::string id = q.enqueue(2, {"body"}, kStart);
  REQUIRE(q.take(kStart) == std::vector<std::string>{id});
  CHECK_FALSE(q.settle_ok(id, {deferred(0), deferred(1)}).delay_warning_due);

  q.clock.advance_ms(kHour);
  REQUIRE(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
  SettleResult r = q.settle_ok(id, {deferred(0), delivered(1)});
  CHECK(r.delay_warning_due);
  CHECK_FALSE(r.record_after.delay_warned);

  q.clock.advance_ms(kHour);
  REQUIRE(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
  REQUIRE(queue::delay_warning_due(q.scheduler->policy(), q.record(id), q.clock.now_ms()));
  r = q.settle_ok(id, {deferred(0)}, nullptr, /*mark_delay_warned=*/true);
  CHECK_FALSE(r.delay_warning_due);
  CHECK(r.record_after.delay_warned);
  CHECK(q.record(id).delay_warned);

  q.clock.advance_ms(kHour);
  REQUIRE(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
  CHECK_FALSE(q.settle_ok(id, {deferred(0)}).delay_warning_due);
}

TEST_CASE("scheduler: settle refuses what it cannot apply", "[queue][unit]") {
  Queue q;
  const std::string id = q.enqueue(2, {"body"}, kStart);

  SECTION("a message that is not leased") {
    auto [s, r] = q.settle(id, {delivered(0)});
    CHECK(s.kind() == Kind::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("not leased"));
  }
  SECTION("a recipient that does not exist, ending the lease") {
    REQUIRE(q.take(kStart) == std::vector<std::string>{id});
    auto [s, r] = q.settle(id, {delivered(0), delivered(2)});
    CHECK(s.kind() == Kind::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("recipient 2 of 2"));
    CHECK_FALSE(q.scheduler->is_leased(id));
  }
  CHECK(q.record(id).status[0].state == RecipientState::kPending);
}

TEST_CASE("scheduler: the queue state survives a restart, leases do not", "[queue][unit]") {
  Queue q;
  const std::string deferred_id = q.enqueue(2, {"one"}, kStart);
  const std::string in_flight = q.enqueue(1, {"two"}, kStart);
  REQUIRE(q.take(kStart) == std::vector<std::string>{deferred_id, in_flight});
  const SettleResult r = q.settle_ok(deferred_id, {delivered(0), deferred(1)});

  q.close();  // in_flight was leased: a crash in the middle of its attempt
  q.open();
  CHECK(q.scheduler->leased_count() == 0);
  CHECK(q.record(deferred_id) == r.record_after);
  CHECK(q.next_due() == kStart);
  CHECK(q.take(kStart) == std::vector<std::string>{in_flight});
  CHECK(q.take(r.next_attempt_ms) == std::vector<std::string>{deferred_id});
}

TEST_CASE("scheduler: flush makes deferred mail due now", "[queue][unit]") {
  Queue q;
  const std::string one = q.enqueue(1, {"one"}, kStart);
  const std::string two = q.enqueue(1, {"two"}, kStart);
  const std::string fresh = q.enqueue(1, {"three"}, kStart + 10);
  REQUIRE(q.take(kStart) == std::vector<std::string>{one, two});
  q.settle_ok(one, {deferred(0)});
  q.settle_ok(two, {deferred(0)});
  q.clock.advance_ms(10);
  const int64_t now = q.clock.now_ms();
  REQUIRE(q.take(now) == std::vector<std::string>{fresh});  // leased: nothing to flush there

  auto n = q.flush({two, {}});
  REQUIRE(n.is_ok());
  CHECK(*n == 1);
  CHECK(q.record(two).next_attempt_ms == now);
  CHECK(q.record(two).state == MessageState::kDeferred);
  CHECK(q.take(now) == std::vector<std::string>{two});

  n = q.flush({});
  REQUIRE(n.is_ok());
  CHECK(*n == 1);  // `two` and `fresh` are leased
  CHECK(q.take(now) == std::vector<std::string>{one});
  CHECK(q.schedule() == std::vector<std::string>{queue::schedule_key(now, one),
                                                 queue::schedule_key(now, two),
                                                 queue::schedule_key(now, fresh)});

  n = q.flush({});
  REQUIRE(n.is_ok());
  CHECK(*n == 0);
  CHECK(q.flush({q.ids.next(now), {}}).status().kind() == Kind::kNotFound);
}

TEST_CASE("scheduler: a held message is never taken, and is due at once when released",
          "[queue][unit]") {
  Queue q;
  const std::string id = q.enqueue(2, {"body"}, kStart);
  const std::string other = q.enqueue(1, {"other"}, kStart + kMinute);

  SECTION("never tried: active again") {
    REQUIRE(q.hold(id).value());
    CHECK(q.record(id).state == MessageState::kHeld);
    CHECK(q.record(id).next_attempt_ms == kStart);  // when it would have gone
    CHECK(q.schedule() == std::vector<std::string>{queue::schedule_key(kStart + kMinute, other)});
    CHECK_FALSE(q.hold(id).value());  // held already: nothing to do
    CHECK_FALSE(q.scheduler->is_leased(id));

    // Its due time passes, and then some: only the other message is taken.
    q.clock.advance_ms(kDay);
    CHECK(q.next_due() == kStart + kMinute);
    CHECK(q.take(q.clock.now_ms()) == std::vector<std::string>{other});
    CHECK(q.take(q.clock.now_ms()).empty());
    CHECK(q.flush({id, {}}).status().kind() == Kind::kInvalid);

    REQUIRE(q.release_held(id).value());
    const MessageRecord r = q.record(id);
    CHECK(r.state == MessageState::kActive);
    CHECK(r.next_attempt_ms == q.clock.now_ms());
    CHECK_FALSE(q.release_held(id).value());  // not held: nothing to do
    CHECK(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
  }
  SECTION("tried before: deferred again, with its attempts") {
    REQUIRE(q.take(kStart) == std::vector<std::string>{id});
    q.settle_ok(id, {deferred(0), delivered(1)});
    REQUIRE(q.hold(id).value());
    q.clock.advance_ms(kHour);
    CHECK(q.take(q.clock.now_ms()) == std::vector<std::string>{other});
    REQUIRE(q.release_held(id).value());
    const MessageRecord r = q.record(id);
    CHECK(r.state == MessageState::kDeferred);
    CHECK(r.status[0].attempts == 1);
    CHECK(r.status[1].state == RecipientState::kDelivered);
    CHECK(q.take(q.clock.now_ms()) == std::vector<std::string>{id});
  }
}

TEST_CASE("scheduler: administrator changes refuse unknown and leased messages", "[queue][unit]") {
  Queue q;
  const std::string id = q.enqueue(1, {"body"}, kStart);
  const std::string unknown = q.ids.next(kStart);

  SECTION("unknown") {
    CHECK(q.hold(unknown).status().kind() == Kind::kNotFound);
    CHECK(q.release_held(unknown).status().kind() == Kind::kNotFound);
    CHECK(q.remove(unknown).kind() == Kind::kNotFound);
    CHECK(q.scheduler->take(unknown).status().kind() == Kind::kNotFound);
  }
  SECTION("leased: being delivered now") {
    REQUIRE(q.take(kStart) == std::vector<std::string>{id});
    const MessageRecord before = q.record(id);
    const auto h = q.hold(id);
    CHECK(h.status().kind() == Kind::kTemporary);
    CHECK_THAT(h.status().message(), Catch::Contains("being delivered now; try again"));
    CHECK(q.release_held(id).status().kind() == Kind::kTemporary);
    CHECK(q.remove(id).kind() == Kind::kTemporary);
    CHECK(q.scheduler->take(id).status().kind() == Kind::kTemporary);
    CHECK(q.record(id) == before);
    // The attempt settles as usual afterwards.
    CHECK(q.settle_ok(id, {delivered(0)}).finished);
  }
}

TEST_CASE("scheduler: remove deletes the record, every body chunk and the schedule entry",
          "[queue][unit]") {
  Queue q;
  const std::string keep = q.enqueue(1, {"keep"}, kStart);
  const std::string id =
      q.enqueue(2, {std::string(5000, 'a'), std::string(9000, 'b'), "c"}, kStart + 5);
  REQUIRE(q.keys(Family::kBodies).size() == 4);
  const bool held = GENERATE(false, true);
  if (held) REQUIRE(q.hold(id).value());

  REQUIRE(q.remove(id).is_ok());
  CHECK_FALSE(q.exists(id));
  CHECK(q.keys(Family::kBodies) == std::vector<std::string>{queue::body_key(keep, 0)});
  CHECK(q.keys(Family::kEnvelopes) == std::vector<std::string>{keep});
  CHECK(q.schedule() == std::vector<std::string>{queue::schedule_key(kStart, keep)});
  CHECK(q.remove(id).kind() == Kind::kNotFound);
  CHECK(q.take(kStart + kDay) == std::vector<std::string>{keep});
}

TEST_CASE("scheduler: take leases one message by ID, held included, for a bounce",
          "[queue][unit]") {
  Queue q;
  const std::string id = q.enqueue(2, {"body"}, kStart + kHour);  // not due yet
  REQUIRE(q.hold(id).value());
  auto r = q.scheduler->take(id);
  REQUIRE(r.is_ok());
  CHECK(r->state == MessageState::kHeld);
  CHECK(q.scheduler->is_leased(id));
  const SettleResult s = q.settle_ok(id, {failed(0), failed(1)});
  CHECK(s.finished);
  CHECK_FALSE(q.exists(id));
  CHECK(q.keys(Family::kBodies).empty());
  CHECK(q.schedule().empty());
}

TEST_CASE("scheduler: a change in flight leases its message until it commits", "[queue][unit]") {
  Queue q;
  const std::string id = q.enqueue(1, {"body"}, kStart);
  // Hold the writer inside a batch, so that the hold waits behind it.
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::promise<void> entered;
  q.writer->submit(
      [&](rocksdb::WriteBatch&) {
        entered.set_value();
        gate.wait();
      },
      [](core::Status) {});
  entered.get_future().wait();
  std::promise<core::Result<bool>> held;
  q.scheduler->hold(id, [&](core::Result<bool> r) { held.set_value(std::move(r)); });
  CHECK(q.scheduler->is_leased(id));
  CHECK(q.take(kStart).empty());  // the old version is not handed to delivery
  go.set_value();
  REQUIRE(held.get_future().get().value());
  CHECK_FALSE(q.scheduler->is_leased(id));
  CHECK(q.take(kStart + kDay).empty());
}

TEST_CASE("scheduler: flush by domain moves messages with a pending recipient there",
          "[queue][unit]") {
  Queue q;
  auto enqueue_to = [&](std::vector<std::string> domains) {
    core::Envelope e = make_envelope(0);
    for (const auto& d : domains) e.recipients.push_back({{"user", d}, 0, ""});
    const std::string id = q.ids.next(kStart);
    REQUIRE(q.commit_new(queue::NewMessage{id, e, {"body"}, kStart}).is_ok());
    return id;
  };
  const std::string a = enqueue_to({"a.example"});
  const std::string ab = enqueue_to({"b.example", "a.example"});
  const std::string a_done = enqueue_to({"a.example", "b.example"});
  const std::string b = enqueue_to({"b.example"});
  REQUIRE(q.take(kStart).size() == 4);
  q.settle_ok(a, {deferred(0)});
  q.settle_ok(ab, {deferred(0), deferred(1)});
  q.settle_ok(a_done, {delivered(0), deferred(1)});  // a.example no longer waits here
  q.settle_ok(b, {deferred(0)});
  q.clock.advance_ms(10);
  const int64_t now = q.clock.now_ms();

  auto n = q.flush({std::nullopt, "A.EXAMPLE"});
  REQUIRE(n.is_ok());
  CHECK(*n == 2);
  CHECK(q.take(now) == std::vector<std::string>{a, ab});
  CHECK(q.flush({a_done, "a.example"}).value() == 0);
  CHECK(q.flush({a_done, "b.example"}).value() == 1);
  CHECK(q.flush({std::nullopt, "c.example"}).value() == 0);
  CHECK(q.take(now) == std::vector<std::string>{a_done});
}

TEST_CASE("scheduler: scans start at a floor, and mail committed late is still found",
          "[queue][unit]") {
  Queue q;
  const int64_t t = kStart + kHour;
  // Many messages delivered (their entries deleted) leave tombstones at the front; the
  // floor moves past them, so the next scans do not walk them again.
  std::vector<std::string> done;
  for (int i = 0; i < 50; ++i) done.push_back(q.enqueue(1, {"x"}, kStart + i));
  CHECK(q.take(t, 100).size() == 50);
  for (const auto& id : done) q.scheduler->release(id);
  for (const auto& id : done) {
    std::promise<core::Status> p;
    q.scheduler->remove(id, [&p](core::Status s) { p.set_value(s); });
    REQUIRE(p.get_future().get().is_ok());
  }
  CHECK(q.take(t + 1).empty());
  const std::string fresh = q.enqueue(1, {"y"}, t + 2);
  CHECK(q.next_due() == t + 2);
  CHECK(q.take(t + 2) == std::vector<std::string>{fresh});

  // Another thread commits an entry whose due time it read a little earlier: found.
  const std::string late = q.enqueue(1, {"z"}, t + 2 - Scheduler::kLateWriteMs / 2);
  CHECK(q.take(t + 3) == std::vector<std::string>{late});
  // One much later than that (a stepped clock): found by the next full scan.
  const std::string very_late = q.enqueue(1, {"w"}, t - kHour);
  CHECK(q.take(t + 4).empty());
  CHECK(q.take(t + 4 + Scheduler::kFullScanEveryMs) == std::vector<std::string>{very_late});
  // A clock stepped back below the floor scans from the front at once.
  const std::string back = q.enqueue(1, {"v"}, kStart);
  CHECK(q.take(kStart + 1) == std::vector<std::string>{back});
}
