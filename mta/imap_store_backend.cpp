#include "mta/imap_store_backend.h"

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>

#include "mta/local_delivery.h"

namespace mta {
namespace {

using access::ImapMessageMeta;
using access::ImapMessageSummary;

access::ImapFlags to_imap(const mailbox::Flags& f) { return {f.system, f.keywords}; }

ImapMessageSummary to_summary(const mailbox::ImapStructure& st) {
  return ImapMessageSummary{st.envelope, st.body_structure, st.body};
}

// A staging error travels out of the writer's fill as this, so `done` can give the store's
// own status rather than the writer's generic "fill failed".
struct StageFailed : std::runtime_error {
  explicit StageFailed(core::Status s) : std::runtime_error(s.message()), status(std::move(s)) {}
  core::Status status;
};

}  // namespace

StoreImapBackend::StoreImapBackend(mailbox::Store& store, queue::Writer& writer,
                                   ImapSearchCache& search_cache, std::string user, Post post,
                                   Offload offload)
    : store_(store),
      writer_(writer),
      search_cache_(search_cache),
      user_(std::move(user)),
      post_(std::move(post)),
      offload_(std::move(offload)) {}

core::Result<std::vector<access::ImapMailboxInfo>> StoreImapBackend::mailboxes() {
  auto boxes = store_.mailboxes(user_);
  if (!boxes) return boxes.status();
  auto subs = store_.subscriptions(user_);
  if (!subs) return subs.status();
  const std::set<std::string> subscribed(subs->begin(), subs->end());
  std::vector<access::ImapMailboxInfo> out;
  for (const auto& b : *boxes) {
    access::ImapMailboxInfo info;
    info.name = b.name;
    bool children = false;
    for (const auto& other : *boxes)
      children |= other.name.size() > b.name.size() + 1 &&
                  other.name.compare(0, b.name.size(), b.name) == 0 &&
                  other.name[b.name.size()] == '/';
    info.attributes.push_back(children ? "\\HasChildren" : "\\HasNoChildren");
    if (b.status.noselect) info.attributes.push_back("\\Noselect");
    if (auto use = mailbox::special_use_attribute(b.status.special_use); !use.empty())
      info.attributes.emplace_back(use);
    info.subscribed = subscribed.count(b.name) > 0;
    out.push_back(std::move(info));
  }
  return out;
}

core::Result<access::ImapMailboxStatus> StoreImapBackend::status(std::string_view mailbox) {
  auto box = store_.mailbox(user_, mailbox);
  if (!box) return box.status();
  if (box->status.noselect) return core::Status::not_found("\\Noselect: holds no messages");
  const auto& r = box->status;
  return access::ImapMailboxStatus{r.messages, r.uidnext, r.uidvalidity, r.unseen,
                                   r.deleted,  r.bytes,   r.highest_modseq};
}

core::Result<std::vector<ImapMessageMeta>> StoreImapBackend::messages(std::string_view mailbox) {
  std::vector<ImapMessageMeta> out;
  auto r = store_.list_index(user_, mailbox, [&](uint32_t uid, const mailbox::MessageView& m) {
    ImapMessageMeta meta;
    meta.uid = uid;
    meta.flags.system = m.system_flags;
    for (auto k : m.keywords) meta.flags.keywords.emplace_back(k);
    meta.internal_date_ms = m.internal_date_ms;
    meta.size = m.size;
    meta.modseq = m.modseq;
    out.push_back(std::move(meta));
    return true;
  });
  if (!r) return r.status();
  return out;
}

core::Result<std::string> StoreImapBackend::message_bytes(std::string_view mailbox, uint32_t uid) {
  std::string bytes;
  auto s = store_.read_message(user_, mailbox, uid, [&](std::string_view chunk) {
    bytes.append(chunk);
    return true;
  });
  if (!s) return s;
  return bytes;
}

core::Result<ImapMessageSummary> StoreImapBackend::summary(std::string_view mailbox, uint32_t uid) {
  auto structure = store_.imap_structure(user_, mailbox, uid);
  if (!structure) return structure.status();
  if (*structure) return to_summary(**structure);
  // Stored without IMAP data (older records): computed from the bytes.
  auto bytes = message_bytes(mailbox, uid);
  if (!bytes) return bytes.status();
  return to_summary(imap_data_of(*bytes).structure);
}

core::Result<access::ImapSearchSnapshot> StoreImapBackend::search_fields(
    std::string_view mailbox) {
  return search_cache_.get(store_, user_, mailbox);
}

void StoreImapBackend::selecting(std::string_view mailbox, uint32_t messages) {
  // Below this a cold read is a few milliseconds: not worth a pool thread.
  constexpr uint32_t kWarmFrom = 5000;
  if (!offload_ || messages < kWarmFrom) return;
  offload_([&cache = search_cache_, &store = store_, user = user_, box = std::string(mailbox)] {
    (void)cache.get(store, user, box);
  });
}

template <typename T>
void StoreImapBackend::write(
    std::function<core::Result<T>(rocksdb::WriteBatch&, mailbox::Changes&)> stage,
    std::function<void(core::Result<T>)> done) {
  auto changes = std::make_shared<mailbox::Changes>();
  auto result = std::make_shared<std::optional<core::Result<T>>>();
  mailbox::Store* store = &store_;
  Post post = post_;
  writer_.submit(
      [stage = std::move(stage), changes, result](rocksdb::WriteBatch& batch) {
        core::Result<T> r = stage(batch, *changes);
        const bool failed = !r;
        result->emplace(std::move(r));
        // Throwing makes the writer roll back whatever this fill added.
        if (failed) throw StageFailed((*result)->status());
      },
      [store, changes, result, post, done = std::move(done)](core::Status s) {
        store->notify_committed(*changes, s);
        // The store's own refusal says more than the writer's status for a rolled-back fill.
        core::Result<T> out = *result && !**result ? std::move(**result)
                              : !s                 ? core::Result<T>(s)
                                                   : std::move(**result);
        post([done, out = std::move(out)]() mutable { done(std::move(out)); });
      });
}

namespace {

// Adapts a Status staging step to write<bool>.
template <typename F>
auto status_stage(F f) {
  return [f](rocksdb::WriteBatch& b, mailbox::Changes& c) -> core::Result<bool> {
    core::Status s = f(b, c);
    if (!s) return s;
    return true;
  };
}

template <typename Done>
auto status_done(Done done) {
  return [done](core::Result<bool> r) { done(r ? core::Status::ok() : r.status()); };
}

}  // namespace

void StoreImapBackend::create(std::string_view mailbox, Done done) {
  write<bool>(status_stage([this, name = std::string(mailbox)](auto& b, auto& c) {
                return store_.stage_create(b, c, user_, name);
              }),
              status_done(std::move(done)));
}

void StoreImapBackend::remove(std::string_view mailbox, Done done) {
  write<bool>(status_stage([this, name = std::string(mailbox)](auto& b, auto& c) {
                return store_.stage_delete(b, c, user_, name);
              }),
              status_done(std::move(done)));
}

void StoreImapBackend::rename(std::string_view from, std::string_view to, Done done) {
  write<bool>(status_stage([this, f = std::string(from), t = std::string(to)](auto& b, auto& c) {
                return store_.stage_rename(b, c, user_, f, t);
              }),
              status_done(std::move(done)));
}

void StoreImapBackend::subscribe(std::string_view mailbox, bool subscribed, Done done) {
  write<bool>(status_stage([this, name = std::string(mailbox), subscribed](auto& b, auto&) {
                return store_.stage_subscribe(b, user_, name, subscribed);
              }),
              status_done(std::move(done)));
}

void StoreImapBackend::provision(Done done) {
  write<bool>(status_stage([this](auto& b, auto& c) { return store_.stage_provision(b, c, user_); }),
              status_done(std::move(done)));
}

void StoreImapBackend::append(std::string_view mailbox, std::string bytes,
                              access::ImapFlags flags, int64_t internal_date_ms,
                              std::function<void(core::Result<std::pair<uint32_t, uint32_t>>)> done) {
  if (internal_date_ms < 0)
    internal_date_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  auto message = std::make_shared<std::string>(std::move(bytes));
  // Computed here, on the loop, so the writer thread only stages.
  auto imap = std::make_shared<mailbox::ImapData>(imap_data_of(*message));
  write<std::pair<uint32_t, uint32_t>>(
      [this, name = std::string(mailbox), message, imap, flags, internal_date_ms](
          rocksdb::WriteBatch& b, mailbox::Changes& c) -> core::Result<std::pair<uint32_t, uint32_t>> {
        mailbox::Append a;
        a.user = user_;
        a.mailbox = name;
        a.parts = {*message};
        a.flags = {flags.system, flags.keywords};
        a.internal_date_ms = internal_date_ms;
        a.imap = *imap;
        auto r = store_.stage_appends(b, {a}, c);
        if (!r) return r.status();
        return std::make_pair(r->front().uidvalidity, r->front().uid);
      },
      std::move(done));
}

void StoreImapBackend::set_flags(
    std::string_view mailbox, std::vector<uint32_t> uids, access::ImapStoreMode mode,
    access::ImapFlags flags,
    std::function<void(core::Result<std::vector<ImapMessageMeta>>)> done) {
  const mailbox::FlagMode m = mode == access::ImapStoreMode::kAdd      ? mailbox::FlagMode::kAdd
                              : mode == access::ImapStoreMode::kRemove ? mailbox::FlagMode::kRemove
                                                                       : mailbox::FlagMode::kReplace;
  write<std::vector<ImapMessageMeta>>(
      [this, name = std::string(mailbox), uids = std::move(uids), m, flags](
          rocksdb::WriteBatch& b, mailbox::Changes& c) -> core::Result<std::vector<ImapMessageMeta>> {
        auto r = store_.stage_set_flags(b, c, user_, name, uids, m, {flags.system, flags.keywords},
                                        std::nullopt);
        if (!r) return r.status();
        std::vector<ImapMessageMeta> out;
        for (const auto& ch : r->changed) {
          ImapMessageMeta meta;
          meta.uid = ch.uid;
          meta.flags = to_imap(ch.flags);
          meta.modseq = ch.modseq;
          out.push_back(std::move(meta));
        }
        return out;
      },
      std::move(done));
}

void StoreImapBackend::expunge(std::string_view mailbox, std::vector<uint32_t> uids, Done done) {
  write<bool>(
      [this, name = std::string(mailbox), uids = std::move(uids)](
          rocksdb::WriteBatch& b, mailbox::Changes& c) -> core::Result<bool> {
        auto r = store_.stage_expunge(b, c, user_, name, uids, true);
        if (!r) return r.status();
        return true;
      },
      status_done(std::move(done)));
}

void StoreImapBackend::copy(std::string_view from, std::vector<uint32_t> uids,
                            std::string_view to, bool move,
                            std::function<void(core::Result<Copied>)> done) {
  write<Copied>(
      [this, f = std::string(from), t = std::string(to), uids = std::move(uids), move](
          rocksdb::WriteBatch& b, mailbox::Changes& c) -> core::Result<Copied> {
        auto r = move ? store_.stage_move(b, c, user_, f, uids, t)
                      : store_.stage_copy(b, c, user_, f, uids, t);
        if (!r) return r.status();
        return Copied{r->uidvalidity, r->uids};
      },
      std::move(done));
}

}  // namespace mta
