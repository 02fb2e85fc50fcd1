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

#include <cstdint>
#include <functional>
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

// What FETCH and SEARCH read without the message bytes (precomputed at delivery).
struct ImapMessageSummary {
  std::string envelope;       // IMAP ENVELOPE, parenthesised
  std::string bodystructure;  // extended
  std::string body;           // non-extended
  std::string from, to, cc, bcc, subject, message_id;  // decoded UTF-8
  int64_t sent_date_ms = 0;                            // Date: header; 0 unknown
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
  // The summaries of the mailbox's messages in UID order (for SEARCH), possibly with some
  // of messages expunged since: the caller matches them by UID. Valid until the next call.
  using SummaryList = std::vector<std::pair<uint32_t, ImapMessageSummary>>;
  virtual core::Result<const SummaryList*> summaries(std::string_view mailbox) = 0;

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
