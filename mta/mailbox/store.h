#pragma once
// The mailbox store: users' mailboxes, their messages, UIDs, flags and MODSEQ, kept in the
// mailbox_index and mailbox_blobs families of the queue's RocksDB instance (DESIGN.md "The
// mailbox store is RocksDB"; layout in docs/mailbox-format.md).
//
// Every user has INBOX and the special-use mailboxes Sent, Drafts, Trash, Junk and Archive
// (RFC 6154), all created together by the first append to any of them. A mailbox gets its
// UIDVALIDITY when it is created; a user's UIDVALIDITYs only grow (a recreated mailbox never
// takes an old one back). UIDs in a mailbox strictly increase; an append that was staged but
// never committed leaves a gap, never a UID given twice.
//
// Writes are staged into a caller's rocksdb::WriteBatch, so that an append commits together
// with whatever else the caller writes: local delivery appends and settles the queue
// recipient in one batch (exactly once, DESIGN.md "Durability contract"). To make that safe
// the store keeps each user's counters in memory once it has read them, and:
//   - stage_appends() runs only on the queue writer thread, inside a queue::Writer fill, and
//     as the last thing that fill does that can fail (a fill rolled back after it would
//     leave the counters ahead of the batch);
//   - after a commit of a batch that held stagings fails, forget_staged() runs, on the writer
//     thread, before the writer fills its next batch (that is, in the request's `done`), so
//     the counters are read again from what is on disk.
// The writer fills and commits one batch at a time, so the counters are always what is on
// disk plus what the batch being filled holds.
//
// The read side (mailboxes, messages, bytes) reads what is committed, each call through one
// RocksDB snapshot, from any thread, also on a read-only Db (the CLI).
//
// Thread safety: a mutex guards the counters; reads take no lock.
// Lifetime: the Db must outlive the Store.
//
// Limits: no CREATE/DELETE/RENAME of mailboxes and no flag changes yet (IMAP will add them
// on the same counters); IMAP's precomputed ENVELOPE and BODYSTRUCTURE are not
// stored yet; a message's bytes are held whole in the batch (the queue's size limit bounds
// them); counters are read under the mutex from RocksDB on first use of a user.

#include <rocksdb/write_batch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "mta/mailbox/record.h"
#include "queue/db.h"

namespace mta::mailbox {

inline constexpr std::string_view kInbox = "INBOX";

struct StandardMailbox {
  std::string_view name;
  SpecialUse use;
};
inline constexpr std::array<StandardMailbox, 6> kStandardMailboxes = {{
    {kInbox, SpecialUse::kNone},
    {"Sent", SpecialUse::kSent},
    {"Drafts", SpecialUse::kDrafts},
    {"Trash", SpecialUse::kTrash},
    {"Junk", SpecialUse::kJunk},
    {"Archive", SpecialUse::kArchive},
}};

// Message bytes are stored in chunks of at most this size.
inline constexpr size_t kChunkSize = 1 << 20;

// What stage_appends() stores.
struct Append {
  std::string user;                     // a login, in any case
  std::string mailbox;                  // "INBOX" (any case), "Junk", ...
  std::vector<std::string_view> parts;  // the bytes, in order; must stay valid while staging
  Flags flags;
  int64_t internal_date_ms = 0;
};

struct Appended {
  std::string user;  // as given
  std::string mailbox;
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
  uint64_t modseq = 0;
  uint64_t size = 0;
};

struct Mailbox {
  std::string name;
  MailboxRecord status;
};

struct MessageEntry {
  uint32_t uid = 0;
  MessageRecord record;
};

class Store {
 public:
  // `clock` gives UIDVALIDITY its time base (seconds, as RFC 3501 §2.3.1.1 suggests).
  Store(queue::Db& db, const core::Clock& clock);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Adds every append to `batch`, or none: each gets the next UID and MODSEQ of its
  // mailbox, which counts it in its messages and bytes. A user's first append creates all
  // standard mailboxes. Errors: kNotFound for a mailbox that does not exist and is not a
  // standard one; kInvalid for an empty user, flags out of range or a keyword too long;
  // kPermanent when a mailbox ran out of UIDs; whatever reading the counters gave. After an
  // error the batch and the counters are as they were.
  core::Result<std::vector<Appended>> stage_appends(rocksdb::WriteBatch& batch,
                                                    const std::vector<Append>& appends);

  // Adds the removal of the messages `uids` of one mailbox to `batch` (POP3 QUIT, IMAP
  // EXPUNGE): their records and bytes, and the mailbox's messages and bytes, with one new
  // HIGHESTMODSEQ. A UID that is not there, or whose removal is already staged and not yet
  // committed, is passed over. kNotFound for a mailbox that does not exist. Same thread and
  // ordering rules as stage_appends(); after an error the batch and the counters are as they
  // were.
  core::Status stage_expunge(rocksdb::WriteBatch& batch, std::string_view user,
                             std::string_view mailbox, const std::vector<uint32_t>& uids);

  // A batch holding stagings was not written: counters are read again on next use (UIDNEXT
  // and UIDVALIDITY keep the values already handed out, so no UID is given twice).
  void forget_staged();

  // The user's mailboxes, INBOX first, then by name; empty for a user with none yet.
  core::Result<std::vector<Mailbox>> mailboxes(std::string_view user) const;
  // kNotFound for a mailbox that does not exist.
  core::Result<Mailbox> mailbox(std::string_view user, std::string_view name) const;
  // Each message of the mailbox in UID order until `visit` returns false.
  core::Status list_messages(std::string_view user, std::string_view name,
                             const std::function<bool(const MessageEntry&)>& visit) const;
  core::Result<MessageEntry> message(std::string_view user, std::string_view name,
                                     uint32_t uid) const;
  // The message's bytes chunk by chunk until `visit` returns false; kCorrupt when the chunks
  // stored disagree with the message's record.
  core::Status read_message(std::string_view user, std::string_view name, uint32_t uid,
                            const std::function<bool(std::string_view)>& visit) const;
  // Bytes over all the user's mailboxes, for quota checks (0 for a user with none).
  core::Result<uint64_t> bytes_used(std::string_view user) const;

  // "INBOX" for any case of it (RFC 9051 §5.1); other names unchanged.
  static std::string canonical_name(std::string_view name);

 private:
  struct UserState {
    UserRecord user;
    std::map<std::string, MailboxRecord> mailboxes;
    // Messages whose removal is staged, by mailbox id and UID, until their record is seen
    // gone (committed): so a second removal in the same batch does not count them twice.
    std::set<std::pair<uint32_t, uint32_t>> expunging;
    bool stale = false;  // re-read before use
  };

  core::Result<UserState> load(const std::string& user_id) const;
  core::Result<UserState*> state_for(const std::string& user_id);
  core::Status stage_one(rocksdb::WriteBatch& batch, const Append& a, Appended& out);
  core::Status create_standard(rocksdb::WriteBatch& batch, const std::string& user_id,
                               UserState& s);

  queue::Db& db_;
  const core::Clock& clock_;
  std::mutex mu_;
  std::unordered_map<std::string, UserState> users_;  // by lower-cased login; guarded by mu_
};

}  // namespace mta::mailbox
