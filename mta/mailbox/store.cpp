#include "mta/mailbox/store.h"

#include <rocksdb/iterator.h>
#include <rocksdb/snapshot.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <set>

#include "core/address.h"

namespace mta::mailbox {
namespace {

using queue::Family;
using Kind = core::Status::Kind;

constexpr uint32_t kMaxU32 = std::numeric_limits<uint32_t>::max();

std::string user_id_of(std::string_view login) { return core::to_lower_ascii(login); }

core::Status check_user(std::string_view login, const std::string& user_id) {
  if (user_id.empty() || user_id.find('\0') != std::string::npos)
    return core::Status::invalid("mailbox: bad user \"" + std::string(login) + "\"");
  return core::Status::ok();
}

core::Status check_flags(const Flags& f) {
  if (f.system > kAllFlags) return core::Status::invalid("mailbox: unknown system flag bits");
  if (f.keywords.size() > kMaxKeywords) return core::Status::invalid("mailbox: too many keywords");
  for (const auto& k : f.keywords)
    if (k.empty() || k.size() > kMaxKeywordSize)
      return core::Status::invalid("mailbox: a keyword must be 1 to 255 bytes");
  return core::Status::ok();
}

core::Status no_mailbox(std::string_view user, std::string_view name) {
  return core::Status::not_found("mailbox: " + std::string(user) + " has no mailbox " +
                                 std::string(name));
}

std::optional<SpecialUse> standard_use(std::string_view name) {
  for (const auto& m : kStandardMailboxes)
    if (m.name == name) return m.use;
  return std::nullopt;
}

// IMAP keywords compare case-insensitively (RFC 9051 §2.3.2).
bool has_keyword(const std::vector<std::string>& keywords, std::string_view k) {
  return std::any_of(keywords.begin(), keywords.end(),
                     [&](const std::string& x) { return core::iequals(x, k); });
}

Flags apply_flags(FlagMode mode, const Flags& old, const Flags& given) {
  Flags out;
  switch (mode) {
    case FlagMode::kAdd:
      out = old;
      out.system |= given.system;
      for (const auto& k : given.keywords)
        if (!has_keyword(out.keywords, k)) out.keywords.push_back(k);
      break;
    case FlagMode::kRemove:
      out.system = old.system & static_cast<uint8_t>(~given.system);
      for (const auto& k : old.keywords)
        if (!has_keyword(given.keywords, k)) out.keywords.push_back(k);
      break;
    case FlagMode::kReplace:
      out.system = given.system;
      for (const auto& k : given.keywords)
        if (!has_keyword(out.keywords, k)) out.keywords.push_back(k);
      break;
  }
  return out;
}

bool same_flags(const Flags& a, const Flags& b) {
  if (a.system != b.system) return false;
  for (const auto& k : a.keywords)
    if (!has_keyword(b.keywords, k)) return false;
  for (const auto& k : b.keywords)
    if (!has_keyword(a.keywords, k)) return false;
  return true;
}

template <typename T>
void step(T& counter, T amount, bool add) {
  counter = add ? counter + amount : counter - std::min(counter, amount);
}

// Counts a message into (add) or out of a mailbox's counters.
void count(MailboxRecord& box, uint64_t size, uint8_t flags, bool add) {
  step<uint32_t>(box.messages, 1, add);
  step<uint64_t>(box.bytes, size, add);
  if (!(flags & kSeen)) step<uint32_t>(box.unseen, 1, add);
  if (flags & kDeleted) step<uint32_t>(box.deleted, 1, add);
}

void count_flags(MailboxRecord& box, uint8_t flags, bool add) {
  if (!(flags & kSeen)) step<uint32_t>(box.unseen, 1, add);
  if (flags & kDeleted) step<uint32_t>(box.deleted, 1, add);
}

// Adds to a batch from a savepoint on; rolls its part back unless released.
class SavePoint {
 public:
  explicit SavePoint(rocksdb::WriteBatch& batch) : batch_(batch) { batch_.SetSavePoint(); }
  ~SavePoint() {
    if (!released_) batch_.RollbackToSavePoint().PermitUncheckedError();
  }
  SavePoint(const SavePoint&) = delete;
  SavePoint& operator=(const SavePoint&) = delete;
  void release() {
    released_ = true;
    batch_.PopSavePoint().PermitUncheckedError();
  }

 private:
  rocksdb::WriteBatch& batch_;
  bool released_ = false;
};

core::Status batch_status(const rocksdb::Status& rs) {
  return rs.ok() ? core::Status::ok() : queue::to_status(rs, "mailbox: adding to a batch");
}

}  // namespace

// One consistent view of the store for one call.
class Store::View {
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

  // Every key and value under `prefix`, from `from` (default: the prefix) on, in key order
  // until `visit` returns false.
  core::Status scan(Family f, const std::string& prefix,
                    const std::function<bool(std::string_view, std::string_view)>& visit,
                    const std::string& from = {}) const {
    const std::string end = prefix_end(prefix);
    const rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro = ro_;
    if (!end.empty()) ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_.raw()->NewIterator(ro, db_.cf(f)));
    for (it->Seek(from.empty() ? prefix : from); it->Valid() && it->key().starts_with(prefix);
         it->Next())
      if (!visit(it->key().ToStringView(), it->value().ToStringView())) break;
    if (!it->status().ok()) return queue::to_status(it->status(), "mailbox: scanning " + db_.dir());
    return core::Status::ok();
  }

  core::Result<Mailbox> mailbox(const std::string& user_id, const std::string& name) const {
    auto v = get(Family::kMailboxIndex, mailbox_key(user_id, name));
    if (!v) return v.status();
    if (!*v) return no_mailbox(user_id, name);
    auto r = decode_mailbox(**v);
    if (!r) return r.status();
    if (auto s = recount(user_id, *r); !s) return s;
    return Mailbox{name, *r};
  }

  // kNotFound for a \Noselect name too.
  core::Result<Mailbox> selectable(const std::string& user_id, const std::string& name) const {
    auto box = mailbox(user_id, name);
    if (box && box->status.noselect)
      return core::Status::not_found("mailbox: " + user_id + "/" + name + " is \\Noselect");
    return box;
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
    for (auto& b : out)
      if (auto st = recount(user_id, b.status); !st) return st;
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
  // A version-1 record has no unseen and deleted counts: count them from the messages.
  core::Status recount(const std::string& user_id, MailboxRecord& box) const {
    if (!box.recount) return core::Status::ok();
    uint32_t unseen = 0;
    uint32_t deleted = 0;
    MessageView m;
    core::Status bad;
    auto s = scan(Family::kMailboxIndex, message_prefix(user_id, box.id),
                  [&](std::string_view, std::string_view value) {
                    bad = decode_message(value, m);
                    if (!bad) return false;
                    unseen += (m.system_flags & kSeen) ? 0 : 1;
                    deleted += (m.system_flags & kDeleted) ? 1 : 0;
                    return true;
                  });
    if (!s) return s;
    if (!bad) return bad;
    box.unseen = unseen;
    box.deleted = deleted;
    box.recount = false;
    return core::Status::ok();
  }

  const queue::Db& db_;
  rocksdb::ManagedSnapshot snapshot_;
  rocksdb::ReadOptions ro_;
};

// One user's part of one stage_*() call: works on copies of the user's counters, reads
// messages through what earlier calls in this batch staged, and changes the user's state
// only by commit(), once the whole call has succeeded.
class Store::Work {
 public:
  Work(const queue::Db& db, const View& view, rocksdb::WriteBatch& batch, std::string user_id,
       UserState& state)
      : user(state.user),
        mailboxes(state.mailboxes),
        db_(db),
        view_(view),
        batch_(batch),
        user_id_(std::move(user_id)),
        state_(state) {}

  UserRecord user;
  std::map<std::string, MailboxRecord> mailboxes;

  const std::string& user_id() const { return user_id_; }

  MailboxRecord* find(const std::string& name) {
    const auto it = mailboxes.find(name);
    return it == mailboxes.end() ? nullptr : &it->second;
  }
  // A mailbox that can hold messages, or kNotFound.
  core::Result<MailboxRecord*> selectable(const std::string& name) {
    MailboxRecord* box = find(name);
    if (box == nullptr || box->noselect) return no_mailbox(user_id_, name);
    return box;
  }
  bool has_inferiors(const std::string& name) const {
    const auto it = mailboxes.upper_bound(name);
    for (auto i = it; i != mailboxes.end(); ++i) {
      if (is_inferior(i->first, name)) return true;
      if (!i->first.starts_with(name)) break;
    }
    return false;
  }

  // The message as this batch leaves it; nullopt when it is not there (or its removal is
  // staged).
  core::Result<std::optional<MessageRecord>> message(uint32_t box_id, uint32_t uid) const {
    const MessageId id{box_id, uid};
    if (const auto p = pending_.find(id); p != pending_.end()) return p->second;
    if (const auto s = state_.staged.find(id); s != state_.staged.end()) return s->second;
    auto m = view_.message(user_id_, box_id, uid);
    if (!m && m.status().kind() == Kind::kNotFound) return std::optional<MessageRecord>();
    if (!m) return m.status();
    return std::optional<MessageRecord>(std::move(m).value());
  }

  core::Status put(Family f, const std::string& key, std::string_view value) {
    return batch_status(batch_.Put(db_.cf(f), key, rocksdb::Slice(value.data(), value.size())));
  }
  core::Status del(Family f, const std::string& key) {
    return batch_status(batch_.Delete(db_.cf(f), key));
  }

  // `existing`: the message is on disk (a change, which later stagings must see), not new.
  core::Status put_message(uint32_t box_id, uint32_t uid, const MessageRecord& m, bool existing) {
    if (existing) pending_[{box_id, uid}] = m;
    return put(Family::kMailboxIndex, message_key(user_id_, box_id, uid), encode(m));
  }

  core::Status remove_message(uint32_t box_id, uint32_t uid, const MessageRecord& m) {
    pending_[{box_id, uid}] = std::nullopt;
    auto st = del(Family::kMailboxIndex, message_key(user_id_, box_id, uid));
    if (st && m.summary) st = del(Family::kMailboxIndex, structure_key(user_id_, box_id, uid));
    for (uint32_t c = 0; st && c < m.chunks; ++c)
      st = del(Family::kMailboxBlobs, blob_key(user_id_, box_id, uid, c));
    return st;
  }

  // Every message of a mailbox, whatever its number: three range deletions.
  core::Status drop_messages(uint32_t box_id) {
    auto range = [&](Family f, const std::string& prefix) {
      return batch_status(batch_.DeleteRange(db_.cf(f), prefix, prefix_end(prefix)));
    };
    auto st = range(Family::kMailboxIndex, message_prefix(user_id_, box_id));
    if (st) st = range(Family::kMailboxIndex, structure_prefix(user_id_, box_id));
    if (st) st = range(Family::kMailboxBlobs, blob_prefix(user_id_, box_id));
    return st;
  }

  // A new, empty mailbox (in place of a \Noselect name) with the user's next id and
  // UIDVALIDITY.
  core::Status create_box(const std::string& name, SpecialUse use, int64_t now_ms) {
    const auto now_s = static_cast<uint32_t>(std::clamp<int64_t>(now_ms / 1000, 1, kMaxU32));
    const uint32_t uidvalidity = std::max(now_s, user.next_uidvalidity);
    if (user.next_mailbox_id == kMaxU32 || uidvalidity == kMaxU32)
      return core::Status::permanent("mailbox: " + user_id_ + " has no mailbox ids left");
    MailboxRecord box;
    box.id = user.next_mailbox_id++;
    box.uidvalidity = uidvalidity;
    user.next_uidvalidity = uidvalidity + 1;
    box.special_use = use;
    mailboxes[name] = box;
    user_changed_ = true;
    changed(name);
    return core::Status::ok();
  }

  // The standard mailboxes the user lacks, each subscribed.
  core::Status create_standard(int64_t now_ms) {
    for (const auto& standard : kStandardMailboxes) {
      const std::string name(standard.name);
      if (const MailboxRecord* b = find(name); b != nullptr && !b->noselect) continue;
      if (auto st = create_box(name, standard.use, now_ms); !st) return st;
      if (auto st =
              put(Family::kMailboxIndex, subscription_key(user_id_, name), encode_subscription());
          !st)
        return st;
    }
    return core::Status::ok();
  }

  core::Status provision(int64_t now_ms) {
    return find(std::string(kInbox)) != nullptr ? core::Status::ok() : create_standard(now_ms);
  }

  // Missing superiors of `name` become mailboxes (RFC 9051 §6.3.4).
  core::Status create_superiors(const std::string& name, int64_t now_ms) {
    for (const std::string& p : superiors(name))
      if (find(p) == nullptr)
        if (auto st = create_box(p, SpecialUse::kNone, now_ms); !st) return st;
    return core::Status::ok();
  }

  // \Noselect superiors of `name` that no longer have inferiors go.
  core::Status prune_superiors(const std::string& name) {
    const auto sup = superiors(name);
    for (auto p = sup.rbegin(); p != sup.rend(); ++p) {
      const MailboxRecord* b = find(*p);
      if (b == nullptr || !b->noselect || has_inferiors(*p)) break;
      if (auto st = remove_box(*p); !st) return st;
    }
    return core::Status::ok();
  }

  core::Status remove_box(const std::string& name) {
    mailboxes.erase(name);
    dirty_.erase(name);
    touched_.insert(name);
    return del(Family::kMailboxIndex, mailbox_key(user_id_, name));
  }

  // The mailbox record (and the user record) will be written by flush().
  void changed(const std::string& name) {
    dirty_.insert(name);
    touched_.insert(name);
  }

  core::Status flush() {
    for (const std::string& name : dirty_)
      if (auto st =
              put(Family::kMailboxIndex, mailbox_key(user_id_, name), encode(mailboxes.at(name)));
          !st)
        return st;
    dirty_.clear();
    if (!user_changed_) return core::Status::ok();
    user_changed_ = false;
    return put(Family::kMailboxIndex, user_key(user_id_), encode(user));
  }

  void commit(Changes& changes) {
    state_.user = user;
    state_.mailboxes = std::move(mailboxes);
    for (auto& [id, m] : pending_) state_.staged[id] = std::move(m);
    for (const std::string& name : touched_) changes.add(user_id_, name);
  }

 private:
  const queue::Db& db_;
  const View& view_;
  rocksdb::WriteBatch& batch_;
  const std::string user_id_;
  UserState& state_;
  std::map<MessageId, std::optional<MessageRecord>> pending_;
  std::set<std::string> dirty_;
  std::set<std::string> touched_;
  bool user_changed_ = false;
};

Store::Store(queue::Db& db, const core::Clock& clock) : db_(db), clock_(clock) {}

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
  const uint64_t seq = db_.raw()->GetLatestSequenceNumber();
  const auto it = users_.find(user_id);
  if (it != users_.end() && !it->second.stale) {
    // A write since the last staging means that the batch it went into was committed
    // (a failed one makes the state stale): what it staged is on disk now.
    UserState& s = it->second;
    if (s.staged_at != seq) {
      s.staged.clear();
      s.staged_at = seq;
    }
    return &s;
  }
  auto fresh = load(user_id);
  if (!fresh) return fresh.status();
  fresh->staged_at = seq;
  if (it != users_.end()) {
    // What was handed out before the failed batch is never handed out again. Mailboxes
    // are matched by id, which a rename keeps.
    const UserState& old = it->second;
    fresh->user.next_mailbox_id = std::max(fresh->user.next_mailbox_id, old.user.next_mailbox_id);
    fresh->user.next_uidvalidity =
        std::max(fresh->user.next_uidvalidity, old.user.next_uidvalidity);
    std::map<uint32_t, const MailboxRecord*> old_by_id;
    for (const auto& [name, box] : old.mailboxes)
      if (box.id != 0) old_by_id[box.id] = &box;
    for (auto& [name, box] : fresh->mailboxes) {
      const auto o = old_by_id.find(box.id);
      if (box.id == 0 || o == old_by_id.end()) continue;
      box.uidnext = std::max(box.uidnext, o->second->uidnext);
      box.highest_modseq = std::max(box.highest_modseq, o->second->highest_modseq);
    }
  }
  UserState& slot = users_[user_id];
  slot = std::move(fresh).value();
  return &slot;
}

core::Result<std::vector<Appended>> Store::stage_appends(rocksdb::WriteBatch& batch,
                                                         const std::vector<Append>& appends,
                                                         Changes& changes) {
  std::lock_guard lock(mu_);
  const View view(db_);
  SavePoint savepoint(batch);
  std::map<std::string, Work> works;  // one per user
  std::vector<Appended> out;
  out.reserve(appends.size());
  const int64_t now_ms = clock_.now_ms();
  for (const Append& a : appends) {
    std::string user_id = user_id_of(a.user);
    if (auto s = check_user(a.user, user_id); !s) return s;
    if (auto s = check_flags(a.flags); !s) return s;
    auto found = works.find(user_id);
    if (found == works.end()) {
      auto state = state_for(user_id);
      if (!state) return state.status();
      found = works.try_emplace(user_id, db_, view, batch, user_id, **state).first;
    }
    Work& w = found->second;
    if (auto s = w.provision(now_ms); !s) return s;
    const std::string name = canonical_name(a.mailbox);
    const MailboxRecord* existing = w.find(name);
    const auto standard = standard_use(name);
    if ((existing == nullptr || existing->noselect) && a.create_standard && standard)
      if (auto s = w.create_box(name, *standard, now_ms); !s) return s;
    auto selected = w.selectable(name);
    if (!selected) return no_mailbox(a.user, name);
    MailboxRecord& box = **selected;
    if (box.uidnext == kMaxU32 || box.messages == kMaxU32)
      return core::Status::permanent("mailbox: " + a.user + "/" + name + " has no UIDs left");

    MessageRecord m;
    m.flags = a.flags;
    m.internal_date_ms = a.internal_date_ms;
    const uint32_t uid = box.uidnext;
    std::string chunk;
    auto flush = [&]() {
      if (chunk.empty()) return core::Status::ok();
      auto st = w.put(Family::kMailboxBlobs, blob_key(w.user_id(), box.id, uid, m.chunks++), chunk);
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
    if (a.imap) {
      m.summary = a.imap->summary;
      if (auto st = w.put(Family::kMailboxIndex, structure_key(w.user_id(), box.id, uid),
                          encode(a.imap->structure));
          !st)
        return st;
    }
    box.uidnext = uid + 1;
    m.modseq = ++box.highest_modseq;
    count(box, m.size, m.flags.system, true);
    if (auto st = w.put_message(box.id, uid, m, false); !st) return st;
    w.changed(name);
    out.push_back(Appended{a.user, name, box.uidvalidity, uid, m.modseq, m.size});
  }
  for (auto& [id, w] : works)
    if (auto st = w.flush(); !st) return st;
  savepoint.release();
  for (auto& [id, w] : works) w.commit(changes);
  return out;
}

core::Result<FlagsStaged> Store::stage_set_flags(rocksdb::WriteBatch& batch, Changes& changes,
                                                 std::string_view user, std::string_view mailbox,
                                                 const std::vector<uint32_t>& uids, FlagMode mode,
                                                 const Flags& flags,
                                                 std::optional<uint64_t> unchanged_since) {
  if (auto s = check_flags(flags); !s) return s;
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  const std::string name = canonical_name(mailbox);
  auto selected = w.selectable(name);
  if (!selected) return selected.status();
  MailboxRecord& box = **selected;
  const uint64_t modseq = box.highest_modseq + 1;
  FlagsStaged out;
  for (uint32_t uid : uids) {
    auto m = w.message(box.id, uid);
    if (!m) return m.status();
    if (!*m) continue;
    MessageRecord& r = **m;
    if (unchanged_since && r.modseq > *unchanged_since) {
      out.modified.push_back(uid);
      continue;
    }
    Flags next = apply_flags(mode, r.flags, flags);
    if (same_flags(next, r.flags)) continue;
    if (auto s = check_flags(next); !s) return s;  // too many keywords after an add
    count_flags(box, r.flags.system, false);
    count_flags(box, next.system, true);
    r.flags = std::move(next);
    r.modseq = modseq;
    if (auto s = w.put_message(box.id, uid, r, true); !s) return s;
    out.changed.push_back(FlagChange{uid, r.flags, modseq});
  }
  if (!out.changed.empty()) {
    box.highest_modseq = modseq;
    w.changed(name);
  }
  if (auto s = w.flush(); !s) return s;
  savepoint.release();
  w.commit(changes);
  return out;
}

core::Result<std::vector<uint32_t>> Store::stage_expunge(rocksdb::WriteBatch& batch,
                                                         Changes& changes, std::string_view user,
                                                         std::string_view mailbox,
                                                         const std::vector<uint32_t>& uids,
                                                         bool only_deleted) {
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  const std::string name = canonical_name(mailbox);
  auto selected = w.selectable(name);
  if (!selected) return no_mailbox(user, name);
  MailboxRecord& box = **selected;
  std::vector<uint32_t> removed;
  for (uint32_t uid : uids) {
    auto m = w.message(box.id, uid);
    if (!m) return m.status();
    if (!*m || (only_deleted && !((*m)->flags.system & kDeleted))) continue;
    if (auto s = w.remove_message(box.id, uid, **m); !s) return s;
    count(box, (*m)->size, (*m)->flags.system, false);
    removed.push_back(uid);
  }
  if (!removed.empty()) {
    ++box.highest_modseq;
    w.changed(name);
  }
  if (auto s = w.flush(); !s) return s;
  savepoint.release();
  w.commit(changes);
  return removed;
}

core::Result<Copied> Store::copy(rocksdb::WriteBatch& batch, Changes& changes,
                                 std::string_view user, std::string_view from,
                                 const std::vector<uint32_t>& uids, std::string_view to,
                                 bool move) {
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  const std::string from_name = canonical_name(from);
  const std::string to_name = canonical_name(to);
  auto source = w.selectable(from_name);
  if (!source) return no_mailbox(user, from_name);
  auto target = w.selectable(to_name);
  if (!target) return no_mailbox(user, to_name);
  MailboxRecord& src = **source;
  MailboxRecord& dst = **target;
  Copied out;
  out.uidvalidity = dst.uidvalidity;
  const std::string what = "mailbox: " + std::string(user) + "/" + from_name + " UID ";
  std::set<uint32_t> done;  // a UID given twice is copied once
  for (uint32_t uid : uids) {
    if (!done.insert(uid).second) continue;
    auto found = w.message(src.id, uid);
    if (!found) return found.status();
    if (!*found) continue;
    const MessageRecord old = **found;
    if (dst.uidnext == kMaxU32 || dst.messages == kMaxU32)
      return core::Status::permanent("mailbox: " + std::string(user) + "/" + to_name +
                                     " has no UIDs left");
    const uint32_t new_uid = dst.uidnext++;
    for (uint32_t c = 0; c < old.chunks; ++c) {
      auto bytes = view.get(Family::kMailboxBlobs, blob_key(user_id, src.id, uid, c));
      if (!bytes) return bytes.status();
      if (!*bytes)
        return core::Status::corrupt(what + std::to_string(uid) + ": chunk " + std::to_string(c) +
                                     " missing");
      if (auto s = w.put(Family::kMailboxBlobs, blob_key(user_id, dst.id, new_uid, c), **bytes); !s)
        return s;
    }
    MessageRecord copy = old;
    if (copy.summary) {
      auto structure = view.get(Family::kMailboxIndex, structure_key(user_id, src.id, uid));
      if (!structure) return structure.status();
      if (*structure) {
        if (auto s =
                w.put(Family::kMailboxIndex, structure_key(user_id, dst.id, new_uid), **structure);
            !s)
          return s;
      } else {
        copy.summary.reset();  // keep "summary if and only if structure"
      }
    }
    copy.modseq = ++dst.highest_modseq;
    count(dst, copy.size, copy.flags.system, true);
    if (auto s = w.put_message(dst.id, new_uid, copy, false); !s) return s;
    if (move) {
      if (auto s = w.remove_message(src.id, uid, old); !s) return s;
      count(src, old.size, old.flags.system, false);
    }
    out.uids.emplace_back(uid, new_uid);
  }
  if (!out.uids.empty()) {
    if (move) ++src.highest_modseq;
    w.changed(to_name);
    if (move) w.changed(from_name);
  }
  if (auto s = w.flush(); !s) return s;
  savepoint.release();
  w.commit(changes);
  return out;
}

core::Result<Copied> Store::stage_copy(rocksdb::WriteBatch& batch, Changes& changes,
                                       std::string_view user, std::string_view from,
                                       const std::vector<uint32_t>& uids, std::string_view to) {
  return copy(batch, changes, user, from, uids, to, false);
}

core::Result<Copied> Store::stage_move(rocksdb::WriteBatch& batch, Changes& changes,
                                       std::string_view user, std::string_view from,
                                       const std::vector<uint32_t>& uids, std::string_view to) {
  return copy(batch, changes, user, from, uids, to, true);
}

core::Status Store::stage_provision(rocksdb::WriteBatch& batch, Changes& changes,
                                    std::string_view user) {
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  if (auto s = w.provision(clock_.now_ms()); !s) return s;
  if (auto s = w.flush(); !s) return s;
  savepoint.release();
  w.commit(changes);
  return core::Status::ok();
}

core::Status Store::stage_create(rocksdb::WriteBatch& batch, Changes& changes,
                                 std::string_view user, std::string_view name, SpecialUse use) {
  // RFC 9051 §6.3.4: a trailing separator only declares that inferiors will follow.
  if (name.size() > 1 && name.back() == kSeparator) name.remove_suffix(1);
  const std::string box_name = canonical_name(name);
  if (auto s = validate_name(box_name); !s) return s;
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  const int64_t now_ms = clock_.now_ms();
  if (auto s = w.provision(now_ms); !s) return s;
  if (const MailboxRecord* b = w.find(box_name); b != nullptr && !b->noselect)
    return core::Status::permanent("mailbox: " + box_name + " already exists");
  if (auto s = w.create_superiors(box_name, now_ms); !s) return s;
  if (auto s = w.create_box(box_name, use, now_ms); !s) return s;
  if (auto s = w.flush(); !s) return s;
  savepoint.release();
  w.commit(changes);
  return core::Status::ok();
}

core::Status Store::stage_delete(rocksdb::WriteBatch& batch, Changes& changes,
                                 std::string_view user, std::string_view name) {
  const std::string box_name = canonical_name(name);
  if (auto s = validate_name(box_name); !s) return s;
  if (box_name == kInbox) return core::Status::invalid("mailbox: INBOX cannot be deleted");
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  MailboxRecord* box = w.find(box_name);
  if (box == nullptr) return no_mailbox(user, box_name);
  if (w.has_inferiors(box_name)) {
    if (box->noselect)
      return core::Status::permanent("mailbox: " + box_name + " has inferiors; delete them first");
    if (auto s = w.drop_messages(box->id); !s) return s;
    MailboxRecord placeholder;
    placeholder.noselect = true;
    *box = placeholder;
    w.changed(box_name);
  } else {
    if (!box->noselect)
      if (auto s = w.drop_messages(box->id); !s) return s;
    if (auto s = w.remove_box(box_name); !s) return s;
    if (auto s = w.prune_superiors(box_name); !s) return s;
  }
  if (auto s = w.flush(); !s) return s;
  savepoint.release();
  w.commit(changes);
  return core::Status::ok();
}

core::Status Store::stage_rename(rocksdb::WriteBatch& batch, Changes& changes,
                                 std::string_view user, std::string_view from,
                                 std::string_view to) {
  const std::string old_name = canonical_name(from);
  const std::string new_name = canonical_name(to);
  if (auto s = validate_name(old_name); !s) return s;
  if (auto s = validate_name(new_name); !s) return s;
  // INBOX keeps its inferiors, so it may even move below itself.
  if (old_name != kInbox && is_inferior(new_name, old_name))
    return core::Status::invalid("mailbox: cannot rename " + old_name + " to a name below it");
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  const int64_t now_ms = clock_.now_ms();
  if (w.find(old_name) == nullptr) return no_mailbox(user, old_name);
  if (w.find(new_name) != nullptr)
    return core::Status::permanent("mailbox: " + new_name + " already exists");

  // (old, new) for the mailbox and, except for INBOX (RFC 9051 §6.3.6), its inferiors.
  std::vector<std::pair<std::string, std::string>> moves = {{old_name, new_name}};
  if (old_name != kInbox)
    for (const auto& [n, b] : w.mailboxes)
      if (is_inferior(n, old_name)) moves.emplace_back(n, new_name + n.substr(old_name.size()));
  for (const auto& [o, n] : moves) {
    if (auto s = validate_name(n); !s) return s;
    if (w.find(n) != nullptr) return core::Status::permanent("mailbox: " + n + " already exists");
  }
  if (auto s = w.create_superiors(new_name, now_ms); !s) return s;
  for (const auto& [o, n] : moves) {
    const MailboxRecord box = *w.find(o);
    if (auto s = w.remove_box(o); !s) return s;
    w.mailboxes[n] = box;
    w.changed(n);
  }
  if (old_name == kInbox) {
    if (auto s = w.create_box(std::string(kInbox), SpecialUse::kNone, now_ms); !s) return s;
  } else if (auto s = w.prune_superiors(old_name); !s) {
    return s;
  }
  if (auto s = w.flush(); !s) return s;
  savepoint.release();
  w.commit(changes);
  return core::Status::ok();
}

core::Status Store::stage_subscribe(rocksdb::WriteBatch& batch, std::string_view user,
                                    std::string_view name, bool subscribed) {
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  const std::string box_name = canonical_name(name);
  if (auto s = validate_name(box_name); !s) return s;
  const std::string key = subscription_key(user_id, box_name);
  const auto cf = db_.cf(Family::kMailboxIndex);
  const std::string value = encode_subscription();
  return batch_status(subscribed ? batch.Put(cf, key, value) : batch.Delete(cf, key));
}

core::Status Store::stage_imap_data(rocksdb::WriteBatch& batch, std::string_view user,
                                    std::string_view mailbox, uint32_t uid, const ImapData& data) {
  std::lock_guard lock(mu_);
  const std::string user_id = user_id_of(user);
  if (auto s = check_user(user, user_id); !s) return s;
  auto state = state_for(user_id);
  if (!state) return state.status();
  const View view(db_);
  SavePoint savepoint(batch);
  Work w(db_, view, batch, user_id, **state);
  const std::string name = canonical_name(mailbox);
  auto selected = w.selectable(name);
  if (!selected) return selected.status();
  const uint32_t box_id = (*selected)->id;
  auto m = w.message(box_id, uid);
  if (!m) return m.status();
  if (!*m || (*m)->summary) return core::Status::ok();
  (*m)->summary = data.summary;
  if (auto s =
          w.put(Family::kMailboxIndex, structure_key(user_id, box_id, uid), encode(data.structure));
      !s)
    return s;
  if (auto s = w.put_message(box_id, uid, **m, true); !s) return s;
  savepoint.release();
  Changes none;  // nothing a client sees
  w.commit(none);
  return core::Status::ok();
}

void Store::notify_committed(const Changes& changes, const core::Status& status) {
  if (!status) {
    forget_staged();
    return;
  }
  events_.notify(changes);
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

core::Result<std::vector<std::string>> Store::subscriptions(std::string_view user) const {
  const std::string prefix = subscription_prefix(user_id_of(user));
  std::vector<std::string> out;
  core::Status bad;
  auto s = View(db_).scan(Family::kMailboxIndex, prefix,
                          [&](std::string_view key, std::string_view value) {
                            bad = decode_subscription(value);
                            if (bad) out.emplace_back(key.substr(prefix.size()));
                            return bad.is_ok();
                          });
  if (!s) return s;
  if (!bad) return bad;
  return out;
}

core::Status Store::list_messages(std::string_view user, std::string_view name,
                                  const std::function<bool(const MessageEntry&)>& visit) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  auto box = view.selectable(user_id, canonical_name(name));
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

core::Result<MailboxRecord> Store::list_index(std::string_view user, std::string_view name,
                                              const IndexVisitor& visit, uint32_t first_uid) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  auto box = view.selectable(user_id, canonical_name(name));
  if (!box) return box.status();
  const uint32_t id = box->status.id;
  MessageView m;  // reused: its keyword vector keeps its capacity
  core::Status bad;
  auto s = view.scan(
      Family::kMailboxIndex, message_prefix(user_id, id),
      [&](std::string_view key, std::string_view value) {
        bad = decode_message(value, m);
        return bad.is_ok() && visit(*uid_of_message_key(key), m);
      },
      message_key(user_id, id, first_uid));
  if (!s) return s;
  if (!bad) return bad;
  return box->status;
}

core::Result<MessageEntry> Store::message(std::string_view user, std::string_view name,
                                          uint32_t uid) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  auto box = view.selectable(user_id, canonical_name(name));
  if (!box) return box.status();
  auto m = view.message(user_id, box->status.id, uid);
  if (!m) return m.status();
  return MessageEntry{uid, *m};
}

core::Result<std::optional<ImapStructure>> Store::imap_structure(std::string_view user,
                                                                 std::string_view name,
                                                                 uint32_t uid) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  auto box = view.selectable(user_id, canonical_name(name));
  if (!box) return box.status();
  auto m = view.message(user_id, box->status.id, uid);
  if (!m) return m.status();
  auto v = view.get(Family::kMailboxIndex, structure_key(user_id, box->status.id, uid));
  if (!v) return v.status();
  if (!*v) return std::optional<ImapStructure>();
  auto r = decode_structure(**v);
  if (!r) return r.status();
  return std::optional<ImapStructure>(std::move(r).value());
}

core::Status Store::list_structures(std::string_view user, std::string_view name,
                                    const StructureVisitor& visit, uint32_t first_uid) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  auto box = view.selectable(user_id, canonical_name(name));
  if (!box) return box.status();
  const uint32_t id = box->status.id;
  StructureView structure;
  core::Status bad;
  auto s = view.scan(
      Family::kMailboxIndex, structure_prefix(user_id, id),
      [&](std::string_view key, std::string_view value) {
        bad = decode_structure(value, structure);
        return bad.is_ok() && visit(*uid_of_message_key(key), structure);
      },
      structure_key(user_id, id, first_uid));
  return s ? bad : s;
}

core::Status Store::read_message(std::string_view user, std::string_view name, uint32_t uid,
                                 const std::function<bool(std::string_view)>& visit) const {
  const View view(db_);
  const std::string user_id = user_id_of(user);
  const std::string mailbox = canonical_name(name);
  auto box = view.selectable(user_id, mailbox);
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
