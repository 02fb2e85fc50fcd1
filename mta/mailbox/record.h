#pragma once
// The persistent form of the mailbox store: keys of the mailbox_index and mailbox_blobs
// families and the records kept in mailbox_index (byte layout and version rule in
// docs/mailbox-format.md).
//
// Every record begins with a version byte; decoders take untrusted bytes and return kCorrupt
// for anything they cannot read exactly (unknown version, wrong length, values out of range,
// trailing bytes). Integers are fixed-width big-endian. Encoders always write the newest
// version; decoders also read the older versions listed below.
//
// Thread safety: pure functions on values.
// Limits: a keyword is at most 255 bytes and a message has at most 65535 of them; a summary
// field or a structure string is below 4 GiB; a user key is a login and so holds no NUL
// byte (policy::validate_user refuses controls), nor does a mailbox name (names.h).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mta::mailbox {

// Newest version of each record; the oldest still read is 1 for all of them.
inline constexpr uint8_t kUserRecordVersion = 1;
inline constexpr uint8_t kMailboxRecordVersion = 2;
inline constexpr uint8_t kMessageRecordVersion = 2;
inline constexpr uint8_t kStructureRecordVersion = 1;
inline constexpr uint8_t kSubscriptionRecordVersion = 1;

inline constexpr size_t kMaxKeywordSize = 255;
inline constexpr size_t kMaxKeywords = 65535;

// RFC 6154 special-use attributes; the byte values are the on-disk format.
enum class SpecialUse : uint8_t { kNone = 0, kSent, kDrafts, kTrash, kJunk, kArchive };
// "\Sent", ...; "" for kNone.
std::string_view special_use_attribute(SpecialUse use);

// RFC 9051 §2.3.2 system flags as bits; the values are the on-disk format. (\Recent is a
// session property of IMAP4rev1 and is not stored.)
enum Flag : uint8_t {
  kSeen = 1,
  kAnswered = 2,
  kFlagged = 4,
  kDeleted = 8,
  kDraft = 16,
};
inline constexpr uint8_t kAllFlags = 31;

struct Flags {
  uint8_t system = 0;                 // Flag bits
  std::vector<std::string> keywords;  // IMAP keyword atoms, as given
  bool operator==(const Flags&) const = default;
};
// "\Seen \Flagged $Label1", in bit order then keyword order; "" when none.
std::string flags_text(const Flags& flags);

// Per user: counters that must never go back, even when a mailbox is deleted.
struct UserRecord {
  uint32_t next_mailbox_id = 1;
  uint32_t next_uidvalidity = 1;  // the least UIDVALIDITY the next new mailbox may take
  bool operator==(const UserRecord&) const = default;
};

struct MailboxRecord {
  uint32_t id = 0;  // names the mailbox in message and blob keys, so a rename moves nothing
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 1;
  uint64_t highest_modseq = 1;
  uint32_t messages = 0;
  uint64_t bytes = 0;  // sum of the messages' sizes
  SpecialUse special_use = SpecialUse::kNone;
  uint32_t unseen = 0;   // messages without \Seen
  uint32_t deleted = 0;  // messages with \Deleted
  // A name kept only because it has inferiors (RFC 9051 §6.3.5): no messages, no id.
  bool noselect = false;
  // Not stored: decoded from a version-1 record, which has no unseen and deleted counts;
  // the store counts them from the messages.
  bool recount = false;
  bool operator==(const MailboxRecord&) const = default;
};

// What IMAP SEARCH reads of a message's header without its bytes (RFC 9051 §6.4.4): the
// fields decoded to UTF-8 (RFC 2047), address fields as "Name <local@domain>, ...".
struct SearchSummary {
  std::string from, to, cc, bcc, subject, message_id;
  int64_t date_ms = 0;  // the Date field, Unix ms; 0 when absent or unreadable
  bool operator==(const SearchSummary&) const = default;
};

// IMAP FETCH items computed once at delivery: the text after "ENVELOPE ", "BODYSTRUCTURE "
// and "BODY " in a FETCH response (RFC 9051 §7.5.2).
struct ImapStructure {
  std::string envelope;
  std::string body_structure;  // extended
  std::string body;            // not extended
  bool operator==(const ImapStructure&) const = default;
};

struct MessageRecord {
  Flags flags;
  int64_t internal_date_ms = 0;  // Unix time
  uint64_t size = 0;             // bytes over all chunks
  uint64_t modseq = 0;
  uint32_t chunks = 0;  // blob chunks 0 .. chunks-1
  // Present if and only if the message has a structure record (both are written together);
  // absent for messages stored without them (and every version-1 record).
  std::optional<SearchSummary> summary;
  bool operator==(const MessageRecord&) const = default;
};

// A message record read in place, for listings: every view points into the decoded bytes.
struct MessageView {
  uint8_t system_flags = 0;
  std::vector<std::string_view> keywords;
  int64_t internal_date_ms = 0;
  uint64_t size = 0;
  uint64_t modseq = 0;
  uint32_t chunks = 0;
  bool has_summary = false;
  struct {
    std::string_view from, to, cc, bcc, subject, message_id;
    int64_t date_ms = 0;
  } summary;  // empty unless has_summary
};

struct StructureView {
  std::string_view envelope, body_structure, body;
};

std::string encode(const UserRecord& r);
std::string encode(const MailboxRecord& r);
// Requires keywords within the limits above (the store checks them before staging).
std::string encode(const MessageRecord& r);
std::string encode(const ImapStructure& r);
std::string encode_subscription();

core::Result<UserRecord> decode_user(std::string_view bytes);
core::Result<MailboxRecord> decode_mailbox(std::string_view bytes);
core::Result<MessageRecord> decode_message(std::string_view bytes);
// Into `out`, reusing its keyword vector; views valid while `bytes` is.
core::Status decode_message(std::string_view bytes, MessageView& out);
core::Result<ImapStructure> decode_structure(std::string_view bytes);
core::Status decode_structure(std::string_view bytes, StructureView& out);
core::Status decode_subscription(std::string_view bytes);

// Keys. `user` is the login lower-cased (ASCII); it never holds a NUL, which ends it where a
// name or a number follows.
//   mailbox_index  'u' user                              -> UserRecord
//                  'm' user NUL mailbox-name             -> MailboxRecord
//                  'i' user NUL mailbox-id(4) uid(4)     -> MessageRecord
//                  'e' user NUL mailbox-id(4) uid(4)     -> ImapStructure
//                  's' user NUL mailbox-name             -> subscription
//   mailbox_blobs  user NUL mailbox-id(4) uid(4) chunk(4) -> bytes
std::string user_key(std::string_view user);
std::string mailbox_key(std::string_view user, std::string_view name);
std::string mailbox_prefix(std::string_view user);  // of every mailbox key of the user
std::string message_key(std::string_view user, uint32_t mailbox_id, uint32_t uid);
std::string message_prefix(std::string_view user, uint32_t mailbox_id);
std::string structure_key(std::string_view user, uint32_t mailbox_id, uint32_t uid);
std::string structure_prefix(std::string_view user, uint32_t mailbox_id);
std::string subscription_key(std::string_view user, std::string_view name);
std::string subscription_prefix(std::string_view user);
std::string blob_key(std::string_view user, uint32_t mailbox_id, uint32_t uid, uint32_t chunk);
std::string blob_prefix(std::string_view user, uint32_t mailbox_id);
// The least key greater than every key that starts with `prefix` (a range end); "" when
// there is none (the prefix is all 0xff bytes).
std::string prefix_end(std::string_view prefix);

// The uid of a message or structure key (its last four bytes); nullopt when the key is too
// short.
std::optional<uint32_t> uid_of_message_key(std::string_view key);

}  // namespace mta::mailbox
