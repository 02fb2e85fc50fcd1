#include "queue/writer.h"

#include <catch2/catch.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/queue_id.h"
#include "queue/record.h"
#include "queue/store.h"
#include "tests/queue/queue_test_util.h"

using queue::Family;
using queue::NewMessage;
using queue::OpenMode;
using queue_test::make_bytes;
using queue_test::make_envelope;
using queue_test::open_db;
using queue_test::TempDir;
using queue_test::Waiter;
using Kind = core::Status::Kind;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;

// A message whose body is `size` bytes cut into chunks of at most `chunk` bytes.
struct TestMessage {
  std::string id;
  std::string body;
  NewMessage as_new(size_t chunk) const {
    NewMessage m{id, make_envelope(2), {}, kNow};
    for (size_t pos = 0; pos < body.size(); pos += chunk)
      m.body_chunks.push_back(body.substr(pos, chunk));
    return m;
  }
};

TestMessage make_message(core::QueueIdGenerator& ids, size_t size, uint32_t seed) {
  return {ids.next(kNow), make_bytes(size, seed)};
}

void check_stored(const queue::Db& db, const TestMessage& m) {
  INFO("message " << m.id);
  auto record = queue::get(db, m.id);
  INFO(record.status().to_string());
  REQUIRE(record.is_ok());
  CHECK(record->envelope == make_envelope(2));
  CHECK(record->body_size == m.body.size());
  auto body = queue::read_body(db, m.id);
  INFO(body.status().to_string());
  REQUIRE(body.is_ok());
  CHECK((*body == m.body));  // not CHECK(a == b): Catch would print megabytes on failure
}

bool has_key(const queue::Db& db, Family f, const std::string& key) {
  std::string value;
  return db.raw()->Get(rocksdb::ReadOptions(), db.cf(f), key, &value).ok();
}

}  // namespace

TEST_CASE("writer: a message is stored with its record, body and schedule entry", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  queue::Writer writer(*db);
  writer.start();
  core::QueueIdGenerator ids;
  const std::string id = ids.next(kNow);
  Waiter waiter(1);
  writer.enqueue(NewMessage{id, make_envelope(2), {"Subject: a\r\n", "", "\r\nbody\r\n"}, kNow},
                 waiter.done(0));
  REQUIRE(waiter.wait());
  CHECK(waiter.result(0).is_ok());

  auto r = queue::get(*db, id);
  REQUIRE(r.is_ok());
  CHECK(r->id == id);
  CHECK(r->envelope == make_envelope(2));
  REQUIRE(r->status.size() == 2);
  CHECK(r->status[0] == queue::RecipientStatus{});
  CHECK(r->status[1] == queue::RecipientStatus{});
  CHECK(r->body_size == 20);
  CHECK(r->body_chunks == 2);  // the empty chunk is not stored
  CHECK(r->state == queue::MessageState::kActive);
  CHECK(r->created_ms == kNow);
  CHECK(r->next_attempt_ms == kNow);
  CHECK(queue::read_body(*db, id).value() == "Subject: a\r\n\r\nbody\r\n");

  std::unique_ptr<rocksdb::Iterator> it(
      db->raw()->NewIterator(rocksdb::ReadOptions(), db->cf(Family::kSchedule)));
  it->SeekToFirst();
  REQUIRE(it->Valid());
  CHECK(it->key().ToString() == queue::schedule_key(kNow, id));
  CHECK(it->value().empty());
  it->Next();
  CHECK_FALSE(it->Valid());
}

TEST_CASE("writer: a burst of requests is committed in one batch", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  queue::Writer writer(*db);
  core::QueueIdGenerator ids;
  constexpr size_t kCount = 40;
  std::vector<TestMessage> messages;
  Waiter waiter(kCount);
  for (size_t i = 0; i < kCount; ++i) {
    messages.push_back(make_message(ids, 100 + 700 * i, static_cast<uint32_t>(i)));
    writer.enqueue(messages.back().as_new(4096), waiter.done(i));
  }
  CHECK(waiter.count() == 0);  // nothing is acknowledged before it is written
  writer.start();
  REQUIRE(waiter.wait());
  for (size_t i = 0; i < kCount; ++i) CHECK(waiter.result(i).is_ok());
  const auto stats = writer.stats();
  CHECK(stats.batches == 1);
  CHECK(stats.batches < stats.requests);
  CHECK(stats.requests == kCount);
  CHECK(stats.largest_batch == kCount);
  CHECK(stats.failed_batches == 0);
  for (const auto& m : messages) check_stored(*db, m);
}

TEST_CASE("writer: many threads enqueueing at once all commit, sharing batches", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  queue::Writer writer(*db);
  writer.start();
  core::QueueIdGenerator ids;
  constexpr size_t kThreads = 4;
  constexpr size_t kPerThread = 30;
  std::vector<TestMessage> messages;
  for (size_t i = 0; i < kThreads * kPerThread; ++i)
    messages.push_back(make_message(ids, (i * 7919) % 20000, static_cast<uint32_t>(i)));
  Waiter waiter(messages.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (size_t k = 0; k < kPerThread; ++k) {
        const size_t i = t * kPerThread + k;
        writer.enqueue(messages[i].as_new(1000 + 3000 * t), waiter.done(i));
      }
    });
  for (auto& t : threads) t.join();
  REQUIRE(waiter.wait());
  for (size_t i = 0; i < messages.size(); ++i) {
    INFO(waiter.result(i).to_string());
    CHECK(waiter.result(i).is_ok());
  }
  const auto stats = writer.stats();
  CHECK(stats.requests == messages.size());
  CHECK(stats.batches >= 1);
  CHECK(stats.batches <= stats.requests);
  for (const auto& m : messages) check_stored(*db, m);
}

TEST_CASE("writer: submit shares the batch and a throwing fill is rolled back", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  queue::Writer writer(*db);
  core::QueueIdGenerator ids;
  const TestMessage m = make_message(ids, 10000, 1);
  Waiter waiter(4);
  writer.enqueue(m.as_new(4096), waiter.done(0));
  writer.submit([&](rocksdb::WriteBatch& b) { (void)b.Put(db->cf(Family::kDefault), "x", "1"); },
                waiter.done(1));
  writer.submit(
      [&](rocksdb::WriteBatch& b) {
        (void)b.Put(db->cf(Family::kDefault), "y", "1");
        throw std::runtime_error("boom");
      },
      waiter.done(2));
  writer.enqueue(NewMessage{"not-a-queue-id", make_envelope(1), {"x"}, kNow}, waiter.done(3));
  writer.start();
  REQUIRE(waiter.wait());
  CHECK(waiter.result(0).is_ok());
  CHECK(waiter.result(1).is_ok());
  CHECK(waiter.result(2).kind() == Kind::kInvalid);
  CHECK_THAT(waiter.result(2).message(), Catch::Contains("boom"));
  CHECK(waiter.result(3).kind() == Kind::kInvalid);
  CHECK_THAT(waiter.result(3).message(), Catch::Contains("not-a-queue-id"));
  check_stored(*db, m);
  CHECK(has_key(*db, Family::kDefault, "x"));
  CHECK_FALSE(has_key(*db, Family::kDefault, "y"));
  CHECK_FALSE(has_key(*db, Family::kEnvelopes, "not-a-queue-id"));
  const auto stats = writer.stats();
  CHECK(stats.batches == 1);
  CHECK(stats.requests == 2);
}

TEST_CASE("writer: stop writes what is pending, later requests are refused", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  core::QueueIdGenerator ids;
  std::vector<TestMessage> messages;
  for (uint32_t i = 0; i < 10; ++i) messages.push_back(make_message(ids, 5000, i));
  queue::Writer writer(*db);
  const bool started = GENERATE(false, true);
  if (started) writer.start();
  Waiter waiter(messages.size());
  for (size_t i = 0; i < messages.size(); ++i)
    writer.enqueue(messages[i].as_new(4096), waiter.done(i));
  writer.stop();
  CHECK(waiter.count() == messages.size());  // all answered before stop() returned
  for (size_t i = 0; i < messages.size(); ++i) CHECK(waiter.result(i).is_ok());
  for (const auto& m : messages) check_stored(*db, m);

  Waiter late(1);
  writer.enqueue(make_message(ids, 10, 99).as_new(10), late.done(0));
  REQUIRE(late.count() == 1);  // answered at once, on this thread
  CHECK(late.result(0).kind() == Kind::kTemporary);
  writer.start();  // no effect once stopped
  writer.submit([](rocksdb::WriteBatch&) {}, late.done(0));
  CHECK(late.result(0).kind() == Kind::kTemporary);
}

TEST_CASE("writer: a failed write fails every request in the batch", "[queue][unit]") {
  TempDir tmp;
  open_db(tmp.path());
  auto db = open_db(tmp.path(), OpenMode::kReadOnly);  // every write is refused
  queue::Writer writer(*db);
  core::QueueIdGenerator ids;
  Waiter waiter(3);
  for (size_t i = 0; i < 3; ++i)
    writer.enqueue(make_message(ids, 100, 1).as_new(50), waiter.done(i));
  writer.start();
  REQUIRE(waiter.wait());
  for (size_t i = 0; i < 3; ++i) {
    CHECK(waiter.result(i).kind() == Kind::kIo);
    CHECK_THAT(waiter.result(i).message(), Catch::Contains("writing a batch of 3 requests"));
    CHECK_THAT(waiter.result(i).message(), Catch::Contains(tmp.path()));
  }
  const auto stats = writer.stats();
  CHECK(stats.batches == 1);
  CHECK(stats.failed_batches == 1);
}

TEST_CASE("writer: everything committed survives close and reopen", "[queue][unit]") {
  TempDir tmp;
  core::QueueIdGenerator ids;
  std::vector<TestMessage> messages;
  for (uint32_t i = 0; i < 5; ++i) messages.push_back(make_message(ids, 3000 * i + 1, i));
  {
    auto db = open_db(tmp.path());
    queue::Writer writer(*db);
    writer.start();
    Waiter waiter(messages.size());
    for (size_t i = 0; i < messages.size(); ++i)
      writer.enqueue(messages[i].as_new(2048), waiter.done(i));
    REQUIRE(waiter.wait());
  }  // the writer stops before the database closes
  const auto mode = GENERATE(OpenMode::kReadWrite, OpenMode::kReadOnly);
  auto db = open_db(tmp.path(), mode);
  std::vector<std::string> listed;
  REQUIRE(queue::list(*db, [&](const queue::MessageRecord& r) {
            listed.push_back(r.id);
            return true;
          }).is_ok());
  REQUIRE(listed.size() == messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    CHECK(listed[i] == messages[i].id);
    check_stored(*db, messages[i]);
  }
}
