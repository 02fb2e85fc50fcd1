#pragma once
// ImapSearchCache: the search fields (mta/access/imap_backend.h ImapSearchFields) of the
// mailboxes IMAP sessions search, shared by every session of the process. A mailbox's list
// is read from the store's index once and then only extended by the messages that arrived
// since (search fields never change), so a session's first header SEARCH costs what a later
// one does unless nobody has searched that mailbox since the daemon started.
//
// A list is read anew when its mailbox was recreated (new UIDVALIDITY) or when it holds more
// than twice the mailbox's messages plus 1,024 (expunged mail accumulates until then).
//
// Thread safety: get() from any thread. Each mailbox's list has its own lock, held while its
// new index records are read, so two sessions never read the same records twice; snapshots
// handed out stay valid without any lock.
// Limits: at most `max_messages` fields in all lists together (the least recently searched
// mailboxes are dropped first; the one being searched is always kept).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"
#include "mta/access/imap_backend.h"
#include "mta/mailbox/store.h"

namespace mta {

class ImapSearchCache {
 public:
  explicit ImapSearchCache(size_t max_messages = 4'000'000) : max_messages_(max_messages) {}
  ImapSearchCache(const ImapSearchCache&) = delete;
  ImapSearchCache& operator=(const ImapSearchCache&) = delete;

  // The fields of every message of `user`'s `mailbox` as the store's index holds them now.
  core::Result<access::ImapSearchSnapshot> get(const mailbox::Store& store, std::string_view user,
                                               std::string_view mailbox);

 private:
  struct List;
  void trim(const std::shared_ptr<List>& keep);

  const size_t max_messages_;
  std::mutex mu_;  // guards lists_ and use_clock_
  std::unordered_map<std::string, std::shared_ptr<List>> lists_;
  uint64_t use_clock_ = 0;
};

}  // namespace mta
