#include "queue/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/queue_id.h"
#include "queue/writer.h"
#include "tests/queue/queue_test_util.h"

using queue::Family;
using queue::NewMessage;
using queue_test::make_bytes;
using queue_test::make_envelope;
using queue_test::open_db;
using queue_test::TempDir;
using queue_test::Waiter;
using Kind = core::Status::Kind;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;

// Writes messages through a real Writer and waits until they are committed.
void store(queue::Db& db, std::vector<NewMessage> messages) {
  queue::Writer writer(db);
  Waiter waiter(messages.size());
  for (size_t i = 0; i < messages.size(); ++i)
    writer.enqueue(std::move(messages[i]), waiter.done(i));
  writer.start();
  REQUIRE(waiter.wait());
  for (size_t i = 0; i < waiter.size(); ++i) REQUIRE(waiter.result(i).is_ok());
}

NewMessage message(const std::string& id, std::vector<std::string> chunks) {
  return NewMessage{id, make_envelope(1), std::move(chunks), kNow};
}

std::vector<std::string> split(const std::string& s, const std::vector<size_t>& sizes) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t n : sizes) {
    out.push_back(s.substr(pos, n));
    pos += n;
  }
  if (pos < s.size()) out.push_back(s.substr(pos));
  return out;
}

void raw_put(queue::Db& db, Family f, const std::string& key, const std::string& value) {
  REQUIRE(db.raw()->Put(queue::synced_writes(), db.cf(f), key, value).ok());
}

void raw_delete(queue::Db& db, Family f, const std::string& key) {
  REQUIRE(db.raw()->Delete(queue::synced_writes(), db.cf(f), key).ok());
}

}  // namespace

TEST_CASE("store: a 3 MiB body across chunks reads back identical", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  core::QueueIdGenerator ids;
  const std::string id = ids.next(kNow);
  const std::string body = make_bytes(3 * 1024 * 1024, 42);
  std::vector<size_t> sizes = {65536, 1, 100000, 3000};  // then the rest in 256 KiB pieces
  size_t used = 0;
  for (size_t n : sizes) used += n;
  while (used + 262144 < body.size()) {
    sizes.push_back(262144);
    used += 262144;
  }
  const std::vector<std::string> chunks = split(body, sizes);
  store(*db, {message(id, chunks)});
  // Read from the memtable, or from blob files after a flush.
  if (GENERATE(false, true))
    REQUIRE(db->raw()->Flush(rocksdb::FlushOptions(), db->cf(Family::kBodies)).ok());

  auto whole = queue::read_body(*db, id);
  REQUIRE(whole.is_ok());
  CHECK(whole->size() == body.size());
  CHECK((*whole == body));

  std::vector<size_t> seen;
  std::string joined;
  REQUIRE(queue::read_body_chunks(*db, id, [&](std::string_view c) {
            seen.push_back(c.size());
            joined += c;
            return true;
          }).is_ok());
  CHECK((joined == body));
  std::vector<size_t> expected;
  for (const auto& c : chunks) expected.push_back(c.size());
  CHECK(seen == expected);

  size_t visits = 0;
  CHECK(queue::read_body_chunks(*db, id, [&](std::string_view) { return ++visits < 2; }).is_ok());
  CHECK(visits == 2);
}

TEST_CASE("store: headers end at the empty line, wherever the chunks split", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  core::QueueIdGenerator ids;
  const std::string head = "From: a@example.org\r\nSubject: hi\r\n\tthere\r\n\r\n";
  const std::string msg = head + "body line\r\n";
  std::vector<NewMessage> messages;
  std::vector<std::string> split_ids;
  for (size_t cut = 0; cut <= msg.size(); ++cut) {
    split_ids.push_back(ids.next(kNow));
    messages.push_back(message(split_ids.back(), {msg.substr(0, cut), msg.substr(cut)}));
  }
  std::vector<std::string> bytes;  // one chunk per byte
  for (char c : msg) bytes.emplace_back(1, c);
  split_ids.push_back(ids.next(kNow));
  messages.push_back(message(split_ids.back(), bytes));
  const auto [text, expected] = GENERATE(table<std::string, std::string>({
      {"From: a\r\nSubject: no body\r\n", "From: a\r\nSubject: no body\r\n"},
      {"From: a\r\nnot a header line\r\nmore\r\n", "From: a\r\n"},
      {"", ""},
  }));
  const std::string other = ids.next(kNow);
  messages.push_back(message(other, {text}));
  store(*db, std::move(messages));

  for (size_t cut = 0; cut < split_ids.size(); ++cut) {
    INFO("chunks split at " << cut << " (or one chunk per byte)");
    auto h = queue::headers(*db, split_ids[cut]);
    REQUIRE(h.is_ok());
    CHECK(*h == head);
  }
  auto h = queue::headers(*db, other);
  REQUIRE(h.is_ok());
  CHECK(*h == expected);
}

TEST_CASE("store: list returns records in ID order and stops when asked", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  core::QueueIdGenerator gen;
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(gen.next(kNow + i));
  std::vector<NewMessage> messages;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) messages.push_back(message(*it, {"x"}));
  store(*db, std::move(messages));  // committed newest first

  std::vector<std::string> listed;
  REQUIRE(queue::list(*db, [&](const queue::MessageRecord& r) {
            listed.push_back(r.id);
            return true;
          }).is_ok());
  CHECK(listed == ids);

  listed.clear();
  REQUIRE(queue::list(*db, [&](const queue::MessageRecord& r) {
            listed.push_back(r.id);
            return listed.size() < 2;
          }).is_ok());
  CHECK(listed == std::vector<std::string>(ids.begin(), ids.begin() + 2));
}

TEST_CASE("store: missing and damaged messages are reported, not guessed", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  core::QueueIdGenerator ids;
  const std::string id = ids.next(kNow);
  store(*db, {message(id, {std::string(5000, 'a'), std::string(5000, 'b'), "c"})});
  const auto noop = [](std::string_view) { return true; };

  SECTION("an unknown ID") {
    const std::string unknown = ids.next(kNow);
    CHECK(queue::get(*db, unknown).status().kind() == Kind::kNotFound);
    CHECK(queue::read_body(*db, unknown).status().kind() == Kind::kNotFound);
    CHECK(queue::read_body_chunks(*db, unknown, noop).kind() == Kind::kNotFound);
    CHECK(queue::headers(*db, unknown).status().kind() == Kind::kNotFound);
    CHECK_THAT(queue::get(*db, unknown).status().message(), Catch::Contains(unknown));
  }
  SECTION("an unreadable record") {
    raw_put(*db, Family::kEnvelopes, id, "\x07junk");
    const auto r = queue::get(*db, id);
    CHECK(r.status().kind() == Kind::kCorrupt);
    CHECK_THAT(r.status().message(), Catch::Contains(id));
    CHECK_THAT(r.status().message(), Catch::Contains("version 7"));
    const core::Status s = queue::list(*db, [](const queue::MessageRecord&) { return true; });
    CHECK(s.kind() == Kind::kCorrupt);
    CHECK_THAT(s.message(), Catch::Contains(id));
  }
  SECTION("a missing chunk") {
    raw_delete(*db, Family::kBodies, queue::body_key(id, 1));
    const auto r = queue::read_body(*db, id);
    CHECK(r.status().kind() == Kind::kCorrupt);
    CHECK_THAT(r.status().message(), Catch::Contains(id + " has chunk 2 where chunk 1"));
  }
  SECTION("a missing last chunk") {
    raw_delete(*db, Family::kBodies, queue::body_key(id, 2));
    const core::Status s = queue::read_body_chunks(*db, id, noop);
    CHECK(s.kind() == Kind::kCorrupt);
    CHECK_THAT(s.message(), Catch::Contains("has 2 chunks, 10000 bytes; its record says 3 chunks"));
  }
  SECTION("an extra chunk") {
    raw_put(*db, Family::kBodies, queue::body_key(id, 3), "d");
    CHECK(queue::read_body(*db, id).status().kind() == Kind::kCorrupt);
  }
  SECTION("a size that disagrees with the record") {
    auto record = queue::get(*db, id);
    REQUIRE(record.is_ok());
    record->body_size += 1;
    raw_put(*db, Family::kEnvelopes, id, queue::encode_record(*record));
    const auto r = queue::read_body(*db, id);
    CHECK(r.status().kind() == Kind::kCorrupt);
    CHECK_THAT(r.status().message(), Catch::Contains("10001 bytes"));
  }
}

TEST_CASE("store: the start-up sweep removes bodies without a record", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  core::QueueIdGenerator gen;
  // In key order: orphan, kept, orphan, kept, orphan.
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(gen.next(kNow + i));
  const std::vector<std::string> kept = {ids[1], ids[3]};
  const std::string kept_body = make_bytes(9000, 7);
  store(*db, {message(kept[0], {kept_body.substr(0, 4500), kept_body.substr(4500)}),
              message(kept[1], {kept_body})});
  for (int i : {0, 2, 4}) {
    raw_put(*db, Family::kBodies, queue::body_key(ids[i], 0), make_bytes(6000, i));
    raw_put(*db, Family::kBodies, queue::body_key(ids[i], 1), "tail");
    raw_put(*db, Family::kBodies, queue::body_key(ids[i], 2), "more");
  }

  const std::string log_path = tmp.path() + "/log";
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  core::set_log_fd(fd);
  const core::Status s = queue::remove_incomplete_bodies(*db);
  core::set_log_fd(2);
  ::close(fd);
  REQUIRE(s.is_ok());

  std::set<std::string> left;
  std::unique_ptr<rocksdb::Iterator> it(
      db->raw()->NewIterator(rocksdb::ReadOptions(), db->cf(Family::kBodies)));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    left.insert(std::string(queue::parse_body_key(it->key().ToStringView())->id));
  CHECK(left == std::set<std::string>(kept.begin(), kept.end()));
  for (const auto& id : kept) CHECK((queue::read_body(*db, id).value() == kept_body));

  std::ifstream in(log_path);
  std::stringstream log;
  log << in.rdbuf();
  for (int i : {0, 2, 4})
    CHECK_THAT(log.str(), Catch::Contains("orphan-body-removed id=" + ids[i] + " chunks=3"));
  CHECK_THAT(log.str(), !Catch::Contains(kept[0]));

  CHECK(queue::remove_incomplete_bodies(*db).is_ok());  // nothing left to do
  CHECK(queue::read_body(*db, kept[1]).is_ok());
}
