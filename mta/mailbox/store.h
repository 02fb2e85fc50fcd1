#pragma once
// The mailbox store: users' mailboxes, their messages, UIDs, flags and MODSEQ, kept in the
// mailbox_index and mailbox_blobs families of the queue's RocksDB instance (DESIGN.md "The
// mailbox store is RocksDB"; layout in docs/mailbox-format.md).
//
// Every user has INBOX and the special-use mailboxes Sent, Drafts, Trash, Junk and Archive
// (RFC 6154), all created (and subscribed) together when the user is first provisioned: by
// the first append, CREATE or stage_provision(). A mailbox gets its UIDVALIDITY when it is
// created; a user's UIDVALIDITYs only grow (a recreated mailbox never takes an old one back),
// and a renamed mailbox keeps its own. UIDs in a mailbox strictly increase; an append that
// was staged but never committed leaves a gap, never a UID given twice. Every change to a
// message (append, copy, flags) takes a new MODSEQ, and every change to a mailbox's messages
// (also an expunge) raises its HIGHESTMODSEQ (RFC 7162).
//
// Writes are staged into a caller's rocksdb::WriteBatch, so that they commit together with
// whatever else the caller writes: local delivery appends and settles the queue recipient in
// one batch (exactly once, DESIGN.md "Durability contract"). To make that safe the store
// keeps each user's counters, and the messages changed by the batch being filled, in memory,
// and:
//   - every stage_*() runs only on the queue writer thread, inside a queue::Writer fill, and
//     as the last thing that fill does that can fail (a fill rolled back after it would
//     leave the counters ahead of the batch);
//   - the request's `done` (on the writer thread, before the writer fills its next batch)
//     calls notify_committed() with the Changes its stagings filled: after a failed commit
//     that forgets the counters (forget_staged(): they are read again from disk), after a
//     good one it tells the watchers of events() which mailboxes changed.
// The writer fills and commits one batch at a time, so the counters are always what is on
// disk plus what the batch being filled holds; stagings later in the same batch see the
// earlier ones (two sessions changing one message's flags in one batch both count).
//
// Mailbox operations and what IMAP answers (RFC 5530 codes) for each refusal:
//   create  kInvalid bad name [CANNOT]; kPermanent exists [ALREADYEXISTS]
//   delete  kInvalid bad name or INBOX [CANNOT]; kNotFound [NONEXISTENT];
//           kPermanent a \Noselect name with inferiors [HASCHILDREN]
//   rename  kInvalid bad name or into itself [CANNOT]; kNotFound [NONEXISTENT];
//           kPermanent target exists [ALREADYEXISTS]
//   messages of a mailbox that does not exist or is \Noselect: kNotFound ([TRYCREATE] for
//   APPEND, COPY and MOVE targets)
//
// The read side reads what is committed, each call through one RocksDB snapshot, from any
// thread, also on a read-only Db (the CLI).
//
// Thread safety: a mutex guards the counters; reads take no lock; events() as events.h says.
// Lifetime: the Db must outlive the Store.
//
// Limits: a message's bytes are held whole in the batch (the queue's size limit bounds them),
// and so are those of every message a copy or move stages (IMAP should copy large sets in
// several batches); counters are read under the mutex from RocksDB on first use of a user;
// mailbox names as names.h allows; subscriptions are names only (RFC 9051 §6.3.7: neither
// DELETE nor RENAME changes them).

#include <rocksdb/write_batch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "mta/mailbox/events.h"
#include "mta/mailbox/names.h"
#include "mta/mailbox/record.h"
#include "queue/db.h"

namespace mta::mailbox {

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

// What IMAP needs of a message without reading its bytes, computed from exactly the bytes
// stored (mta/local_delivery.h imap_data_of()).
struct ImapData {
  SearchSummary summary;
  ImapStructure structure;
  bool operator==(const ImapData&) const = default;
};

// What stage_appends() stores.
struct Append {
  std::string user;                     // a login, in any case
  std::string mailbox;                  // "INBOX" (any case), "Junk", ...
  std::vector<std::string_view> parts;  // the bytes, in order; must stay valid while staging
  Flags flags;
  int64_t internal_date_ms = 0;
  // Without it a reader computes what it needs from the bytes (and may keep it with
  // stage_imap_data()).
  std::optional<ImapData> imap;
  // A standard mailbox the user deleted is created again (local delivery into Junk); else
  // kNotFound, as IMAP APPEND needs for [TRYCREATE].
  bool create_standard = false;
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
  MailboxRecord status;  // also what IMAP STATUS reports
};

struct MessageEntry {
  uint32_t uid = 0;
  MessageRecord record;
};

enum class FlagMode { kAdd, kRemove, kReplace };  // IMAP STORE +FLAGS, -FLAGS, FLAGS

struct FlagChange {
  uint32_t uid = 0;
  Flags flags;  // the message's flags now
  uint64_t modseq = 0;
  bool operator==(const FlagChange&) const = default;
};

struct FlagsStaged {
  std::vector<FlagChange> changed;  // in the order of the UIDs given
  // RFC 7162 §3.1.3: left alone because their MODSEQ is above UNCHANGEDSINCE (MODIFIED).
  std::vector<uint32_t> modified;
};

struct Copied {
  uint32_t uidvalidity = 0;  // of the target
  // (source UID, new UID in the target) in the order of the UIDs given, for COPYUID
  // (RFC 4315 §3); UIDs that do not exist are left out, and a UID given twice counts once.
  std::vector<std::pair<uint32_t, uint32_t>> uids;
};

class Store {
 public:
  // `clock` gives UIDVALIDITY its time base (seconds, as RFC 3501 §2.3.1.1 suggests).
  Store(queue::Db& db, const core::Clock& clock);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Where IMAP sessions learn of committed changes.
  Events& events() { return events_; }

  // --- Writes: on the writer thread, in a fill, last; see above. After an error the batch
  // --- and the counters are as they were, and `changes` is unchanged.

  // Adds every append to `batch`, or none: each gets the next UID and MODSEQ of its
  // mailbox, which counts it in its messages, bytes, unseen and deleted. A user's first
  // append provisions the user. Errors: kNotFound for a mailbox that does not exist (see
  // Append::create_standard); kInvalid for an empty user, flags out of range or a keyword too
  // long; kPermanent when a mailbox ran out of UIDs; whatever reading the counters gave.
  core::Result<std::vector<Appended>> stage_appends(rocksdb::WriteBatch& batch,
                                                    const std::vector<Append>& appends,
                                                    Changes& changes);

  // Changes the flags of the messages `uids` (IMAP STORE). A message whose flags come out
  // the same keeps its MODSEQ; all that change take one new MODSEQ, which becomes the
  // mailbox's HIGHESTMODSEQ. With `unchanged_since` (CONDSTORE, RFC 7162 §3.1.3) a message
  // whose MODSEQ is greater is left alone and reported. Keywords compare case-insensitively
  // (the first spelling stays). UIDs that do not exist are passed over. kInvalid for flags
  // out of range, kNotFound for a mailbox that does not exist.
  core::Result<FlagsStaged> stage_set_flags(rocksdb::WriteBatch& batch, Changes& changes,
                                            std::string_view user, std::string_view mailbox,
                                            const std::vector<uint32_t>& uids, FlagMode mode,
                                            const Flags& flags,
                                            std::optional<uint64_t> unchanged_since);

  // Removes the messages `uids` (POP3 QUIT, IMAP EXPUNGE and UID EXPUNGE with
  // `only_deleted`, which skips any that no longer has \Deleted): their records and bytes,
  // and the mailbox's counters, with one new HIGHESTMODSEQ. A UID that is not there, or whose
  // removal is already staged, is passed over. The UIDs removed, in the order given.
  core::Result<std::vector<uint32_t>> stage_expunge(rocksdb::WriteBatch& batch, Changes& changes,
                                                    std::string_view user, std::string_view mailbox,
                                                    const std::vector<uint32_t>& uids,
                                                    bool only_deleted);

  // IMAP COPY (RFC 9051 §6.4.7): the messages `uids` of `from` appended to `to` (which may
  // be `from`) with their bytes, flags, internal date and IMAP data, each with the next UID
  // and a new MODSEQ of `to`. kNotFound when either mailbox does not exist.
  core::Result<Copied> stage_copy(rocksdb::WriteBatch& batch, Changes& changes,
                                  std::string_view user, std::string_view from,
                                  const std::vector<uint32_t>& uids, std::string_view to);
  // IMAP MOVE (RFC 6851): stage_copy() and the expunge of what it copied, in one batch.
  core::Result<Copied> stage_move(rocksdb::WriteBatch& batch, Changes& changes,
                                  std::string_view user, std::string_view from,
                                  const std::vector<uint32_t>& uids, std::string_view to);

  // Creates the user's standard mailboxes unless the user has them already (INBOX exists):
  // for IMAP's first login of a user who has had no mail.
  core::Status stage_provision(rocksdb::WriteBatch& batch, Changes& changes, std::string_view user);

  // IMAP CREATE (RFC 9051 §6.3.4): a trailing "/" is dropped; missing superior names are
  // created as mailboxes too; a \Noselect name becomes a mailbox. `use` is RFC 6154's
  // CREATE-SPECIAL-USE attribute.
  core::Status stage_create(rocksdb::WriteBatch& batch, Changes& changes, std::string_view user,
                            std::string_view name, SpecialUse use = SpecialUse::kNone);

  // IMAP DELETE (RFC 9051 §6.3.5), as Dovecot does it: a mailbox without inferiors goes
  // with its messages; one with inferiors loses its messages and stays as a \Noselect name
  // (new messages cannot enter it; CREATE makes it a mailbox again, with a new UIDVALIDITY);
  // a \Noselect name with inferiors is refused. \Noselect superiors left without inferiors
  // go too. INBOX cannot be deleted; special-use mailboxes can.
  core::Status stage_delete(rocksdb::WriteBatch& batch, Changes& changes, std::string_view user,
                            std::string_view name);

  // IMAP RENAME (RFC 9051 §6.3.6): the mailbox and its inferiors take the new names and
  // keep their UIDVALIDITY, messages and special use; missing superiors of `to` are
  // created. Renaming INBOX moves its messages (not its inferiors) to `to` and leaves a new,
  // empty INBOX with a new UIDVALIDITY.
  core::Status stage_rename(rocksdb::WriteBatch& batch, Changes& changes, std::string_view user,
                            std::string_view from, std::string_view to);

  // IMAP SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8): the name need not exist.
  // kInvalid for a bad name. Changes no mailbox, so nothing to notify.
  core::Status stage_subscribe(rocksdb::WriteBatch& batch, std::string_view user,
                               std::string_view name, bool subscribed);

  // Keeps IMAP data a reader computed for a message stored without it. Changes nothing a
  // client sees (no MODSEQ); a message that is gone or has data already is passed over.
  core::Status stage_imap_data(rocksdb::WriteBatch& batch, std::string_view user,
                               std::string_view mailbox, uint32_t uid, const ImapData& data);

  // In the request's `done`: after a failure forget_staged(), else tell the watchers.
  void notify_committed(const Changes& changes, const core::Status& status);

  // A batch holding stagings was not written: counters are read again on next use (UIDNEXT
  // and UIDVALIDITY keep the values already handed out, so no UID is given twice).
  void forget_staged();

  // --- Reads.

  // The user's mailboxes and \Noselect names, INBOX first, then by name; empty for a user
  // with none yet.
  core::Result<std::vector<Mailbox>> mailboxes(std::string_view user) const;
  // kNotFound for a mailbox that does not exist (a \Noselect name is returned, flagged).
  core::Result<Mailbox> mailbox(std::string_view user, std::string_view name) const;
  // The names the user subscribed to, in byte order.
  core::Result<std::vector<std::string>> subscriptions(std::string_view user) const;

  // Each message of the mailbox in UID order until `visit` returns false.
  core::Status list_messages(std::string_view user, std::string_view name,
                             const std::function<bool(const MessageEntry&)>& visit) const;
  // For SELECT, SEARCH and resynchronisation: each message from UID `first_uid` on, read in
  // place from the index alone (never the bytes, never the structures) until `visit` returns
  // false; the views are valid during the visit only. Returns the mailbox as of the same
  // snapshot, so its UIDNEXT and HIGHESTMODSEQ match what was listed.
  using IndexVisitor = std::function<bool(uint32_t uid, const MessageView& message)>;
  core::Result<MailboxRecord> list_index(std::string_view user, std::string_view name,
                                         const IndexVisitor& visit, uint32_t first_uid = 1) const;
  core::Result<MessageEntry> message(std::string_view user, std::string_view name,
                                     uint32_t uid) const;
  // nullopt for a message stored without IMAP data.
  core::Result<std::optional<ImapStructure>> imap_structure(std::string_view user,
                                                            std::string_view name,
                                                            uint32_t uid) const;
  // The stored structures from UID `first_uid` on, in UID order (FETCH ENVELOPE or
  // BODYSTRUCTURE of many messages); messages without one are not visited.
  using StructureVisitor = std::function<bool(uint32_t uid, const StructureView& structure)>;
  core::Status list_structures(std::string_view user, std::string_view name,
                               const StructureVisitor& visit, uint32_t first_uid = 1) const;
  // The message's bytes chunk by chunk until `visit` returns false; kCorrupt when the chunks
  // stored disagree with the message's record.
  core::Status read_message(std::string_view user, std::string_view name, uint32_t uid,
                            const std::function<bool(std::string_view)>& visit) const;
  // Bytes over all the user's mailboxes, for quota checks (0 for a user with none).
  core::Result<uint64_t> bytes_used(std::string_view user) const;

 private:
  using MessageId = std::pair<uint32_t, uint32_t>;  // mailbox id, UID

  struct UserState {
    UserRecord user;
    std::map<std::string, MailboxRecord> mailboxes;
    // The newest staged form of messages that exist on disk and were changed by the batch
    // being filled (nullopt: removed), so later stagings in that batch build on it.
    std::map<MessageId, std::optional<MessageRecord>> staged;
    uint64_t staged_at = 0;  // the database's sequence number when `staged` was begun
    bool stale = false;      // re-read before use
  };
  class View;
  class Work;

  core::Result<UserState> load(const std::string& user_id) const;
  core::Result<UserState*> state_for(const std::string& user_id);
  core::Result<Copied> copy(rocksdb::WriteBatch& batch, Changes& changes, std::string_view user,
                            std::string_view from, const std::vector<uint32_t>& uids,
                            std::string_view to, bool move);

  queue::Db& db_;
  const core::Clock& clock_;
  Events events_;
  std::mutex mu_;
  std::unordered_map<std::string, UserState> users_;  // by lower-cased login; guarded by mu_
};

}  // namespace mta::mailbox
