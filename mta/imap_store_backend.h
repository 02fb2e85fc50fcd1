#pragma once
// StoreImapBackend: the ImapBackend (mta/access/imap_backend.h) of one logged-in user over
// the mailbox store. Reads go straight to the store; writes are staged in a queue::Writer
// fill (the store's rule: the last thing in the fill that can fail), committed with the
// writer's group commit, announced to the store's watchers, and their result handed to
// `post`, which runs it on the session's loop (and drops it if the session has gone).
//
// Threading: the session's loop thread, except the fills, which run on the writer thread
// and touch only the store and copies of their arguments.

#include <functional>
#include <string>

#include "mta/access/imap_backend.h"
#include "mta/imap_search_cache.h"
#include "mta/mailbox/store.h"
#include "queue/writer.h"

namespace mta {

class StoreImapBackend final : public access::ImapBackend {
 public:
  using Post = std::function<void(std::function<void()>)>;
  // Runs work off the session's thread (a thread pool), or not at all when empty.
  using Offload = std::function<void(std::function<void()>)>;

  StoreImapBackend(mailbox::Store& store, queue::Writer& writer, ImapSearchCache& search_cache,
                   std::string user, Post post, Offload offload = {});

  core::Result<std::vector<access::ImapMailboxInfo>> mailboxes() override;
  core::Result<access::ImapMailboxStatus> status(std::string_view mailbox) override;
  core::Result<std::vector<access::ImapMessageMeta>> messages(std::string_view mailbox) override;
  core::Result<std::string> message_bytes(std::string_view mailbox, uint32_t uid) override;
  core::Result<access::ImapMessageSummary> summary(std::string_view mailbox, uint32_t uid) override;
  // From the process's shared cache: only mail that arrived since anyone last searched the
  // mailbox is read from the index.
  core::Result<access::ImapSearchSnapshot> search_fields(std::string_view mailbox) override;
  // A large mailbox's search fields are brought up to date on the Offload while SELECT
  // lists it, so the first SEARCH after a restart does not read the whole index itself.
  void selecting(std::string_view mailbox, uint32_t messages) override;

  void create(std::string_view mailbox, Done done) override;
  void remove(std::string_view mailbox, Done done) override;
  void rename(std::string_view from, std::string_view to, Done done) override;
  void subscribe(std::string_view mailbox, bool subscribed, Done done) override;
  void append(std::string_view mailbox, std::string bytes, access::ImapFlags flags,
              int64_t internal_date_ms,
              std::function<void(core::Result<std::pair<uint32_t, uint32_t>>)> done) override;
  void set_flags(std::string_view mailbox, std::vector<uint32_t> uids, access::ImapStoreMode mode,
                 access::ImapFlags flags,
                 std::function<void(core::Result<std::vector<access::ImapMessageMeta>>)> done)
      override;
  void expunge(std::string_view mailbox, std::vector<uint32_t> uids, Done done) override;
  void copy(std::string_view from, std::vector<uint32_t> uids, std::string_view to, bool move,
            std::function<void(core::Result<Copied>)> done) override;

  // The user's standard mailboxes, made at the first login of a user who has had no mail.
  void provision(Done done);

 private:
  // Runs `stage` in a writer fill; `done` gets its value (or the error) on the loop.
  template <typename T>
  void write(std::function<core::Result<T>(rocksdb::WriteBatch&, mailbox::Changes&)> stage,
             std::function<void(core::Result<T>)> done);

  mailbox::Store& store_;
  queue::Writer& writer_;
  ImapSearchCache& search_cache_;
  const std::string user_;
  Post post_;
  Offload offload_;
};

}  // namespace mta
