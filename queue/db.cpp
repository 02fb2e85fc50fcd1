#include "queue/db.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

#include "core/metrics.h"

namespace queue {
namespace {

constexpr std::array<std::string_view, kFamilyCount> kFamilyNames = {
    "default", "bodies", "envelopes", "schedule", "mailbox_index", "mailbox_blobs", "suppression",
};

// Families that format 1 gained after its first release. Older Porters open them as unknown
// families and leave them alone, so adding one needs no new version; a database made before
// one exists lacks it until its next read-write open.
bool added_later(size_t index) { return static_cast<Family>(index) == Family::kSuppression; }

constexpr uint64_t kMiB = 1024 * 1024;

// Write stalls (RocksDB slowing or stopping writes while compaction catches up) delay every
// 250 the daemon owes, so they are counted where RocksDB reports them: per column family,
// each entry into "delayed" or "stopped", and the time until the family is "normal" again.
// RocksDB calls this from its background threads, briefly, so it only does arithmetic.
// Two threads may deliver one family's notices out of order (a short stall's end before its
// start), so each notice is judged by its own prev/cur, and an end that overtook its start
// cancels that start (the stall was as short as the delivery delay).
class StallListener final : public rocksdb::EventListener {
 public:
  StallListener() {
    auto& r = core::metrics_registry();
    auto& stalls = r.counter("porter_rocksdb_write_stalls_total",
                             "Times a RocksDB column family began delaying or stopping writes.",
                             {"condition"});
    delayed_ = &stalls.with({"delayed"});
    stopped_ = &stalls.with({"stopped"});
    micros_ = &r.counter("porter_rocksdb_write_stall_microseconds_total",
                         "Microseconds RocksDB column families spent delaying or stopping writes.")
                   .with({});
    stalled_ = &r.gauge("porter_rocksdb_write_stalled",
                        "RocksDB column families delaying or stopping writes now.")
                    .with({});
  }

  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override {
    using rocksdb::WriteStallCondition;
    const WriteStallCondition cur = info.condition.cur;
    const WriteStallCondition prev = info.condition.prev;
    if (cur == prev) return;
    if (cur == WriteStallCondition::kDelayed) delayed_->inc();
    if (cur == WriteStallCondition::kStopped) stopped_->inc();
    const bool was = prev != WriteStallCondition::kNormal;
    const bool is = cur != WriteStallCondition::kNormal;
    if (was == is) return;  // delayed <-> stopped: the same stall goes on
    // Summed over all notices this is the number of stalled families, in any delivery order.
    if (is) stalled_->inc();
    if (was) stalled_->dec();
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    Stall& s = stalls_[info.cf_name];
    if (is) {
      if (s.early_ends > 0) {
        --s.early_ends;
      } else {
        s.since = now;
      }
    } else if (s.since) {
      micros_->inc(std::chrono::duration_cast<std::chrono::microseconds>(now - *s.since).count());
      s.since.reset();
    } else {
      ++s.early_ends;
    }
  }

 private:
  struct Stall {
    std::optional<std::chrono::steady_clock::time_point> since;  // a stall is running
    int early_ends = 0;  // ends delivered before their starts
  };

  core::Counter* delayed_;
  core::Counter* stopped_;
  core::Counter* micros_;
  core::Gauge* stalled_;
  std::mutex mu_;
  std::map<std::string, Stall> stalls_;  // by column family; guarded by mu_
};

// Sized for a mail relay on a small machine: the write volume is the mail itself, a few
// MB/s at most, so two background jobs keep up and memtables stay modest.
rocksdb::DBOptions db_options(OpenMode mode) {
  rocksdb::DBOptions o;
  o.max_background_jobs = 2;
  // All memtables together; individual families flush early when the sum is reached.
  o.db_write_buffer_size = 64 * kMiB;
  // Families written rarely (mailbox) would otherwise pin old WAL files for ever.
  o.max_total_wal_size = 128 * kMiB;
  o.keep_log_file_num = 5;
  o.max_log_file_size = 16 * kMiB;
  // Every write we acknowledge was synced, so stopping the replay at a torn tail record
  // (left by a crash mid-write of a batch nobody was told about) loses nothing promised.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.bytes_per_sync = 1 * kMiB;  // smooth out flush and compaction writeback
  // Open every table file at once: a read-only instance then keeps reading files that the
  // live writer deletes after a compaction (they stay readable through the open descriptor).
  if (mode == OpenMode::kReadOnly) o.max_open_files = -1;
  if (mode == OpenMode::kReadWrite) o.listeners.push_back(std::make_shared<StallListener>());
  return o;
}

rocksdb::ColumnFamilyOptions family_options(std::string_view name) {
  rocksdb::ColumnFamilyOptions o;
  const auto known = std::find(kFamilyNames.begin(), kFamilyNames.end(), name);
  if (known == kFamilyNames.end()) return o;  // a newer format's family: defaults will do
  const auto f = static_cast<Family>(known - kFamilyNames.begin());
  o.write_buffer_size = 16 * kMiB;
  o.level_compaction_dynamic_level_bytes = true;
  if (f == Family::kDefault) return o;
  // A queue deletes every key it writes, usually soon: compact files that are mostly
  // tombstones so that scans from the front do not wade through them.
  o.table_properties_collector_factories.push_back(
      rocksdb::NewCompactOnDeletionCollectorFactory(128, 32));
  if (f == Family::kBodies || f == Family::kMailboxBlobs) {
    // Message bytes go to blob files and are dropped whole by garbage collection instead
    // of being rewritten by every compaction. Values below 4 KiB (small chunks) stay inline.
    o.write_buffer_size = 32 * kMiB;
    o.enable_blob_files = true;
    o.min_blob_size = 4096;
    o.blob_file_size = 64 * kMiB;  // smaller than the default so space comes back sooner
    o.enable_blob_garbage_collection = true;
  }
  if (f == Family::kMailboxIndex) {
    // IMAP lists and searches whole mailbox indexes (about 25 MB per 100,000 messages);
    // with the 8 MiB default cache every listing would reread and decompress them.
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = rocksdb::NewLRUCache(256 * kMiB);
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  }
  if (f == Family::kEnvelopes || f == Family::kSuppression) {
    // Point lookups dominate: by queue ID (delivery, status updates), by address (is this
    // recipient suppressed, mostly answered "no", which the filter answers without a read).
    rocksdb::BlockBasedTableOptions t;
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  }
  return o;
}

bool has_any_key(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* h) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
  it->SeekToFirst();
  return it->Valid();
}

}  // namespace

std::string_view family_name(Family f) { return kFamilyNames[static_cast<size_t>(f)]; }

rocksdb::WriteOptions synced_writes() {
  rocksdb::WriteOptions w;
  w.sync = true;
  return w;
}

core::Status to_status(const rocksdb::Status& s, std::string_view context) {
  std::string msg = std::string(context) + ": " + s.ToString();
  if (s.ok()) return core::Status::ok();
  if (s.IsNotFound()) return core::Status::not_found(std::move(msg));
  if (s.IsCorruption()) return core::Status::corrupt(std::move(msg));
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut() || s.IsIncomplete() ||
      s.IsShutdownInProgress() || s.IsAborted())
    return core::Status::temporary(std::move(msg));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return core::Status::invalid(std::move(msg));
  if (s.IsIOError() && msg.find("/LOCK") != std::string::npos)
    msg += " (another porter process is using this data directory; stop it, or open it read-only)";
  return core::Status::io(std::move(msg));
}

core::Result<std::unique_ptr<Db>> Db::open(const std::string& dir, OpenMode mode) {
  std::unique_ptr<Db> db(new Db(dir, mode));
  core::Status s;
  try {
    s = db->open_impl();
  } catch (const std::exception& e) {  // bad_alloc and the like from inside RocksDB
    s = core::Status::io("queue: opening " + dir + ": " + e.what());
  }
  if (!s) return s;
  return db;
}

Db::~Db() { close(); }

void Db::close() {
  if (!db_) return;
  for (auto* h : all_handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  all_handles_.clear();
  handles_.fill(nullptr);
  db_->Close().PermitUncheckedError();  // nothing to do about it while closing
  db_.reset();
}

core::Status Db::open_impl() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool exists = fs::exists(fs::path(dir_) / "CURRENT", ec);
  const bool read_only = mode_ == OpenMode::kReadOnly;
  if (!exists && read_only)
    return core::Status::not_found("queue: no database in " + dir_ +
                                   " (check the data directory; porter serve creates it)");
  if (!exists) {
    fs::create_directories(dir_, ec);
    if (ec) return core::Status::io("queue: creating " + dir_ + ": " + ec.message());
  }

  rocksdb::DBOptions options = db_options(mode_);
  std::vector<std::string> names = {std::string(family_name(Family::kDefault))};
  if (exists) {
    rocksdb::Status rs = rocksdb::DB::ListColumnFamilies(options, dir_, &names);
    if (!rs.ok()) return to_status(rs, "queue: reading the families of " + dir_);
  }
  options.create_if_missing = !exists;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& n : names) descriptors.emplace_back(n, family_options(n));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs =
      read_only ? rocksdb::DB::OpenForReadOnly(options, dir_, descriptors, &all_handles_, &raw)
                : rocksdb::DB::Open(options, dir_, descriptors, &all_handles_, &raw);
  if (!rs.ok()) return to_status(rs, "queue: opening " + dir_);
  db_.reset(raw);
  for (auto* h : all_handles_) {
    const auto known = std::find(kFamilyNames.begin(), kFamilyNames.end(), h->GetName());
    if (known != kFamilyNames.end()) handles_[known - kFamilyNames.begin()] = h;
  }
  return check_or_initialise();
}

// Families are created before the version key is written, so "has a version" implies "has
// every family" (but those added later, made here when missing) and a crash during creation
// leaves an empty database that is finished here.
core::Status Db::check_or_initialise() {
  std::string value;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), cf(Family::kDefault),
                                std::string(kFormatVersionKey), &value);
  if (rs.ok()) {
    uint32_t version = 0;
    const auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), version);
    if (err != std::errc() || end != value.data() + value.size())
      return core::Status::corrupt("queue: " + dir_ + " has an unreadable format version \"" +
                                   value + "\"");
    if (version != kFormatVersion)
      return core::Status::corrupt("queue: " + dir_ + " has format version " + value +
                                   ", this porter reads version " + std::to_string(kFormatVersion) +
                                   " (run the porter release that wrote it)");
    for (size_t i = 0; i < kFamilyCount; ++i) {
      if (handles_[i] != nullptr) continue;
      if (!added_later(i))
        return core::Status::corrupt("queue: " + dir_ + " lacks the column family " +
                                     std::string(kFamilyNames[i]));
      if (mode_ == OpenMode::kReadOnly) continue;
      if (auto s = create_family(i); !s) return s;
    }
    return core::Status::ok();
  }
  if (!rs.IsNotFound()) return to_status(rs, "queue: reading the format version in " + dir_);

  for (auto* h : all_handles_)
    if (has_any_key(db_.get(), h))
      return core::Status::corrupt("queue: " + dir_ +
                                   " holds a RocksDB database that is not a Porter queue "
                                   "(no format version); point porter at another directory");
  if (mode_ == OpenMode::kReadOnly)
    return core::Status::not_found("queue: the database in " + dir_ + " is not initialised yet");

  for (size_t i = 0; i < kFamilyCount; ++i) {
    if (handles_[i] != nullptr) continue;
    if (auto s = create_family(i); !s) return s;
  }
  rs = db_->Put(synced_writes(), cf(Family::kDefault), std::string(kFormatVersionKey),
                std::to_string(kFormatVersion));
  return to_status(rs, "queue: writing the format version in " + dir_);
}

core::Status Db::create_family(size_t index) {
  rocksdb::ColumnFamilyHandle* h = nullptr;
  const std::string name(kFamilyNames[index]);
  const rocksdb::Status rs = db_->CreateColumnFamily(family_options(name), name, &h);
  if (!rs.ok()) return to_status(rs, "queue: creating the column family " + name + " in " + dir_);
  all_handles_.push_back(h);
  handles_[index] = h;
  return core::Status::ok();
}

}  // namespace queue
