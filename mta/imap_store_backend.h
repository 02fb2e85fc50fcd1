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
#include "mta/mailbox/store.h"
#include "queue/writer.h"

namespace mta {

class StoreImapBackend final : public access::ImapBackend {
 public:
  using Post = std::function<void(std::function<void()>)>;

  StoreImapBackend(mailbox::Store& store, queue::Writer& writer, std::string user, Post post);

  core::Result<std::vector<access::ImapMailboxInfo>> mailboxes() override;
  core::Result<access::ImapMailboxStatus> status(std::string_view mailbox) override;
  core::Result<std::vector<access::ImapMessageMeta>> messages(std::string_view mailbox) override;
  core::Result<std::string> message_bytes(std::string_view mailbox, uint32_t uid) override;
  core::Result<access::ImapMessageSummary> summary(std::string_view mailbox, uint32_t uid) override;
  // Kept between calls for the last mailbox asked (see cache_): a session's later searches
  // read only the index records of messages that arrived since.
  core::Result<const SummaryList*> summaries(std::string_view mailbox) override;

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
  const std::string user_;
  Post post_;
  // The summaries of one mailbox, complete up to (not including) next_uid. Summaries never
  // change, so only new messages are read; expunged ones stay until the list is rebuilt.
  struct SummaryCache {
    std::string mailbox;
    uint32_t uidvalidity = 0;
    uint32_t next_uid = 1;
    SummaryList items;
  } cache_;
};

}  // namespace mta
