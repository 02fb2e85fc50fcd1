#include "mta/mailbox/store.h"

#include <rocksdb/iterator.h>
#include <rocksdb/snapshot.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>

#include "core/address.h"

namespace mta::mailbox {
namespace {

using queue::Family;

std::string user_id_of(std::string_view login) { return core::to_lower_ascii(login); }

// One consistent view of the store for one read-side call.
class View {
 public:
  explicit View(const queue::Db& db) : db_(db), snapshot_(db.raw()) {
    ro_.snapshot = snapshot_.snapshot();
  }

  // Nullopt when absent.
  core::Result<std::optional<std::string>> get(Family f, const std::string& key) const {
    std::string value;
    const rocksdb::Status rs = db_.raw()->Get(ro_, db_.cf(f), key, &value);
    if (rs.IsNotFound()) return std::optional<std::string>();
    if (!rs.ok()) return queue::to_status(rs, "mailbox: reading " + db_.dir());
    return std::optional<std::string>(std::move(value));
  }

  // Every key and value under `prefix` in key order until `visit` returns false.
  core::Status scan(Family f, const std::string& prefix,
                    const std::function<bool(std::string_view, std::string_view)>& visit) const {
    std::unique_ptr<rocksdb::Iterator> it(db_.raw()->NewIterator(ro_, db_.cf(f)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
      if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
    if (!it->status().ok()) return queue::to_status(it->status(), "mailbox: scanning " + db_.dir());
    return core::Status::ok();
  }

  core::Result<Mailbox> mailbox(const std::string& user_id, const std::string& name) const {
    auto v = get(Family::kMailboxIndex, mailbox_key(user_id, name));
    if (!v) return v.status();
    if (!*v) return core::Status::not_found("mailbox: " + user_id + " has no mailbox " + name);
    auto r = decode_mailbox(**v);
    if (!r) return r.status();
    return Mailbox{name, *r};
  }

  core::Result<std::vector<Mailbox>> mailboxes(const std::string& user_id) const {
    std::vector<Mailbox> out;
    core::Status bad;
    const std::string prefix = mailbox_prefix(user_id);
    auto s = scan(Family::kMailboxIndex, prefix, [&](std::string_view key, std::string_view value) {
      auto r = decode_mailbox(value);
      if (!r) bad = r.status();
      if (r) out.push_back({std::string(key.substr(prefix.size())), *r});
      return r.is_ok();
    });
    if (!s) return s;
    if (!bad) return bad;
    return out;
  }

  core::Result<MessageRecord> message(const std::string& user_id, uint32_t mailbox_id,
                                      uint32_t uid) const {
    auto v = get(Family::kMailboxIndex, message_key(user_id, mailbox_id, uid));
    if (!v) return v.status();
    if (!*v) return core::Status::not_found("mailbox: no message with UID " + std::to_string(uid));
    return decode_message(**v);
  }

 private:
  const queue::Db& db_;
  rocksdb::ManagedSnapshot snapshot_;
  rocksdb::ReadOptions ro_;
};

core::Status put(rocksdb::WriteBatch& b, const queue::Db& db, Family f, const std::string& key,
                 std::string_view value) {
  const rocksdb::Status rs = b.Put(db.cf(f), key, rocksdb::Slice(value.data(), value.size()));
  return rs.ok() ? core::Status::ok() : queue::to_status(rs, "mailbox: adding to a batch");
}

core::Status check_flags(const Flags& f) {
  if (f.system > kAllFlags) return core::Status::invalid("mailbox: unknown system flag bits");
  if (f.keywords.size() > kMaxKeywords) return core::Status::invalid("mailbox: too many keywords");
  for (const auto& k : f.keywords)
    if (k.empty() || k.size() > kMaxKeywordSize)
      return core::Status::invalid("mailbox: a keyword must be 1 to 255 bytes");
  return core::Status::ok();
}

}  // namespace

Store::Store(queue::Db& db, const core::Clock& clock) : db_(db), clock_(clock) {}

std::string Store::canonical_name(std::string_view name) {
  return core::iequals(name, kInbox) ? std::string(kInbox) : std::string(name);
}

core::Result<Store::UserState> Store::load(const std::string& user_id) const {
  const View view(db_);
  UserState s;
  auto u = view.get(Family::kMailboxIndex, user_key(user_id));
  if (!u) return u.status();
  if (*u) {
    auto r = decode_user(**u);
    if (!r) return r.status();
    s.user = *r;
  }
  auto boxes = view.mailboxes(user_id);
  if (!boxes) return boxes.status();
  for (auto& b : *boxes) s.mailboxes.emplace(std::move(b.name), b.status);
  return s;
}

core::Result<Store::UserState*> Store::state_for(const std::string& user_id) {
  const auto it = users_.find(user_id);
  if (it != users_.end() && !it->second.stale) return &it->second;
  auto fresh = load(user_id);
  if (!fresh) return fresh.status();
  if (it != users_.end()) {
    // What was handed out before the failed batch is never handed out again.
    const UserState& old = it->second;
    fresh->user.next_mailbox_id = std::max(fresh->user.next_mailbox_id, old.user.next_mailbox_id);
    fresh->user.next_uidvalidity =
        std::max(fresh->user.next_uidvalidity, old.user.next_uidvalidity);
    for (auto& [name, box] : fresh->mailboxes) {
      const auto o = old.mailboxes.find(name);
      if (o == old.mailboxes.end() || o->second.id != box.id) continue;
      box.uidnext = std::max(box.uidnext, o->second.uidnext);
      box.highest_modseq = std::max(box.highest_modseq, o->second.highest_modseq);
    }
  }
  UserState& slot = users_[user_id];
  slot = std::move(fresh).value();
  return &slot;
}

core::Status Store::create_standard(rocksdb::WriteBatch& batch, const std::string& user_id,
                                    UserState& s) {
  const auto now_s = static_cast<uint32_t>(std::clamp<int64_t>(
      clock_.now_ms() / 1000, 1, std::numeric_limits<uint32_t>::max() - kStandardMailboxes.size()));
  for (const auto& standard : kStandardMailboxes) {
    const std::string name(standard.name);
    if (s.mailboxes.count(name) != 0) continue;
    MailboxRecord box;
    box.id = s.user.next_mailbox_id++;
    box.uidvalidity = std::max(now_s, s.user.next_uidvalidity);
    s.user.next_uidvalidity = box.uidvalidity + 1;
    box.special_use = standard.use;
    s.mailboxes.emplace(name, box);
    if (auto st = put(batch, db_, Family::kMailboxIndex, mailbox_key(user_id, name), encode(box));
        !st)
      return st;
  }
  return put(batch, db_, Family::kMailboxIndex, user_key(user_id), encode(s.user));
}

core::Status Store::stage_one(rocksdb::WriteBatch& batch, const Append& a, Appended& out) {
  const std::string user_id = user_id_of(a.user);
  if (user_id.empty() || user_id.find('\0') != std::string::npos)
    return core::Status::invalid("mailbox: bad user \"" + a.user + "\"");
  if (auto s = check_flags(a.flags); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  UserState& s = **state;
  const std::string name = canonical_name(a.mailbox);
  if (s.mailboxes.count(name) == 0) {
    const bool standard = std::any_of(kStandardMailboxes.begin(), kStandardMailboxes.end(),
                                      [&](const StandardMailbox& m) { return m.name == name; });
    if (!standard) return core::Status::not_found("mailbox: " + a.user + " has no mailbox " + name);
    if (auto st = create_standard(batch, user_id, s); !st) return st;
  }
  MailboxRecord& box = s.mailboxes.at(name);
  if (box.uidnext == std::numeric_limits<uint32_t>::max() ||
      box.messages == std::numeric_limits<uint32_t>::max())
    return core::Status::permanent("mailbox: " + a.user + "/" + name + " has no UIDs left");

  MessageRecord m;
  m.flags = a.flags;
  m.internal_date_ms = a.internal_date_ms;
  const uint32_t uid = box.uidnext;
  std::string chunk;
  auto flush = [&]() {
    if (chunk.empty()) return core::Status::ok();
    auto st =
        put(batch, db_, Family::kMailboxBlobs, blob_key(user_id, box.id, uid, m.chunks++), chunk);
    chunk.clear();
    return st;
  };
  for (std::string_view part : a.parts) {
    m.size += part.size();
    while (!part.empty()) {
      const size_t n = std::min(part.size(), kChunkSize - chunk.size());
      chunk.append(part.substr(0, n));
      part.remove_prefix(n);
      if (chunk.size() == kChunkSize)
        if (auto st = flush(); !st) return st;
    }
  }
  if (auto st = flush(); !st) return st;

  box.uidnext = uid + 1;
  m.modseq = ++box.highest_modseq;
  ++box.messages;
  box.bytes += m.size;
  if (auto st =
          put(batch, db_, Family::kMailboxIndex, message_key(user_id, box.id, uid), encode(m));
      !st)
    return st;
  if (auto st = put(batch, db_, Family::kMailboxIndex, mailbox_key(user_id, name), encode(box));
      !st)
    return st;
  out = Appended{a.user, name, box.uidvalidity, uid, m.modseq, m.size};
  return core::Status::ok();
}

core::Result<std::vector<Appended>> Store::stage_appends(rocksdb::WriteBatch& batch,
                                                         const std::vector<Append>& appends) {
  std::lock_guard lock(mu_);
  // Undo for the counters of every user touched, taken before the first change.
  std::map<std::string, std::optional<UserState>> before;
  for (const Append& a : appends) {
    const std::string id = user_id_of(a.user);
    if (before.count(id) != 0) continue;
    const auto it = users_.find(id);
    before[id] = it == users_.end() ? std::nullopt : std::optional<UserState>(it->second);
  }
  batch.SetSavePoint();
  std::vector<Appended> out(appends.size());
  for (size_t i = 0; i < appends.size(); ++i) {
    if (auto s = stage_one(batch, appends[i], out[i]); !s) {
      batch.RollbackToSavePoint().PermitUncheckedError();
      for (auto& [id, state] : before) {
        if (state)
          users_[id] = std::move(*state);
        else
          users_.erase(id);
      }
      return s;
    }
  }
  batch.PopSavePoint().PermitUncheckedError();
  return out;
}

core::Status Store::stage_expunge(rocksdb::WriteBatch& batch, std::string_view user,
                                  std::string_view mailbox, const std::vector<uint32_t>& uids) {
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  auto state = state_for(user_id);
  if (!state) return state.status();
  UserState& s = **state;
  const std::string name = canonical_name(mailbox);
  const auto box_it = s.mailboxes.find(name);
  if (box_it == s.mailboxes.end())
    return core::Status::not_found("mailbox: " + std::string(user) + " has no mailbox " + name);
  MailboxRecord box = box_it->second;
  const View view(db_);
  // Removals staged before and committed since need no guard any more.
  std::vector<std::pair<uint32_t, uint32_t>> committed;
  for (const auto& [id, uid] : s.expunging) {
    auto m = view.message(user_id, id, uid);
    if (!m && m.status().kind() == core::Status::Kind::kNotFound) committed.emplace_back(id, uid);
  }
  for (const auto& e : committed) s.expunging.erase(e);

  std::set<std::pair<uint32_t, uint32_t>> expunging = s.expunging;
  batch.SetSavePoint();
  core::Status st;
  bool changed = false;
  for (uint32_t uid : uids) {
    if (!expunging.insert({box.id, uid}).second) continue;
    auto m = view.message(user_id, box.id, uid);
    if (!m && m.status().kind() == core::Status::Kind::kNotFound) continue;
    if (!m) {
      st = m.status();
      break;
    }
    rocksdb::Status rs =
        batch.Delete(db_.cf(Family::kMailboxIndex), message_key(user_id, box.id, uid));
    for (uint32_t c = 0; rs.ok() && c < m->chunks; ++c)
      rs = batch.Delete(db_.cf(Family::kMailboxBlobs), blob_key(user_id, box.id, uid, c));
    if (!rs.ok()) {
      st = queue::to_status(rs, "mailbox: adding to a batch");
      break;
    }
    box.messages -= std::min<uint32_t>(box.messages, 1);
    box.bytes -= std::min(box.bytes, m->size);
    changed = true;
  }
  if (st && changed) {
    ++box.highest_modseq;
    st = put(batch, db_, Family::kMailboxIndex, mailbox_key(user_id, name), encode(box));
  }
  if (!st) {
    batch.RollbackToSavePoint().PermitUncheckedError();
    return st;
  }
  batch.PopSavePoint().PermitUncheckedError();
  box_it->second = box;
  s.expunging = std::move(expunging);
  return core::Status::ok();
}

void Store::forget_staged() {
  std::lock_guard lock(mu_);
  for (auto& [id, state] : users_) state.stale = true;
}

core::Result<std::vector<Mailbox>> Store::mailboxes(std::string_view user) const {
  auto boxes = View(db_).mailboxes(user_id_of(user));
  if (!boxes) return boxes;
  std::stable_sort(boxes->begin(), boxes->end(), [](const Mailbox& a, const Mailbox& b) {
    return (a.name == kInbox) > (b.name == kInbox);
  });
  return boxes;
}

core::Result<Mailbox> Store::mailbox(std::string_view user, std::string_view name) const {
  return View(db_).mailbox(user_id_of(user), canonical_name(name));
}

core::Status Store::list_messages(std::string_view user, std::string_view name,
                                  const std::function<bool(const MessageEntry&)>& visit) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  auto box = view.mailbox(user_id, canonical_name(name));
  if (!box) return box.status();
  core::Status bad;
  auto s = view.scan(Family::kMailboxIndex, message_prefix(user_id, box->status.id),
                     [&](std::string_view key, std::string_view value) {
                       auto r = decode_message(value);
                       const auto uid = uid_of_message_key(key);
                       if (!r) bad = r.status();
                       return r.is_ok() && uid && visit(MessageEntry{*uid, *r});
                     });
  return s ? bad : s;
}

core::Result<MessageEntry> Store::message(std::string_view user, std::string_view name,
                                          uint32_t uid) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  auto box = view.mailbox(user_id, canonical_name(name));
  if (!box) return box.status();
  auto m = view.message(user_id, box->status.id, uid);
  if (!m) return m.status();
  return MessageEntry{uid, *m};
}

core::Status Store::read_message(std::string_view user, std::string_view name, uint32_t uid,
                                 const std::function<bool(std::string_view)>& visit) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  const std::string mailbox = canonical_name(name);
  auto box = view.mailbox(user_id, mailbox);
  if (!box) return box.status();
  auto m = view.message(user_id, box->status.id, uid);
  if (!m) return m.status();
  const std::string what =
      "mailbox: " + std::string(user) + "/" + mailbox + " UID " + std::to_string(uid);
  uint64_t size = 0;
  for (uint32_t c = 0; c < m->chunks; ++c) {
    auto chunk = view.get(Family::kMailboxBlobs, blob_key(user_id, box->status.id, uid, c));
    if (!chunk) return chunk.status();
    if (!*chunk) return core::Status::corrupt(what + ": chunk " + std::to_string(c) + " missing");
    size += (*chunk)->size();
    if (!visit(**chunk)) return core::Status::ok();
  }
  if (size != m->size)
    return core::Status::corrupt(what + ": " + std::to_string(size) +
                                 " bytes stored, record says " + std::to_string(m->size));
  return core::Status::ok();
}

core::Result<uint64_t> Store::bytes_used(std::string_view user) const {
  auto boxes = View(db_).mailboxes(user_id_of(user));
  if (!boxes) return boxes.status();
  uint64_t total = 0;
  for (const auto& b : *boxes) total += b.status.bytes;
  return total;
}

}  // namespace mta::mailbox
