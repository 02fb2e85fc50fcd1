#include "queue/store.h"

#include <rocksdb/snapshot.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <utility>

#include "core/header.h"
#include "core/log.h"

namespace queue {
namespace {

// The first key after every chunk key of `id` (IDs have a fixed length).
std::string after_body(std::string_view id) {
  return body_key(id, std::numeric_limits<uint32_t>::max()) + std::string(1, '\0');
}

core::Result<MessageRecord> get_at(const Db& db, const rocksdb::ReadOptions& ro,
                                   std::string_view id) {
  std::string value;
  const rocksdb::Status rs = db.raw()->Get(ro, db.cf(Family::kEnvelopes), id, &value);
  if (rs.IsNotFound()) return core::Status::not_found("queue: no message " + std::string(id));
  if (!rs.ok()) return to_status(rs, "queue: reading " + std::string(id) + " in " + db.dir());
  auto r = decode_record(value);
  if (!r)
    return core::Status::corrupt("queue: message " + std::string(id) + ": " + r.status().message());
  return r;
}

core::Status stream_body(const Db& db, const rocksdb::ReadOptions& base, const MessageRecord& r,
                         const std::function<bool(std::string_view)>& visit) {
  const std::string upper = after_body(r.id);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro = base;
  ro.iterate_upper_bound = &upper_slice;  // no wading through other messages' tombstones
  std::unique_ptr<rocksdb::Iterator> it(db.raw()->NewIterator(ro, db.cf(Family::kBodies)));
  uint32_t chunks = 0;
  uint64_t size = 0;
  for (it->Seek(body_key(r.id, 0)); it->Valid(); it->Next()) {
    const auto key = parse_body_key(it->key().ToStringView());
    if (!key || key->id != r.id) break;
    if (key->chunk != chunks || chunks >= r.body_chunks)
      return core::Status::corrupt(
          "queue: body of " + r.id + " has chunk " + std::to_string(key->chunk) + " where chunk " +
          std::to_string(chunks) + " of " + std::to_string(r.body_chunks) + " was expected");
    ++chunks;
    size += it->value().size();
    if (!visit(it->value().ToStringView())) return core::Status::ok();
  }
  if (!it->status().ok())
    return to_status(it->status(), "queue: reading the body of " + r.id + " in " + db.dir());
  if (chunks != r.body_chunks || size != r.body_size)
    return core::Status::corrupt("queue: body of " + r.id + " has " + std::to_string(chunks) +
                                 " chunks, " + std::to_string(size) + " bytes; its record says " +
                                 std::to_string(r.body_chunks) + " chunks, " +
                                 std::to_string(r.body_size) + " bytes");
  return core::Status::ok();
}

// Runs `read` on the record of `id` and a snapshot taken before the record was read.
template <typename F>
auto with_snapshot(const Db& db, std::string_view id, F read)
    -> decltype(read(std::declval<const rocksdb::ReadOptions&>(),
                     std::declval<const MessageRecord&>())) {
  rocksdb::ManagedSnapshot snapshot(db.raw());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snapshot();
  auto record = get_at(db, ro, id);
  if (!record) return record.status();
  return read(ro, *record);
}

}  // namespace

core::Result<MessageRecord> get(const Db& db, std::string_view id) {
  return get_at(db, rocksdb::ReadOptions(), id);
}

core::Status list(const Db& db, const std::function<bool(const MessageRecord&)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(
      db.raw()->NewIterator(rocksdb::ReadOptions(), db.cf(Family::kEnvelopes)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto r = decode_record(it->value().ToStringView());
    if (!r)
      return core::Status::corrupt("queue: message " + it->key().ToString() + ": " +
                                   r.status().message());
    if (!visit(*r)) return core::Status::ok();
  }
  return to_status(it->status(), "queue: listing " + db.dir());
}

core::Status read_body_chunks(const Db& db, std::string_view id,
                              const std::function<bool(std::string_view)>& visit) {
  return with_snapshot(db, id, [&](const rocksdb::ReadOptions& ro, const MessageRecord& r) {
    return stream_body(db, ro, r, visit);
  });
}

core::Result<std::string> read_body(const Db& db, std::string_view id) {
  return with_snapshot(
      db, id,
      [&](const rocksdb::ReadOptions& ro, const MessageRecord& r) -> core::Result<std::string> {
        std::string body;
        // The size comes from disk: trust it for a reservation only within reason.
        body.reserve(std::min<uint64_t>(r.body_size, uint64_t{256} << 20));
        core::Status s = stream_body(db, ro, r, [&](std::string_view chunk) {
          body += chunk;
          return true;
        });
        if (!s) return s;
        return body;
      });
}

core::Result<std::string> headers(const Db& db, std::string_view id) {
  return with_snapshot(
      db, id,
      [&](const rocksdb::ReadOptions& ro, const MessageRecord& r) -> core::Result<std::string> {
        std::string head;
        bool ended = false;
        // header_end() judges each line on its own, so complete lines already judged need
        // not be scanned again when the next chunk arrives.
        size_t resume = 0;
        core::Status s = stream_body(db, ro, r, [&](std::string_view chunk) {
          head += chunk;
          if (const auto end = core::header_end(std::string_view(head).substr(resume))) {
            head.resize(resume + *end);
            ended = true;
          } else if (const size_t eol = head.rfind("\r\n"); eol != std::string::npos) {
            resume = std::max(resume, eol + 2);
          }
          return !ended;
        });
        if (!s) return s;
        return head;
      });
}

core::Status remove_incomplete_bodies(Db& db) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // a one-off sweep; keep the cache for the live queue
  std::unique_ptr<rocksdb::Iterator> it(db.raw()->NewIterator(ro, db.cf(Family::kBodies)));
  rocksdb::WriteBatch batch;
  it->SeekToFirst();
  while (it->Valid()) {
    const auto key = parse_body_key(it->key().ToStringView());
    if (!key) {  // too short to be a chunk key: nothing can own it
      batch.Delete(db.cf(Family::kBodies), it->key()).PermitUncheckedError();
      it->Next();
      continue;
    }
    const std::string id(key->id);
    std::string ignored;
    const rocksdb::Status rs = db.raw()->Get(ro, db.cf(Family::kEnvelopes), id, &ignored);
    if (rs.ok()) {
      it->Seek(after_body(id));  // skip its chunks without reading them
      continue;
    }
    if (!rs.IsNotFound()) return to_status(rs, "queue: checking " + id + " in " + db.dir());
    int64_t chunks = 0;
    for (; it->Valid(); it->Next()) {
      const auto k = parse_body_key(it->key().ToStringView());
      if (!k || k->id != id) break;
      batch.Delete(db.cf(Family::kBodies), it->key()).PermitUncheckedError();
      ++chunks;
    }
    core::LogLine(core::LogLevel::kWarn, "orphan-body-removed")
        .kv("id", id)
        .kv("chunks", chunks)
        .emit();
  }
  if (!it->status().ok()) return to_status(it->status(), "queue: sweeping bodies in " + db.dir());
  if (batch.Count() == 0) return core::Status::ok();
  return to_status(db.raw()->Write(synced_writes(), &batch),
                   "queue: removing bodies without records in " + db.dir());
}

}  // namespace queue
