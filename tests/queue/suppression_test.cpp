#include "queue/suppression.h"

#include <rocksdb/db.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/queue/queue_test_util.h"

using queue::Family;
using queue::OpenMode;
using queue::Suppression;
using queue_test::open_db;
using queue_test::TempDir;
using Kind = core::Status::Kind;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;

Suppression entry(std::string scope, std::string address, int64_t expires_ms = 0) {
  return {std::move(scope), std::move(address), "550 5.1.1 <x@y>: no such user", "bounce", kNow,
          expires_ms};
}

// Runs `fill` in a batch of its own through the writer and answers its status.
core::Status commit(queue::Writer& writer, queue::Writer::Fill fill) {
  std::promise<core::Status> p;
  writer.submit(std::move(fill), [&](core::Status s) { p.set_value(std::move(s)); });
  return p.get_future().get();
}

// Inside a fill (writer thread, where Catch2 may not assert): a refusal fails the commit.
void must(const core::Status& s) {
  if (!s) throw std::runtime_error(s.to_string());
}

void add(queue::Writer& writer, const queue::SuppressionList& list, const Suppression& s) {
  const core::Status st =
      commit(writer, [&](rocksdb::WriteBatch& b) { must(list.stage_add(b, s)); });
  INFO(st.to_string());
  REQUIRE(st.is_ok());
}

std::vector<std::string> listed(const queue::SuppressionList& list,
                                std::optional<std::string_view> scope,
                                const std::optional<std::string>& after = std::nullopt,
                                size_t limit = 100, int64_t now = kNow) {
  std::vector<std::string> out;
  auto n = list.list(scope, after, limit, now, [&](const Suppression& s) {
    out.push_back(s.scope + "|" + s.address);
    return true;
  });
  INFO(n.status().to_string());
  REQUIRE(n.is_ok());
  CHECK(*n == out.size());
  return out;
}

void put_raw(const queue::Db& db, const std::string& key, const std::string& value) {
  REQUIRE(db.raw()->Put(queue::synced_writes(), db.cf(Family::kSuppression), key, value).ok());
}

}  // namespace

TEST_CASE("unit: suppression entries round-trip through their encoding", "[queue][unit]") {
  Suppression s = entry("app", "bob@example.org");
  s.source = GENERATE("bounce", "dsn", "admin");
  s.expires_ms = GENERATE(int64_t{0}, kNow + 86'400'000);
  s.reason = GENERATE(std::string(), std::string("550 5.1.1 <bob@example.org>: no such user"),
                      std::string("added by admin"), std::string("8-bit \xc3\xa9 \x01\xff"),
                      std::string(queue::kMaxSuppressionReason, 'r'));
  s.added_ms = GENERATE(kNow, int64_t{-1});
  const std::string key = queue::suppression_key(s.scope, s.address);
  auto back = queue::decode_suppression(key, queue::encode_suppression(s));
  INFO(back.status().to_string());
  REQUIRE(back.is_ok());
  CHECK(*back == s);
}

TEST_CASE("unit: suppression keys are scope, NUL, lower-cased address", "[queue][unit]") {
  CHECK(queue::suppression_key("app", "Bob@Example.ORG") ==
        std::string("app\0bob@example.org", 19));
  CHECK(queue::suppression_key("", "a@b") == std::string("\0a@b", 4));
  // UTF-8 is kept as is; only ASCII letters fold.
  CHECK(queue::suppression_address({"J\xc3\x89r\xc3\xb4me", "Example.org"}) ==
        "j\xc3\x89r\xc3\xb4me@example.org");
  CHECK(queue::suppression_address({"\"A B\"", "x.test"}) == "\"a b\"@x.test");
}

TEST_CASE("unit: a too long reason is cut when encoded", "[queue][unit]") {
  Suppression s = entry("", "a@b");
  s.reason = std::string(queue::kMaxSuppressionReason + 50, 'r');
  auto back =
      queue::decode_suppression(queue::suppression_key("", "a@b"), queue::encode_suppression(s));
  REQUIRE(back.is_ok());
  CHECK(back->reason == std::string(queue::kMaxSuppressionReason, 'r'));
}

TEST_CASE("unit: undecodable suppression entries are corrupt, naming the field", "[queue][unit]") {
  const std::string good = queue::encode_suppression(entry("app", "a@b", kNow + 1));
  const std::string key = queue::suppression_key("app", "a@b");
  std::string negative = good;
  negative[10] = '\x80';
  std::string long_reason = good.substr(0, 18) + "\x04\x01" + std::string(1025, 'r');
  const auto [k, value, expected] = GENERATE_COPY(table<std::string, std::string, std::string>({
      {key, "", "version at byte 0: truncated"},
      {key, "\x02" + good.substr(1), "unknown version 2"},
      {key, std::string(1, '\0') + good.substr(1), "unknown version 0"},
      {key, good.substr(0, 17), "fixed fields: truncated"},
      {key, good.substr(0, 1) + "\x03" + good.substr(2), "source at byte 1: value 3 out of range"},
      {key, negative, "expires at byte 10: negative"},
      {key, good.substr(0, good.size() - 1), "reason at byte 20: truncated"},
      {key, good + "x", "unexpected trailing bytes"},
      {key, long_reason, "reason length at byte 18: too long"},
      {"app", good, "key without scope, NUL and address"},
      {std::string("app\0", 4), good, "key without scope, NUL and address"},
  }));
  auto s = queue::decode_suppression(k, value);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.status().kind() == Kind::kCorrupt);
  CHECK_THAT(s.status().message(), Catch::Contains(expected));
}

TEST_CASE("unit: suppression find, add, replace, remove and expiry", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  queue::Writer writer(*db);
  writer.start();
  queue::SuppressionList list(*db);

  SECTION("found under its scope only, whatever the case of the address") {
    add(writer, list, entry("app", "Bob@Example.ORG"));
    for (const char* a : {"bob@example.org", "BOB@EXAMPLE.ORG", "bOb@example.org"}) {
      auto f = list.find("app", a, kNow);
      REQUIRE(f.is_ok());
      REQUIRE(f->has_value());
      CHECK(**f == entry("app", "bob@example.org"));
    }
    for (const char* scope : {"", "APP", "app2", "ap"}) {
      auto f = list.find(scope, "bob@example.org", kNow);
      REQUIRE(f.is_ok());
      CHECK_FALSE(f->has_value());
    }
  }
  SECTION("adding again replaces; removing is idempotent") {
    add(writer, list, entry("app", "bob@example.org"));
    Suppression again = entry("app", "bob@example.org", kNow + 5000);
    again.reason = "added by admin";
    again.source = "admin";
    add(writer, list, again);
    CHECK(**list.find("app", "bob@example.org", kNow) == again);
    for (int i = 0; i < 2; ++i) {
      const core::Status s = commit(writer, [&](rocksdb::WriteBatch& b) {
        must(list.stage_remove(b, "app", "BOB@example.org"));
      });
      REQUIRE(s.is_ok());
      CHECK_FALSE(list.find("app", "bob@example.org", kNow)->has_value());
    }
  }
  SECTION("an expired entry reads as absent from its expiry on") {
    add(writer, list, entry("", "a@b", kNow + 1000));
    CHECK(list.find("", "a@b", kNow + 999)->has_value());
    CHECK_FALSE(list.find("", "a@b", kNow + 1000)->has_value());
    CHECK(listed(list, std::nullopt, std::nullopt, 100, kNow + 999).size() == 1);
    CHECK(listed(list, std::nullopt, std::nullopt, 100, kNow + 1000).empty());
  }
  SECTION("bad input is refused before anything is staged") {
    Suppression bad = entry("app", "a@b");
    const auto [what, expected] = GENERATE(table<int, std::string>({
        {0, "empty address"},
        {1, "scope holds a NUL"},
        {2, "address holds a NUL"},
        {3, "unknown source \"feedback\""},
        {4, "negative expiry"},
    }));
    if (what == 0) bad.address.clear();
    if (what == 1) bad.scope = std::string("a\0b", 3);
    if (what == 2) bad.address = std::string("a\0@b", 4);
    if (what == 3) bad.source = "feedback";
    if (what == 4) bad.expires_ms = -1;
    rocksdb::WriteBatch batch;
    const core::Status s = list.stage_add(batch, bad);
    CHECK(s.kind() == Kind::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains(expected));
    CHECK(batch.Count() == 0);
    CHECK(list.stage_remove(batch, "", "").kind() == Kind::kInvalid);
    CHECK(batch.Count() == 0);
  }
  SECTION("an unreadable stored entry is corrupt, and removable") {
    put_raw(*db, queue::suppression_key("app", "a@b"), "\x07garbage");
    auto f = list.find("app", "a@b", kNow);
    REQUIRE_FALSE(f.is_ok());
    CHECK(f.status().kind() == Kind::kCorrupt);
    auto n =
        list.list(std::nullopt, std::nullopt, 10, kNow, [](const Suppression&) { return true; });
    REQUIRE_FALSE(n.is_ok());
    CHECK_THAT(n.status().message(), Catch::Contains("key \"app a@b\""));
    REQUIRE(commit(writer, [&](rocksdb::WriteBatch& b) {
              must(list.stage_remove(b, "app", "a@b"));
            }).is_ok());
    CHECK_FALSE(list.find("app", "a@b", kNow)->has_value());
  }
}

TEST_CASE("unit: suppression lists page in (scope, address) order", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  queue::Writer writer(*db);
  writer.start();
  queue::SuppressionList list(*db);
  for (const auto& s :
       {entry("", "b@x"), entry("", "a@x"), entry("app", "c@x"), entry("app", "d@x", kNow - 1),
        entry("app", "e@x"), entry("app2", "f@x"), entry("ap", "g@x")})
    add(writer, list, s);

  SECTION("every scope, in pages of any size") {
    const std::vector<std::string> all = {"|a@x",    "|b@x",    "ap|g@x",
                                          "app|c@x", "app|e@x", "app2|f@x"};
    CHECK(listed(list, std::nullopt) == all);
    const size_t page = GENERATE(1, 2, 4, 6);
    std::vector<std::string> paged;
    std::optional<std::string> cursor;
    for (int guard = 0; guard < 10; ++guard) {
      std::optional<std::string> last;
      auto n = list.list(std::nullopt, cursor, page, kNow, [&](const Suppression& s) {
        paged.push_back(s.scope + "|" + s.address);
        last = queue::suppression_key(s.scope, s.address);
        return true;
      });
      REQUIRE(n.is_ok());
      CHECK(*n <= page);
      if (*n == 0) break;
      cursor = last;
    }
    CHECK(paged == all);
  }
  SECTION("one scope: not its prefixes' neighbours, expired skipped") {
    CHECK(listed(list, "app") == std::vector<std::string>{"app|c@x", "app|e@x"});
    CHECK(listed(list, "") == std::vector<std::string>{"|a@x", "|b@x"});
    CHECK(listed(list, "nobody").empty());
    CHECK(listed(list, "app", queue::suppression_key("app", "c@x")) ==
          std::vector<std::string>{"app|e@x"});
    // A cursor from before the scope starts at its beginning, one after it ends the listing.
    CHECK(listed(list, "app", queue::suppression_key("", "b@x")).size() == 2);
    CHECK(listed(list, "app", queue::suppression_key("app2", "a@x")).empty());
    CHECK(listed(list, "app", std::nullopt, 1) == std::vector<std::string>{"app|c@x"});
  }
  SECTION("the visitor can stop early; a limit of 0 visits nothing") {
    int calls = 0;
    auto n = list.list(std::nullopt, std::nullopt, 100, kNow, [&](const Suppression&) {
      ++calls;
      return false;
    });
    REQUIRE(n.is_ok());
    CHECK(*n == 1);
    CHECK(calls == 1);
    CHECK(listed(list, std::nullopt, std::nullopt, 0).empty());
  }
}

TEST_CASE("unit: purge_expired deletes what expired and keeps what was re-added", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  queue::Writer writer(*db);
  queue::SuppressionList list(*db);
  writer.start();
  for (const auto& s : {entry("", "old1@x", kNow - 10), entry("app", "old2@x", kNow),
                        entry("app", "old3@x", kNow - 1), entry("app", "live@x", kNow + 1),
                        entry("", "never@x", 0), entry("", "again@x", kNow - 5)})
    add(writer, list, s);
  put_raw(*db, queue::suppression_key("", "bad@x"), "garbage");
  writer.stop();

  // `again` is re-added in the batch that the purge joins (or in one before it): it stays.
  queue::Writer second(*db);
  std::promise<core::Status> readded;
  second.submit(
      [&](rocksdb::WriteBatch& b) { must(list.stage_add(b, entry("", "again@x", kNow + 60'000))); },
      [&](core::Status s) { readded.set_value(std::move(s)); });
  auto purge = std::async(std::launch::async, [&] { return list.purge_expired(second, kNow); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // usually queued by now
  second.start();
  REQUIRE(readded.get_future().get().is_ok());
  const auto purged = purge.get();
  INFO(purged.status().to_string());
  REQUIRE(purged.is_ok());
  CHECK(*purged == 3);
  CHECK(list.find("", "again@x", kNow)->has_value());
  std::vector<std::string> left;
  std::unique_ptr<rocksdb::Iterator> it(
      db->raw()->NewIterator(rocksdb::ReadOptions(), db->cf(Family::kSuppression)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string k = it->key().ToString();
    left.push_back(k.replace(k.find('\0'), 1, "|"));
  }
  CHECK(left == std::vector<std::string>{"|again@x", "|bad@x", "|never@x", "app|live@x"});
  CHECK(*list.purge_expired(second, kNow) == 0);
  CHECK(*list.purge_expired(second, kNow + 1) == 1);  // live@x's time has come
}

TEST_CASE("unit: a database made before the suppression family opens and gains it",
          "[queue][unit]") {
  TempDir tmp;
  {
    // Format 1 as first released: six families, the version key, a queued record.
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* n :
         {"default", "bodies", "envelopes", "schedule", "mailbox_index", "mailbox_blobs"})
      families.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    REQUIRE(rocksdb::DB::Open(options, tmp.path(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> old(raw);
    REQUIRE(
        old->Put(rocksdb::WriteOptions(), handles[0], std::string(queue::kFormatVersionKey), "1")
            .ok());
    REQUIRE(old->Put(rocksdb::WriteOptions(), handles[2], "envelope", "record").ok());
    for (auto* h : handles) REQUIRE(old->DestroyColumnFamilyHandle(h).ok());
    REQUIRE(old->Close().ok());
  }

  {
    // Read-only cannot create it: the list reads as empty and refuses writes.
    auto ro = open_db(tmp.path(), OpenMode::kReadOnly);
    CHECK(ro->cf(Family::kSuppression) == nullptr);
    CHECK(ro->cf(Family::kEnvelopes) != nullptr);
    queue::SuppressionList list(*ro);
    CHECK_FALSE(list.find("", "a@b", kNow)->has_value());
    CHECK(listed(list, std::nullopt).empty());
    rocksdb::WriteBatch batch;
    CHECK(list.stage_add(batch, entry("", "a@b")).kind() == Kind::kInvalid);
  }

  const std::string version = [&] {
    auto db = open_db(tmp.path());
    REQUIRE(db->cf(Family::kSuppression) != nullptr);
    CHECK(db->cf(Family::kSuppression)->GetName() == "suppression");
    std::string v;
    REQUIRE(
        db->raw()->Get(rocksdb::ReadOptions(), db->cf(Family::kEnvelopes), "envelope", &v).ok());
    CHECK(v == "record");
    queue::Writer writer(*db);
    writer.start();
    queue::SuppressionList list(*db);
    add(writer, list, entry("app", "a@b"));
    writer.stop();
    REQUIRE(db->raw()
                ->Get(rocksdb::ReadOptions(), db->cf(Family::kDefault),
                      std::string(queue::kFormatVersionKey), &v)
                .ok());
    return v;
  }();
  CHECK(version == "1");  // adding the family is no new format version

  auto ro = open_db(tmp.path(), OpenMode::kReadOnly);
  REQUIRE(ro->cf(Family::kSuppression) != nullptr);
  CHECK(queue::SuppressionList(*ro).find("app", "a@b", kNow)->has_value());
}

TEST_CASE("unit: a new database has the suppression family", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path());
  REQUIRE(db->cf(Family::kSuppression) != nullptr);
  CHECK(queue::family_name(Family::kSuppression) == "suppression");
}
