#include "mta/mailbox/store.h"

#include <catch2/catch.hpp>
#include <set>

#include "tests/queue/queue_test_util.h"

using namespace mta::mailbox;
using queue_test::TempDir;

namespace {

Append append(std::string user, std::string mailbox, std::string_view bytes, Flags flags = {}) {
  Append a;
  a.user = std::move(user);
  a.mailbox = std::move(mailbox);
  a.parts = {bytes};
  a.flags = std::move(flags);
  a.internal_date_ms = 1'700'000'000'000;
  return a;
}

// Stages and writes one batch, as the queue writer would.
std::vector<Appended> commit(Store& store, queue::Db& db, const std::vector<Append>& appends) {
  rocksdb::WriteBatch batch;
  Changes changes;
  auto staged = store.stage_appends(batch, appends, changes);
  INFO(staged.status().to_string());
  REQUIRE(staged.is_ok());
  REQUIRE(db.raw()->Write(queue::synced_writes(), &batch).ok());
  store.notify_committed(changes, core::Status::ok());
  return std::move(staged).value();
}

std::string read_all(const Store& store, std::string_view user, std::string_view mailbox,
                     uint32_t uid) {
  std::string out;
  auto s = store.read_message(user, mailbox, uid, [&](std::string_view c) {
    out += c;
    return true;
  });
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  return out;
}

std::vector<MessageEntry> messages(const Store& store, std::string_view user,
                                   std::string_view mailbox) {
  std::vector<MessageEntry> out;
  auto s = store.list_messages(user, mailbox, [&](const MessageEntry& m) {
    out.push_back(m);
    return true;
  });
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  return out;
}

}  // namespace

TEST_CASE("unit: the first append creates every special-use mailbox", "[mailbox][unit]") {
  TempDir dir;
  auto db = queue_test::open_db(dir.path());
  core::FakeClock clock;
  Store store(*db, clock);
  CHECK(store.mailboxes("alice").value().empty());
  CHECK(store.bytes_used("alice").value() == 0);
  CHECK(store.mailbox("alice", "INBOX").status().kind() == core::Status::Kind::kNotFound);

  const auto done = commit(store, *db, {append("Alice", "Junk", "spam\r\n")});
  REQUIRE(done.size() == 1);
  CHECK(done[0].mailbox == "Junk");
  CHECK(done[0].uid == 1);
  CHECK(done[0].size == 6);

  const auto boxes = store.mailboxes("ALICE").value();
  std::vector<std::pair<std::string, SpecialUse>> got;
  std::set<uint32_t> uidvalidities, ids;
  for (const auto& b : boxes) {
    got.emplace_back(b.name, b.status.special_use);
    uidvalidities.insert(b.status.uidvalidity);
    ids.insert(b.status.id);
    CHECK(b.status.uidvalidity >= clock.now_ms() / 1000);
  }
  CHECK(got == std::vector<std::pair<std::string, SpecialUse>>{
                   {"INBOX", SpecialUse::kNone},
                   {"Archive", SpecialUse::kArchive},
                   {"Drafts", SpecialUse::kDrafts},
                   {"Junk", SpecialUse::kJunk},
                   {"Sent", SpecialUse::kSent},
                   {"Trash", SpecialUse::kTrash},
               });
  CHECK(uidvalidities.size() == 6);
  CHECK(ids.size() == 6);
  const auto junk = store.mailbox("alice", "Junk").value().status;
  CHECK(junk.messages == 1);
  CHECK(junk.bytes == 6);
  CHECK(junk.uidnext == 2);
  const auto inbox = store.mailbox("alice", "inbox").value();
  CHECK(inbox.name == "INBOX");
  CHECK(inbox.status.messages == 0);
  CHECK(inbox.status.uidnext == 1);
  CHECK(store.bytes_used("alice").value() == 6);
  CHECK(store.mailboxes("bob").value().empty());
  CHECK(junk.unseen == 1);
  CHECK(junk.deleted == 0);
  CHECK(store.subscriptions("alice").value() ==
        std::vector<std::string>{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"});

  SECTION("a mailbox that is not standard is not made up") {
    rocksdb::WriteBatch batch;
    Changes changes;
    auto r = store.stage_appends(batch, {append("alice", "Lists", "x")}, changes);
    CHECK(r.status().kind() == core::Status::Kind::kNotFound);
    CHECK(batch.Count() == 0);
    CHECK(changes.empty());
  }
}

TEST_CASE("unit: UIDs strictly increase and UIDVALIDITY holds across reopen", "[mailbox][unit]") {
  TempDir dir;
  core::FakeClock clock;
  uint32_t uidvalidity = 0;
  uint32_t last_uid = 0;
  for (int round = 0; round < 3; ++round) {
    auto db = queue_test::open_db(dir.path());
    Store store(*db, clock);
    clock.advance_ms(5'000);  // a new mailbox now would get another UIDVALIDITY
    for (int i = 0; i < 3; ++i) {
      const auto done =
          commit(store, *db, {append("alice", "INBOX", "m"), append("alice", "INBOX", "n")});
      for (const auto& a : done) {
        CHECK(a.uid > last_uid);
        last_uid = a.uid;
        if (uidvalidity == 0) uidvalidity = a.uidvalidity;
        CHECK(a.uidvalidity == uidvalidity);
      }
    }
    const auto box = store.mailbox("alice", "INBOX").value().status;
    CHECK(box.uidvalidity == uidvalidity);
    CHECK(box.uidnext == last_uid + 1);
    CHECK(box.messages == 6u * (round + 1));
  }
  auto db = queue_test::open_db(dir.path());
  Store store(*db, clock);
  uint32_t prev = 0;
  uint64_t prev_modseq = 0;
  for (const auto& m : messages(store, "alice", "INBOX")) {
    CHECK(m.uid > prev);
    CHECK(m.record.modseq > prev_modseq);
    prev = m.uid;
    prev_modseq = m.record.modseq;
  }
  CHECK(prev == last_uid);
  CHECK(store.mailbox("alice", "INBOX").value().status.highest_modseq == prev_modseq);
}

TEST_CASE("unit: an append whose batch is not written leaves nothing", "[mailbox][unit]") {
  TempDir dir;
  auto db = queue_test::open_db(dir.path());
  core::FakeClock clock;
  Store store(*db, clock);

  SECTION("on a user's first delivery") {
    rocksdb::WriteBatch lost;
    Changes changes;
    REQUIRE(store.stage_appends(lost, {append("alice", "INBOX", "lost")}, changes).is_ok());
    store.forget_staged();
    CHECK(store.mailboxes("alice").value().empty());
    CHECK(store.bytes_used("alice").value() == 0);
    const auto done = commit(store, *db, {append("alice", "INBOX", "kept")});
    CHECK(done[0].uid >= 1);
    const auto box = store.mailbox("alice", "INBOX").value().status;
    CHECK(box.messages == 1);
    CHECK(box.bytes == 4);
    CHECK(box.uidvalidity == done[0].uidvalidity);
  }
  SECTION("into an existing mailbox: a gap, never a UID given twice") {
    const auto first = commit(store, *db, {append("alice", "INBOX", "one")});
    rocksdb::WriteBatch lost;
    Changes changes;
    auto staged = store.stage_appends(lost, {append("alice", "INBOX", "lost")}, changes);
    REQUIRE(staged.is_ok());
    store.forget_staged();
    const auto after = store.mailbox("alice", "INBOX").value().status;
    CHECK(after.messages == 1);
    CHECK(after.bytes == 3);
    const auto next = commit(store, *db, {append("alice", "INBOX", "two")});
    CHECK(next[0].uid > staged.value()[0].uid);
    CHECK(next[0].uidvalidity == first[0].uidvalidity);
    const auto listed = messages(store, "alice", "INBOX");
    REQUIRE(listed.size() == 2);
    CHECK(read_all(store, "alice", "INBOX", listed[1].uid) == "two");
    CHECK(store.mailbox("alice", "INBOX").value().status.bytes == 6);
  }
  SECTION("a failing append undoes the whole call") {
    const auto first = commit(store, *db, {append("alice", "INBOX", "one")});
    rocksdb::WriteBatch batch;
    REQUIRE(batch.Put(db->cf(queue::Family::kDefault), "caller", "x").ok());
    Changes changes;
    auto r = store.stage_appends(
        batch,
        {append("alice", "INBOX", "a"), append("bob", "INBOX", "b"), append("alice", "Nope", "c")},
        changes);
    CHECK(r.status().kind() == core::Status::Kind::kNotFound);
    CHECK(batch.Count() == 1);  // the caller's own write stays
    // The counters were not moved: the next append is the next UID.
    const auto next = commit(store, *db, {append("alice", "INBOX", "two")});
    CHECK(next[0].uid == first[0].uid + 1);
    CHECK(store.mailboxes("bob").value().empty());
  }
}

TEST_CASE("unit: flags, keywords, dates and bytes round-trip", "[mailbox][unit]") {
  TempDir dir;
  auto db = queue_test::open_db(dir.path());
  core::FakeClock clock;
  Store store(*db, clock);
  const std::string big = queue_test::make_bytes(2 * kChunkSize + 17, 7);
  Append a = append("alice", "INBOX", "", {kSeen | kFlagged, {"$Label1", "NonJunk"}});
  a.parts = {"Return-Path: <x@y>\r\n", big, ""};
  a.internal_date_ms = 1'234'567'890'123;
  const auto done =
      commit(store, *db,
             {a, append("alice", "Drafts", "draft", {kDraft, {}}), append("alice", "INBOX", "")});
  CHECK(done[0].size == big.size() + 20);

  const auto inbox = messages(store, "alice", "INBOX");
  REQUIRE(inbox.size() == 2);
  CHECK(inbox[0].uid == done[0].uid);
  CHECK(inbox[0].record.flags == Flags{kSeen | kFlagged, {"$Label1", "NonJunk"}});
  CHECK(inbox[0].record.internal_date_ms == 1'234'567'890'123);
  CHECK(inbox[0].record.size == big.size() + 20);
  CHECK(inbox[0].record.chunks == 3);
  CHECK(read_all(store, "alice", "INBOX", inbox[0].uid) == "Return-Path: <x@y>\r\n" + big);
  CHECK(inbox[1].record.size == 0);
  CHECK(read_all(store, "alice", "INBOX", inbox[1].uid).empty());
  CHECK(store.message("alice", "Drafts", done[1].uid).value().record.flags.system == kDraft);
  CHECK(store.message("alice", "Drafts", 99).status().kind() == core::Status::Kind::kNotFound);
  CHECK(store.bytes_used("alice").value() == big.size() + 20 + 5);

  SECTION("a reader may stop early") {
    int chunks = 0;
    CHECK(store
              .read_message("alice", "INBOX", inbox[0].uid,
                            [&](std::string_view) { return ++chunks < 2; })
              .is_ok());
    CHECK(chunks == 2);
  }
  SECTION("read-only, as the CLI opens it") {
    db.reset();
    auto ro = queue_test::open_db(dir.path(), queue::OpenMode::kReadOnly);
    Store reader(*ro, clock);
    CHECK(messages(reader, "alice", "INBOX").size() == 2);
    CHECK(read_all(reader, "alice", "INBOX", inbox[0].uid).size() == big.size() + 20);
  }
  SECTION("bad flags are refused") {
    rocksdb::WriteBatch batch;
    Changes changes;
    auto kind = [&](const Append& a) {
      return store.stage_appends(batch, {a}, changes).status().kind();
    };
    CHECK(kind(append("alice", "INBOX", "x", {64, {}})) == core::Status::Kind::kInvalid);
    CHECK(kind(append("alice", "INBOX", "x", {0, {std::string(256, 'k')}})) ==
          core::Status::Kind::kInvalid);
    CHECK(kind(append("", "INBOX", "x")) == core::Status::Kind::kInvalid);
    CHECK(batch.Count() == 0);
    CHECK(changes.empty());
  }
}

TEST_CASE("unit: a missing chunk is reported as corrupt", "[mailbox][unit]") {
  TempDir dir;
  auto db = queue_test::open_db(dir.path());
  core::FakeClock clock;
  Store store(*db, clock);
  const auto done = commit(store, *db, {append("alice", "INBOX", "hello")});
  const auto box = store.mailbox("alice", "INBOX").value().status;
  REQUIRE(db->raw()
              ->Delete(rocksdb::WriteOptions(), db->cf(queue::Family::kMailboxBlobs),
                       blob_key("alice", box.id, done[0].uid, 0))
              .ok());
  const auto s =
      store.read_message("alice", "INBOX", done[0].uid, [](std::string_view) { return true; });
  CHECK(s.kind() == core::Status::Kind::kCorrupt);
  CHECK_THAT(s.message(), Catch::Contains("chunk 0 missing"));
}

TEST_CASE("unit: expunge removes messages and counts them once", "[mailbox][unit]") {
  TempDir dir;
  auto db = queue_test::open_db(dir.path());
  core::FakeClock clock;
  Store store(*db, clock);
  const std::string big = queue_test::make_bytes(kChunkSize + 1, 3);
  const auto done = commit(store, *db,
                           {append("alice", "INBOX", "one"), append("alice", "INBOX", big),
                            append("alice", "INBOX", "three")});
  const auto before = store.mailbox("alice", "INBOX").value().status;
  auto expunge = [&](rocksdb::WriteBatch& batch, std::vector<uint32_t> uids) {
    mta::mailbox::Changes changes;
    const core::Status s = store.stage_expunge(batch, changes, "Alice", "inbox", uids, false).status();
    INFO(s.to_string());
    REQUIRE(s.is_ok());
  };
  auto write = [&](rocksdb::WriteBatch& batch) {
    REQUIRE(db->raw()->Write(queue::synced_writes(), &batch).ok());
  };

  SECTION("committed") {
    rocksdb::WriteBatch batch;
    expunge(batch, {done[1].uid, 999});
    expunge(batch, {done[1].uid});  // a second session in the same batch: passed over
    write(batch);
    const auto after = store.mailbox("alice", "INBOX").value().status;
    CHECK(after.messages == 2);
    CHECK(after.bytes == 8);
    CHECK(after.highest_modseq == before.highest_modseq + 1);
    CHECK(after.uidnext == before.uidnext);
    std::vector<uint32_t> left;
    for (const auto& m : messages(store, "alice", "INBOX")) left.push_back(m.uid);
    CHECK(left == std::vector<uint32_t>{done[0].uid, done[2].uid});
    CHECK(store.message("alice", "INBOX", done[1].uid).status().kind() ==
          core::Status::Kind::kNotFound);
    // The blobs went with the record.
    std::unique_ptr<rocksdb::Iterator> it(
        db->raw()->NewIterator(rocksdb::ReadOptions(), db->cf(queue::Family::kMailboxBlobs)));
    size_t chunks = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++chunks;
    CHECK(chunks == 2);
    // Later stagings start from the committed counters.
    rocksdb::WriteBatch more;
    expunge(more, {done[1].uid, done[0].uid});
    write(more);
    CHECK(store.mailbox("alice", "INBOX").value().status.messages == 1);
    CHECK(store.bytes_used("alice").value() == 5);
  }
  SECTION("not written") {
    rocksdb::WriteBatch lost;
    expunge(lost, {done[0].uid});
    store.forget_staged();
    rocksdb::WriteBatch batch;
    expunge(batch, {done[0].uid, done[2].uid});
    write(batch);
    const auto after = store.mailbox("alice", "INBOX").value().status;
    CHECK(after.messages == 1);
    CHECK(after.bytes == big.size());
  }
  SECTION("an unknown mailbox") {
    rocksdb::WriteBatch batch;
    mta::mailbox::Changes changes;
    CHECK(store.stage_expunge(batch, changes, "alice", "Nope", {1}, false).status().kind() ==
          core::Status::Kind::kNotFound);
    CHECK(batch.Count() == 0);
  }
}
