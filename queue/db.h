#pragma once
// The one RocksDB instance of a Porter node and its column families (DESIGN.md "One RocksDB
// instance, column families per owner"). The on-disk format is written down in
// docs/queue-format.md.
//
// Db owns the rocksdb::DB and every column family handle; the handles die before the DB.
// open() creates a new database (all families plus the format-version key) or checks an
// existing one: a version it does not know is refused with kCorrupt naming the version,
// before anything is written. Later modules (mailbox) reach their own families through
// raw() and cf(); they write through the queue Writer so that they share its group commit.
//
// A family added after format 1 was first written (kSuppression) is created when a database
// made before it is opened read-write. Opened read-only, such a database goes without it:
// cf() answers nullptr for that family, and its owner reads that as empty.
//
// A read-write instance reports RocksDB write stalls to the process-wide metrics registry
// (porter_rocksdb_write_stall*, listed in mta/metrics.h).
//
// Thread safety: after open() every method may be called from any thread (RocksDB's own
// guarantee); destruction must not race with use.
//
// Limits: kReadOnly opens with DB::OpenForReadOnly so that the CLI can look while the daemon
// runs. RocksDB documents that a read-only instance beside a live writer may fail if the
// writer deletes files meanwhile (all table files are opened up front to narrow that window);
// such failures are errors, never wrong data, and a retry is the cure.

#include <rocksdb/db.h>
#include <rocksdb/status.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace queue {

enum class OpenMode { kReadWrite, kReadOnly };

// Column families, in the order their handles are kept. The names are the on-disk format.
enum class Family : uint8_t {
  kDefault = 0,   // metadata: the format-version key
  kBodies,        // message bytes in chunks (blob files)
  kEnvelopes,     // one MessageRecord per queued message
  kSchedule,      // due time + id: what to try next
  kMailboxIndex,  // owned by mta/mailbox
  kMailboxBlobs,  // owned by mta/mailbox (blob files)
  kSuppression,   // the suppression list (queue/suppression.h); added later within format 1
};
inline constexpr size_t kFamilyCount = 7;
std::string_view family_name(Family f);

// The layout this code reads and writes (docs/queue-format.md "Versions").
inline constexpr uint32_t kFormatVersion = 1;
// Key in the default family; the value is the version in decimal ASCII ("1").
inline constexpr std::string_view kFormatVersionKey = "porter.format-version";

class Db {
 public:
  static core::Result<std::unique_ptr<Db>> open(const std::string& dir, OpenMode mode);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  rocksdb::DB* raw() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Family f) const { return handles_[static_cast<size_t>(f)]; }
  const std::string& dir() const { return dir_; }
  OpenMode mode() const { return mode_; }

 private:
  Db(std::string dir, OpenMode mode) : dir_(std::move(dir)), mode_(mode) {}
  core::Status open_impl();
  core::Status check_or_initialise();
  core::Status create_family(size_t index);
  void close();

  std::string dir_;
  OpenMode mode_;
  std::unique_ptr<rocksdb::DB> db_;
  // Every handle RocksDB gave us, including families this version does not know (a newer
  // format may add some; they are opened only so that the version check can speak).
  std::vector<rocksdb::ColumnFamilyHandle*> all_handles_;
  std::array<rocksdb::ColumnFamilyHandle*, kFamilyCount> handles_{};
};

// Options for writes that must survive a crash once they return (WAL fsync).
rocksdb::WriteOptions synced_writes();

// A RocksDB status as a core::Status: "<context>: <rocksdb message>". I/O failures map to
// kIo, contention and shutdown to kTemporary, corruption to kCorrupt, a missing key to
// kNotFound, bad arguments and unsupported calls (a write to a read-only instance) to kInvalid.
core::Status to_status(const rocksdb::Status& s, std::string_view context);

}  // namespace queue
