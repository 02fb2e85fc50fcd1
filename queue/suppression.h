#pragma once
// The suppression list: addresses that hard-bounced, per sender scope, so that later mail to
// them is not sent (layout in docs/queue-format.md "Suppression list").
//
// A scope is whose list it is: the AUTH login of the mail that bounced (an application's
// name or a user's login), or "" for mail that came without AUTH (relay, server-wide). An
// entry is keyed by scope and address and holds why and until when. Addresses are kept in
// one lookup form, suppression_address(): ASCII letters lower-cased in the local part too.
// RFC 5321 §2.4 lets a receiving host tell "Bob" from "bob", but hardly any does, and a list
// that must not send to a dead mailbox twice is better wrong towards not sending; every
// method lower-cases the address it is given, so callers may pass any case.
//
// An entry whose expiry has passed reads as absent everywhere (find, list) until
// purge_expired() deletes it. Writes are staged into a queue::Writer batch (stage_add,
// stage_remove), so that a bounce and its suppression commit together.
//
// Thread safety: find() and list() from any thread (RocksDB reads, each a consistent view);
// stage_*() inside a Writer fill (writer thread); purge_expired() from any thread but the
// writer's (it waits for its writes). The Db must outlive the list.
//
// Limits: when the Db was opened read-only on a database made before this family existed,
// the list reads as empty and writes are refused (kInvalid). Reasons longer than
// kMaxSuppressionReason bytes are cut. The scope and the address may not hold NUL bytes
// (no login or RFC 5321 address does); they are refused with kInvalid.

#include <rocksdb/write_batch.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.h"
#include "core/status.h"
#include "queue/db.h"
#include "queue/writer.h"

namespace queue {

inline constexpr uint8_t kSuppressionVersion = 1;
inline constexpr size_t kMaxSuppressionReason = 1024;

struct Suppression {
  std::string scope;    // "" server-wide (relay), else the login (app or user)
  std::string address;  // lower-cased local@domain
  std::string reason;  // "550 5.1.1 <x@y>: no such user" as the server said it, or "added by admin"
  std::string source;  // "bounce" | "dsn" | "admin"
  int64_t added_ms = 0;
  int64_t expires_ms = 0;  // 0: never
  bool operator==(const Suppression&) const = default;
};

// The lookup form of an address: "local@domain" with ASCII letters lower-cased.
std::string suppression_address(const core::Address& address);
// The key of an entry, scope + NUL + lookup form of `address`; also the cursor list() pages
// by (pass the key of the last entry seen).
std::string suppression_key(std::string_view scope, std::string_view address);

// The value of an entry (scope and address live in the key). decode_suppression() takes
// untrusted bytes and refuses (kCorrupt, naming the field) an unknown version or source, a
// negative expiry, a short or over-long value and a key without its NUL separator.
std::string encode_suppression(const Suppression& s);
core::Result<Suppression> decode_suppression(std::string_view key, std::string_view value);

class SuppressionList {
 public:
  explicit SuppressionList(Db& db);

  // nullopt when absent or expired (expires_ms <= now_ms). kCorrupt for an unreadable entry.
  core::Result<std::optional<Suppression>> find(std::string_view scope, std::string_view address,
                                                int64_t now_ms) const;

  // Adds `s` (address lower-cased, reason cut), replacing any entry for its scope and
  // address. kInvalid for an empty address, an unknown source, a negative expiry or a NUL
  // byte, before anything is staged.
  core::Status stage_add(rocksdb::WriteBatch& batch, const Suppression& s) const;
  // Removes the entry if there is one: ok either way, since a fill cannot see what other
  // fills in its batch did. An administrator's "not found" comes from find() beforehand.
  core::Status stage_remove(rocksdb::WriteBatch& batch, std::string_view scope,
                            std::string_view address) const;

  // Visits live entries in key order (scope, then address): those of `scope`, or of every
  // scope; strictly after the cursor `after` (suppression_key of the last entry seen); at most
  // `limit` of them, fewer when `visit` returns false. Answers how many were visited.
  // kCorrupt, naming the key, at an unreadable entry (stage_remove takes it away).
  core::Result<size_t> list(std::optional<std::string_view> scope,
                            const std::optional<std::string>& after, size_t limit, int64_t now_ms,
                            const std::function<bool(const Suppression&)>& visit) const;

  // Deletes the entries expired at now_ms, through `writer`, in batches of a few thousand,
  // and answers how many went. An entry re-added meanwhile (also in the same batch) stays.
  // Unreadable entries are left for an administrator.
  core::Result<size_t> purge_expired(Writer& writer, int64_t now_ms);

 private:
  rocksdb::ColumnFamilyHandle* family() const { return db_.cf(Family::kSuppression); }

  Db& db_;
};

}  // namespace queue
