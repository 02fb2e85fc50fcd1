#include "queue/db.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "queue/record.h"
#include "tests/queue/queue_test_util.h"

using queue::Family;
using queue::OpenMode;
using queue_test::open_db;
using queue_test::TempDir;
using Kind = core::Status::Kind;

namespace {

std::string get(const queue::Db& db, Family f, const std::string& key) {
  std::string value;
  const auto rs = db.raw()->Get(rocksdb::ReadOptions(), db.cf(f), key, &value);
  return rs.ok() ? value : "<" + rs.ToString() + ">";
}

void put(const queue::Db& db, Family f, const std::string& key, const std::string& value) {
  REQUIRE(db.raw()->Put(queue::synced_writes(), db.cf(f), key, value).ok());
}

// A plain RocksDB database (not made by Db::open), with one key unless `key` is empty.
void make_plain_rocksdb(const std::string& dir, const std::string& key) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  REQUIRE(rocksdb::DB::Open(options, dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  if (!key.empty()) REQUIRE(db->Put(rocksdb::WriteOptions(), key, "v").ok());
  REQUIRE(db->Close().ok());
}

}  // namespace

TEST_CASE("db: a new database has every family and the format version", "[queue][unit]") {
  TempDir tmp;
  auto db = open_db(tmp.path() + "/var/queue");  // missing parents are created
  CHECK(db->dir() == tmp.path() + "/var/queue");
  CHECK(db->mode() == OpenMode::kReadWrite);
  const auto f = GENERATE(Family::kDefault, Family::kBodies, Family::kEnvelopes, Family::kSchedule,
                          Family::kMailboxIndex, Family::kMailboxBlobs);
  REQUIRE(db->cf(f) != nullptr);
  CHECK(db->cf(f)->GetName() == queue::family_name(f));
  CHECK(get(*db, Family::kDefault, std::string(queue::kFormatVersionKey)) == "1");
}

TEST_CASE("db: data survives close and reopen, read-write and read-only", "[queue][unit]") {
  TempDir tmp;
  put(*open_db(tmp.path()), Family::kEnvelopes, "k", "v");

  SECTION("read-write") {
    auto db = open_db(tmp.path());
    CHECK(get(*db, Family::kEnvelopes, "k") == "v");
  }
  SECTION("read-only sees it and cannot write") {
    auto db = open_db(tmp.path(), OpenMode::kReadOnly);
    CHECK(db->mode() == OpenMode::kReadOnly);
    CHECK(get(*db, Family::kEnvelopes, "k") == "v");
    const auto rs = db->raw()->Put(queue::synced_writes(), db->cf(Family::kEnvelopes), "k2", "v");
    CHECK_FALSE(rs.ok());
  }
}

TEST_CASE("db: a read-only open sees what a running writer committed", "[queue][unit]") {
  TempDir tmp;
  auto writer = open_db(tmp.path());
  put(*writer, Family::kBodies, "chunk", std::string(10000, 'x'));  // a blob-sized value
  put(*writer, Family::kEnvelopes, "id", "record");
  auto reader = open_db(tmp.path(), OpenMode::kReadOnly);
  CHECK(get(*reader, Family::kEnvelopes, "id") == "record");
  CHECK(get(*reader, Family::kBodies, "chunk") == std::string(10000, 'x'));
}

TEST_CASE("db: a second read-write open is refused naming the directory", "[queue][unit]") {
  TempDir tmp;
  auto first = open_db(tmp.path());
  auto second = queue::Db::open(tmp.path(), OpenMode::kReadWrite);
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().kind() == Kind::kIo);
  CHECK_THAT(second.status().message(), Catch::Contains(tmp.path()));
  CHECK_THAT(second.status().message(), Catch::Contains("another porter process"));
}

TEST_CASE("db: read-only open of a missing database is not found", "[queue][unit]") {
  TempDir tmp;
  const std::string dir = tmp.path() + "/none";
  auto db = queue::Db::open(dir, OpenMode::kReadOnly);
  REQUIRE_FALSE(db.is_ok());
  CHECK(db.status().kind() == Kind::kNotFound);
  CHECK_THAT(db.status().message(), Catch::Contains(dir));
  CHECK_FALSE(std::filesystem::exists(dir));  // looking does not create
}

TEST_CASE("db: unknown or unreadable format versions are refused", "[queue][unit]") {
  const auto [stored, expected] = GENERATE(table<std::string, std::string>({
      {"2", "has format version 2, this porter reads version 1"},
      {"4294967295", "has format version 4294967295"},
      {"x1", "unreadable format version \"x1\""},
      {"1 ", "unreadable format version \"1 \""},
      {"", "unreadable format version \"\""},
  }));
  const auto mode = GENERATE(OpenMode::kReadWrite, OpenMode::kReadOnly);
  TempDir tmp;
  put(*open_db(tmp.path()), Family::kDefault, std::string(queue::kFormatVersionKey), stored);
  for (int attempt = 0; attempt < 2; ++attempt) {  // a refused open changes nothing
    auto db = queue::Db::open(tmp.path(), mode);
    REQUIRE_FALSE(db.is_ok());
    CHECK(db.status().kind() == Kind::kCorrupt);
    CHECK_THAT(db.status().message(), Catch::Contains(expected));
    CHECK_THAT(db.status().message(), Catch::Contains(tmp.path()));
  }
}

TEST_CASE("db: a newer format's extra family does not hide the version error", "[queue][unit]") {
  TempDir tmp;
  {
    auto db = open_db(tmp.path());
    rocksdb::ColumnFamilyHandle* h = nullptr;
    REQUIRE(db->raw()->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "future", &h).ok());
    REQUIRE(db->raw()->DestroyColumnFamilyHandle(h).ok());
    put(*db, Family::kDefault, std::string(queue::kFormatVersionKey), "2");
  }
  auto db = queue::Db::open(tmp.path(), OpenMode::kReadWrite);
  REQUIRE_FALSE(db.is_ok());
  CHECK(db.status().kind() == Kind::kCorrupt);
  CHECK_THAT(db.status().message(), Catch::Contains("format version 2"));
}

TEST_CASE("db: a RocksDB database that is not a queue is refused", "[queue][unit]") {
  TempDir tmp;
  make_plain_rocksdb(tmp.path(), "someone else's key");
  const auto mode = GENERATE(OpenMode::kReadWrite, OpenMode::kReadOnly);
  auto db = queue::Db::open(tmp.path(), mode);
  REQUIRE_FALSE(db.is_ok());
  CHECK(db.status().kind() == Kind::kCorrupt);
  CHECK_THAT(db.status().message(), Catch::Contains("not a Porter queue"));
}

TEST_CASE("db: an empty database left by an interrupted creation is finished", "[queue][unit]") {
  TempDir tmp;
  make_plain_rocksdb(tmp.path(), "");
  auto ro = queue::Db::open(tmp.path(), OpenMode::kReadOnly);
  REQUIRE_FALSE(ro.is_ok());
  CHECK(ro.status().kind() == Kind::kNotFound);
  CHECK_THAT(ro.status().message(), Catch::Contains("not initialised"));

  auto db = open_db(tmp.path());
  CHECK(db->cf(Family::kMailboxBlobs) != nullptr);
  CHECK(get(*db, Family::kDefault, std::string(queue::kFormatVersionKey)) == "1");
}

TEST_CASE("db: RocksDB statuses map to core kinds with context", "[queue][unit]") {
  const auto [rs, kind] = GENERATE(table<rocksdb::Status, Kind>({
      {rocksdb::Status::NotFound("k"), Kind::kNotFound},
      {rocksdb::Status::Corruption("bad block"), Kind::kCorrupt},
      {rocksdb::Status::IOError("fsync failed"), Kind::kIo},
      {rocksdb::Status::NoSpace("disk full"), Kind::kIo},
      {rocksdb::Status::Busy("busy"), Kind::kTemporary},
      {rocksdb::Status::TryAgain("later"), Kind::kTemporary},
      {rocksdb::Status::ShutdownInProgress("bye"), Kind::kTemporary},
      {rocksdb::Status::InvalidArgument("nope"), Kind::kInvalid},
      {rocksdb::Status::NotSupported("read-only"), Kind::kInvalid},
  }));
  const core::Status s = queue::to_status(rs, "queue: doing it in /var/q");
  CHECK(s.kind() == kind);
  CHECK_THAT(s.message(), Catch::StartsWith("queue: doing it in /var/q: "));
  CHECK_THAT(s.message(), Catch::Contains(rs.ToString()));
  CHECK(queue::to_status(rocksdb::Status::OK(), "x").is_ok());
}
