#include "mta/imap_search_cache.h"

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/address.h"
#include "mta/local_delivery.h"

namespace mta {
namespace {

using access::ImapSearchBlock;
using access::ImapSearchFields;

// Small blocks from frequent re-reads are merged up to this size, so a long-lived list stays
// a few hundred blocks at most.
constexpr size_t kBlockSize = 4096;

template <typename Summary>
ImapSearchFields fields_of(uint32_t uid, const Summary& s) {
  return ImapSearchFields(uid, {s.from, s.to, s.cc, s.bcc, s.subject, s.message_id}, s.date_ms);
}

}  // namespace

struct ImapSearchCache::List {
  std::mutex mu;  // guards everything below; held while new index records are read
  uint32_t uidvalidity = 0;
  uint32_t next_uid = 1;  // complete up to (not including) this UID
  std::vector<std::shared_ptr<const ImapSearchBlock>> blocks;
  std::atomic<size_t> count{0};
  std::atomic<uint64_t> last_used{0};

  void reset(uint32_t validity) {
    uidvalidity = validity;
    next_uid = 1;
    blocks.clear();
    count = 0;
  }

  void add(ImapSearchBlock block) {
    if (block.empty()) return;
    count += block.size();
    if (!blocks.empty() && blocks.back()->size() + block.size() <= kBlockSize) {
      auto merged = std::make_shared<ImapSearchBlock>(*blocks.back());
      merged->insert(merged->end(), std::make_move_iterator(block.begin()),
                     std::make_move_iterator(block.end()));
      blocks.back() = std::move(merged);
      return;
    }
    blocks.push_back(std::make_shared<const ImapSearchBlock>(std::move(block)));
  }
};

core::Result<access::ImapSearchSnapshot> ImapSearchCache::get(const mailbox::Store& store,
                                                              std::string_view user,
                                                              std::string_view mailbox) {
  std::shared_ptr<List> list;
  {
    std::lock_guard lock(mu_);
    std::string key = core::to_lower_ascii(user);
    key.push_back('\0');
    key.append(mailbox);
    auto& slot = lists_[key];
    if (!slot) slot = std::make_shared<List>();
    list = slot;
    list->last_used = ++use_clock_;
  }
  std::unique_lock lock(list->mu);
  auto box = store.mailbox(user, mailbox);
  if (!box) return box.status();
  const auto& st = box->status;
  if (list->uidvalidity != st.uidvalidity ||
      list->count > 2 * static_cast<size_t>(st.messages) + 1024)
    list->reset(st.uidvalidity);

  ImapSearchBlock fresh;
  std::vector<uint32_t> missing;  // stored without search fields (older records)
  auto r = store.list_index(
      user, mailbox,
      [&](uint32_t uid, const mailbox::MessageView& m) {
        if (m.has_summary)
          fresh.push_back(fields_of(uid, m.summary));
        else
          missing.push_back(uid);
        return true;
      },
      list->next_uid);
  if (!r) {
    list->reset(0);
    return r.status();
  }
  for (uint32_t uid : missing) {
    std::string bytes;
    auto s = store.read_message(user, mailbox, uid, [&](std::string_view chunk) {
      bytes.append(chunk);
      return true;
    });
    if (s) fresh.push_back(fields_of(uid, imap_data_of(bytes).summary));
  }
  if (!missing.empty())
    std::sort(fresh.begin(), fresh.end(),
              [](const auto& a, const auto& b) { return a.uid() < b.uid(); });
  const bool grew = !fresh.empty();
  list->add(std::move(fresh));
  list->next_uid = r->uidnext;
  access::ImapSearchSnapshot snapshot{list->blocks};
  lock.unlock();
  if (grew) trim(list);
  return snapshot;
}

void ImapSearchCache::trim(const std::shared_ptr<List>& keep) {
  std::lock_guard lock(mu_);
  size_t total = 0;
  for (const auto& [key, l] : lists_) total += l->count;
  while (total > max_messages_) {
    auto oldest = lists_.end();
    for (auto it = lists_.begin(); it != lists_.end(); ++it)
      if (it->second != keep &&
          (oldest == lists_.end() || it->second->last_used < oldest->second->last_used))
        oldest = it;
    if (oldest == lists_.end()) return;
    total -= oldest->second->count;
    lists_.erase(oldest);
  }
}

}  // namespace mta
