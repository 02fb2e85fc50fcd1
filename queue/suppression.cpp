#include "queue/suppression.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <array>
#include <future>
#include <memory>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

#include "queue/big_endian.h"

namespace queue {
namespace {

// Index = the source byte of the value.
constexpr std::array<std::string_view, 3> kSources = {"bounce", "dsn", "admin"};
// version, source, added, expires, reason length
constexpr size_t kFixedBytes = 1 + 1 + 8 + 8 + 2;
// Keys deleted per write batch by purge_expired().
constexpr size_t kPurgeChunk = 4096;

bool expired(const Suppression& s, int64_t now_ms) {
  return s.expires_ms != 0 && s.expires_ms <= now_ms;
}

core::Status invalid_if_nul(std::string_view what, std::string_view s) {
  if (s.find('\0') == std::string_view::npos) return core::Status::ok();
  return core::Status::invalid("suppression: the " + std::string(what) + " holds a NUL byte");
}

core::Status check_key_parts(std::string_view scope, std::string_view address) {
  if (address.empty()) return core::Status::invalid("suppression: empty address");
  if (auto s = invalid_if_nul("scope", scope); !s) return s;
  return invalid_if_nul("address", address);
}

core::Status unwritable() {
  return core::Status::invalid(
      "suppression: the list cannot be written (database opened read-only before it existed)");
}

// Which keys of one family other requests of a batch have written. purge_expired() reads what
// is committed, but a fill earlier in its own batch may have re-added an entry it is about to
// delete, and a Delete after that Put would win.
class TouchedKeys final : public rocksdb::WriteBatch::Handler {
 public:
  explicit TouchedKeys(uint32_t family) : family_(family) {}

  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    return touch(cf, key);
  }
  rocksdb::Status PutEntityCF(uint32_t cf, const rocksdb::Slice& key,
                              const rocksdb::Slice&) override {
    return touch(cf, key);
  }
  rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    return touch(cf, key);
  }
  rocksdb::Status PutBlobIndexCF(uint32_t cf, const rocksdb::Slice& key,
                                 const rocksdb::Slice&) override {
    return touch(cf, key);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    return touch(cf, key);
  }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    return touch(cf, key);
  }
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice&,
                                const rocksdb::Slice&) override {
    if (cf == family_) all_ = true;
    return rocksdb::Status::OK();
  }

  bool touched(const std::string& key) const { return all_ || keys_.count(key) > 0; }

 private:
  rocksdb::Status touch(uint32_t cf, const rocksdb::Slice& key) {
    if (cf == family_) keys_.insert(key.ToString());
    return rocksdb::Status::OK();
  }

  uint32_t family_;
  bool all_ = false;
  std::unordered_set<std::string> keys_;
};

}  // namespace

std::string suppression_address(const core::Address& address) {
  return core::to_lower_ascii(address.str());
}

std::string suppression_key(std::string_view scope, std::string_view address) {
  std::string key(scope);
  key += '\0';
  key += core::to_lower_ascii(address);
  return key;
}

std::string encode_suppression(const Suppression& s) {
  uint8_t source = 0;
  while (source < kSources.size() && kSources[source] != s.source) ++source;
  const std::string_view reason = std::string_view(s.reason).substr(0, kMaxSuppressionReason);
  std::string out;
  out.reserve(kFixedBytes + reason.size());
  out += static_cast<char>(kSuppressionVersion);
  out += static_cast<char>(source);
  put_fixed_be(out, static_cast<uint64_t>(s.added_ms), 8);
  put_fixed_be(out, static_cast<uint64_t>(s.expires_ms), 8);
  put_fixed_be(out, reason.size(), 2);
  out += reason;
  return out;
}

core::Result<Suppression> decode_suppression(std::string_view key, std::string_view value) {
  const auto corrupt = [](const std::string& why) {
    return core::Status::corrupt("suppression entry: " + why);
  };
  const size_t nul = key.find('\0');
  if (nul == std::string_view::npos || nul + 1 == key.size())
    return corrupt("key without scope, NUL and address");
  if (value.empty()) return corrupt("version at byte 0: truncated");
  if (static_cast<uint8_t>(value[0]) != kSuppressionVersion)
    return corrupt("version at byte 0: unknown version " +
                   std::to_string(static_cast<uint8_t>(value[0])));
  if (value.size() < kFixedBytes) return corrupt("fixed fields: truncated");
  const auto source = static_cast<uint8_t>(value[1]);
  if (source >= kSources.size())
    return corrupt("source at byte 1: value " + std::to_string(source) + " out of range");
  Suppression s;
  s.scope = std::string(key.substr(0, nul));
  s.address = std::string(key.substr(nul + 1));
  s.source = std::string(kSources[source]);
  s.added_ms = static_cast<int64_t>(get_fixed_be(value.substr(2, 8)));
  s.expires_ms = static_cast<int64_t>(get_fixed_be(value.substr(10, 8)));
  if (s.expires_ms < 0) return corrupt("expires at byte 10: negative");
  const size_t reason_size = get_fixed_be(value.substr(18, 2));
  if (reason_size > kMaxSuppressionReason) return corrupt("reason length at byte 18: too long");
  if (value.size() - kFixedBytes < reason_size) return corrupt("reason at byte 20: truncated");
  if (value.size() - kFixedBytes > reason_size)
    return corrupt("end of entry at byte " + std::to_string(kFixedBytes + reason_size) +
                   ": unexpected trailing bytes");
  s.reason = std::string(value.substr(kFixedBytes));
  return s;
}

SuppressionList::SuppressionList(Db& db) : db_(db) {}

core::Result<std::optional<Suppression>> SuppressionList::find(std::string_view scope,
                                                               std::string_view address,
                                                               int64_t now_ms) const {
  if (family() == nullptr) return std::optional<Suppression>();
  const std::string key = suppression_key(scope, address);
  std::string value;
  const rocksdb::Status rs = db_.raw()->Get(rocksdb::ReadOptions(), family(), key, &value);
  if (rs.IsNotFound()) return std::optional<Suppression>();
  if (!rs.ok()) return to_status(rs, "suppression: reading <" + std::string(address) + ">");
  auto s = decode_suppression(key, value);
  if (!s) return s.status();
  if (expired(*s, now_ms)) return std::optional<Suppression>();
  return std::optional<Suppression>(std::move(s).value());
}

core::Status SuppressionList::stage_add(rocksdb::WriteBatch& batch, const Suppression& s) const {
  if (family() == nullptr) return unwritable();
  if (auto st = check_key_parts(s.scope, s.address); !st) return st;
  if (std::find(kSources.begin(), kSources.end(), s.source) == kSources.end())
    return core::Status::invalid("suppression: unknown source \"" + s.source + "\"");
  if (s.expires_ms < 0) return core::Status::invalid("suppression: negative expiry");
  return to_status(batch.Put(family(), suppression_key(s.scope, s.address), encode_suppression(s)),
                   "suppression: adding <" + s.address + "> to a batch");
}

core::Status SuppressionList::stage_remove(rocksdb::WriteBatch& batch, std::string_view scope,
                                           std::string_view address) const {
  if (family() == nullptr) return unwritable();
  if (auto st = check_key_parts(scope, address); !st) return st;
  return to_status(batch.Delete(family(), suppression_key(scope, address)),
                   "suppression: removing <" + std::string(address) + "> in a batch");
}

core::Result<size_t> SuppressionList::list(
    std::optional<std::string_view> scope, const std::optional<std::string>& after, size_t limit,
    int64_t now_ms, const std::function<bool(const Suppression&)>& visit) const {
  if (family() == nullptr || limit == 0) return size_t{0};
  std::string prefix;
  if (scope) {
    prefix = std::string(*scope);
    prefix += '\0';
  }
  std::unique_ptr<rocksdb::Iterator> it(db_.raw()->NewIterator(rocksdb::ReadOptions(), family()));
  const bool from_cursor = after && *after >= prefix;
  it->Seek(from_cursor ? *after : prefix);
  if (from_cursor && it->Valid() && it->key() == *after) it->Next();
  size_t visited = 0;
  for (; it->Valid() && visited < limit; it->Next()) {
    if (!it->key().starts_with(prefix)) break;
    auto s = decode_suppression(it->key().ToStringView(), it->value().ToStringView());
    if (!s) {
      std::string key = it->key().ToString();
      std::replace(key.begin(), key.end(), '\0', ' ');
      return core::Status::corrupt(s.status().message() + " (key \"" + key + "\")");
    }
    if (expired(*s, now_ms)) continue;
    ++visited;
    if (!visit(*s)) break;
  }
  if (!it->status().ok()) return to_status(it->status(), "suppression: listing");
  return visited;
}

core::Result<size_t> SuppressionList::purge_expired(Writer& writer, int64_t now_ms) {
  if (family() == nullptr) return size_t{0};
  std::vector<std::string> keys;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_.raw()->NewIterator(rocksdb::ReadOptions(), family()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto s = decode_suppression(it->key().ToStringView(), it->value().ToStringView());
      if (s && expired(*s, now_ms)) keys.push_back(it->key().ToString());
    }
    if (!it->status().ok()) return to_status(it->status(), "suppression: scanning for expired");
  }
  size_t purged = 0;
  for (size_t begin = 0; begin < keys.size(); begin += kPurgeChunk) {
    const size_t end = std::min(keys.size(), begin + kPurgeChunk);
    auto deleted = std::make_shared<size_t>(0);
    // The fill reads again what is committed by now: an entry replaced since the scan stays.
    auto fill = [this, &keys, begin, end, now_ms, deleted](rocksdb::WriteBatch& batch) {
      TouchedKeys touched(family()->GetID());
      if (!batch.Iterate(&touched).ok()) return;  // cannot tell: delete nothing this time
      for (size_t i = begin; i < end; ++i) {
        if (touched.touched(keys[i])) continue;
        std::string value;
        if (!db_.raw()->Get(rocksdb::ReadOptions(), family(), keys[i], &value).ok()) continue;
        auto s = decode_suppression(keys[i], value);
        if (!s || !expired(*s, now_ms)) continue;
        const rocksdb::Status rs = batch.Delete(family(), keys[i]);
        if (!rs.ok()) throw std::runtime_error(rs.ToString());
        ++*deleted;
      }
    };
    std::promise<core::Status> committed;
    writer.submit(fill, [&committed](core::Status s) { committed.set_value(std::move(s)); });
    if (auto s = committed.get_future().get(); !s) return s;
    purged += *deleted;
  }
  return purged;
}

}  // namespace queue
