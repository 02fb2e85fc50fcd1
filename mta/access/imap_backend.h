#pragma once
// What an IMAP session needs from the mailbox store, for its one logged-in user.
//
// The session (mta/access/imap_session.h) stays free of sockets, threads and RocksDB: reads
// are synchronous calls (point reads and index scans, cheap enough for the loop thread);
// writes go through the queue writer's group commit, so they complete later through a
// callback, which the implementation delivers on the session's thread and drops if the
// session has gone. The implementation over mta/mailbox lives in the glue (mta/).
//
// Mailbox names are as the client sees them, "/" separating levels, INBOX in any case.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mta::access {

// System flags as bits, the same values as the store's (mta/mailbox/record.h).
enum ImapFlag : uint8_t {
  kImapSeen = 1,
  kImapAnswered = 2,
  kImapFlagged = 4,
  kImapDeleted = 8,
  kImapDraft = 16,
};

struct ImapFlags {
  uint8_t system = 0;
  std::vector<std::string> keywords;
  bool operator==(const ImapFlags&) const = default;
};

struct ImapMailboxInfo {
  std::string name;
  std::vector<std::string> attributes;  // "\HasNoChildren", "\Sent", "\Noselect", ...
  bool subscribed = false;
};

struct ImapMailboxStatus {
  uint32_t messages = 0;
  uint32_t uidnext = 1;
  uint32_t uidvalidity = 0;
  uint32_t unseen = 0;
  uint32_t deleted = 0;
  uint64_t size = 0;
  uint64_t highest_modseq = 1;
};

struct ImapMessageMeta {
  uint32_t uid = 0;
  ImapFlags flags;
  int64_t internal_date_ms = 0;
  uint64_t size = 0;
  uint64_t modseq = 0;
};

// What FETCH reads without the message bytes (precomputed at delivery).
struct ImapMessageSummary {
  std::string envelope;       // IMAP ENVELOPE, parenthesised
  std::string bodystructure;  // extended
  std::string body;           // non-extended
};

// What SEARCH's header keys read of one message without its bytes: From, To, Cc, Bcc,
// Subject and Message-ID decoded to UTF-8, kept in one string (one allocation per message:
// a mailbox may hold hundreds of thousands), and the Date field (Unix ms; 0 unknown).
class ImapSearchFields {
 public:
  enum Field { kFrom, kTo, kCc, kBcc, kSubject, kMessageId, kFieldCount };
  ImapSearchFields() = default;
  ImapSearchFields(uint32_t uid, const std::array<std::string_view, kFieldCount>& fields,
                   int64_t sent_date_ms);
  uint32_t uid() const { return uid_; }
  std::string_view get(Field f) const;
  int64_t sent_date_ms() const { return sent_date_ms_; }

 private:
  uint32_t uid_ = 0;
  std::array<uint32_t, kFieldCount> ends_{};  // field i is text_[ends_[i-1], ends_[i])
  int64_t sent_date_ms_ = 0;
  std::string text_;
};

// The search fields of a mailbox's messages: blocks in ascending UID order, each sorted by
// UID; it may still hold messages expunged since (match by UID). Blocks never change once
// made, so a snapshot stays valid while new mail extends the mailbox's own list.
using ImapSearchBlock = std::vector<ImapSearchFields>;
struct ImapSearchSnapshot {
  std::vector<std::shared_ptr<const ImapSearchBlock>> blocks;
};

// Walks a snapshot by ascending UID: seek(uid) finds the fields of `uid` (null when it has
// none) and never looks behind the last UID sought.
class ImapSearchCursor {
 public:
  explicit ImapSearchCursor(const ImapSearchSnapshot& s) : s_(s) {}
  const ImapSearchFields* seek(uint32_t uid);

 private:
  const ImapSearchSnapshot& s_;
  size_t block_ = 0;
  size_t item_ = 0;
};

enum class ImapStoreMode { kAdd, kRemove, kReplace };

class ImapBackend {
 public:
  virtual ~ImapBackend() = default;

  // --- reads --------------------------------------------------------------------------
  virtual core::Result<std::vector<ImapMailboxInfo>> mailboxes() = 0;
  // kNotFound when the mailbox does not exist.
  virtual core::Result<ImapMailboxStatus> status(std::string_view mailbox) = 0;
  // Every message of the mailbox, in UID order.
  virtual core::Result<std::vector<ImapMessageMeta>> messages(std::string_view mailbox) = 0;
  virtual core::Result<std::string> message_bytes(std::string_view mailbox, uint32_t uid) = 0;
  // Computed from the bytes when the store has none for this message.
  virtual core::Result<ImapMessageSummary> summary(std::string_view mailbox, uint32_t uid) = 0;
  // The search fields of the mailbox's messages (for SEARCH's header keys).
  virtual core::Result<ImapSearchSnapshot> search_fields(std::string_view mailbox) = 0;
  // A hint that the session is selecting this mailbox of `messages` messages (before it
  // lists them): a chance to start reading what a search would need.
  virtual void selecting(std::string_view mailbox, uint32_t messages) = 0;

  // --- writes: `done` runs later on the session's thread --------------------------------
  using Done = std::function<void(core::Status)>;
  virtual void create(std::string_view mailbox, Done done) = 0;
  virtual void remove(std::string_view mailbox, Done done) = 0;
  virtual void rename(std::string_view from, std::string_view to, Done done) = 0;
  virtual void subscribe(std::string_view mailbox, bool subscribed, Done done) = 0;
  // The new message's UIDVALIDITY and UID (for APPENDUID, RFC 4315).
  virtual void append(std::string_view mailbox, std::string bytes, ImapFlags flags,
                      int64_t internal_date_ms,
                      std::function<void(core::Result<std::pair<uint32_t, uint32_t>>)> done) = 0;
  // The messages whose flags changed, with their new flags and modseq.
  virtual void set_flags(std::string_view mailbox, std::vector<uint32_t> uids, ImapStoreMode mode,
                         ImapFlags flags,
                         std::function<void(core::Result<std::vector<ImapMessageMeta>>)> done) = 0;
  virtual void expunge(std::string_view mailbox, std::vector<uint32_t> uids, Done done) = 0;
  // The target's UIDVALIDITY and (source UID, new UID) of each message copied, in the order
  // of `uids`; UIDs gone meanwhile are left out (COPYUID, RFC 4315).
  using Copied = std::pair<uint32_t, std::vector<std::pair<uint32_t, uint32_t>>>;
  virtual void copy(std::string_view from, std::vector<uint32_t> uids, std::string_view to,
                    bool move, std::function<void(core::Result<Copied>)> done) = 0;
};

}  // namespace mta::access
