#include "mta/mailbox/record.h"

#include <array>
#include <cassert>

namespace mta::mailbox {
namespace {

constexpr size_t kUserRecordSize = 1 + 4 + 4;
constexpr size_t kMailboxRecordSize = 1 + 4 + 4 + 4 + 8 + 4 + 8 + 1 + 4 + 4 + 1;
constexpr size_t kMessageFixedSize = 1 + 1 + 8 + 8 + 8 + 4 + 2 + 1;
constexpr uint8_t kNoselectBit = 1;

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void put_string32(std::string& out, std::string_view s) {
  assert(s.size() <= 0xffffffffu);
  put_be(out, s.size(), 4);
  out += s;
}

// Reads fixed-width fields in order; the first failure sticks and names the field.
class Reader {
 public:
  Reader(std::string_view in, const char* what) : in_(in), what_(what) {}

  // Unrolled for each width: listings decode 100,000 records at a time.
  template <int kBytes>
  uint64_t be(const char* field) {
    if (!need(kBytes, field)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < kBytes; ++i) v = (v << 8) | static_cast<unsigned char>(in_[pos_ + i]);
    pos_ += kBytes;
    return v;
  }
  uint8_t byte_at_most(uint8_t max, const char* field) {
    const auto b = static_cast<uint8_t>(be<1>(field));
    if (ok() && b > max) fail(field, "value " + std::to_string(b) + " out of range");
    return b;
  }
  std::string_view view(size_t n, const char* field) {
    if (!need(n, field)) return {};
    const std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view string32(const char* field) {
    const auto n = static_cast<size_t>(be<4>(field));
    return view(n, field);
  }
  // The record's version, one of 1 .. newest.
  uint8_t version(uint8_t newest) {
    const auto v = static_cast<uint8_t>(be<1>("version"));
    if (ok() && (v == 0 || v > newest)) fail("version", "unknown version " + std::to_string(v));
    return v;
  }
  core::Status finish() {
    if (ok() && pos_ != in_.size()) fail("end of record", "unexpected trailing bytes");
    if (ok()) return core::Status::ok();
    return core::Status::corrupt(std::string("mailbox: ") + what_ + " record: " + error_);
  }
  bool ok() const { return error_.empty(); }

 private:
  bool need(size_t n, const char* field) {
    if (!ok()) return false;
    if (n > in_.size() - pos_) {
      fail(field, "truncated");
      return false;
    }
    return true;
  }
  void fail(const char* field, const std::string& why) {
    if (ok()) error_ = std::string(field) + " at byte " + std::to_string(pos_) + ": " + why;
    pos_ = in_.size();
  }

  std::string_view in_;
  const char* what_;
  size_t pos_ = 0;
  std::string error_;
};

// The user part of a key: an optional type tag, the user, the NUL that ends it.
std::string user_part(std::string_view tag, std::string_view user) {
  std::string k;
  k.reserve(tag.size() + user.size() + 13);
  k += tag;
  k += user;
  k += '\0';
  return k;
}

}  // namespace

std::string_view special_use_attribute(SpecialUse use) {
  switch (use) {
    case SpecialUse::kNone:
      return "";
    case SpecialUse::kSent:
      return "\\Sent";
    case SpecialUse::kDrafts:
      return "\\Drafts";
    case SpecialUse::kTrash:
      return "\\Trash";
    case SpecialUse::kJunk:
      return "\\Junk";
    case SpecialUse::kArchive:
      return "\\Archive";
  }
  return "";
}

std::string flags_text(const Flags& flags) {
  static constexpr std::array<std::pair<uint8_t, std::string_view>, 5> kNames = {{
      {kSeen, "\\Seen"},
      {kAnswered, "\\Answered"},
      {kFlagged, "\\Flagged"},
      {kDeleted, "\\Deleted"},
      {kDraft, "\\Draft"},
  }};
  std::string out;
  auto add = [&](std::string_view s) {
    if (!out.empty()) out += ' ';
    out += s;
  };
  for (const auto& [bit, name] : kNames)
    if (flags.system & bit) add(name);
  for (const auto& k : flags.keywords) add(k);
  return out;
}

std::string encode(const UserRecord& r) {
  std::string out;
  out.reserve(kUserRecordSize);
  put_be(out, kUserRecordVersion, 1);
  put_be(out, r.next_mailbox_id, 4);
  put_be(out, r.next_uidvalidity, 4);
  return out;
}

std::string encode(const MailboxRecord& r) {
  std::string out;
  out.reserve(kMailboxRecordSize);
  put_be(out, kMailboxRecordVersion, 1);
  put_be(out, r.id, 4);
  put_be(out, r.uidvalidity, 4);
  put_be(out, r.uidnext, 4);
  put_be(out, r.highest_modseq, 8);
  put_be(out, r.messages, 4);
  put_be(out, r.bytes, 8);
  put_be(out, static_cast<uint8_t>(r.special_use), 1);
  put_be(out, r.unseen, 4);
  put_be(out, r.deleted, 4);
  put_be(out, r.noselect ? kNoselectBit : 0, 1);
  return out;
}

std::string encode(const MessageRecord& r) {
  assert(r.flags.keywords.size() <= kMaxKeywords);
  std::string out;
  size_t reserve = kMessageFixedSize + 16 * r.flags.keywords.size();
  if (r.summary) {
    const SearchSummary& m = *r.summary;
    reserve += 8 + 6 * 4 + m.from.size() + m.to.size() + m.cc.size() + m.bcc.size() +
               m.subject.size() + m.message_id.size();
  }
  out.reserve(reserve);
  put_be(out, kMessageRecordVersion, 1);
  put_be(out, r.flags.system, 1);
  put_be(out, static_cast<uint64_t>(r.internal_date_ms), 8);
  put_be(out, r.size, 8);
  put_be(out, r.modseq, 8);
  put_be(out, r.chunks, 4);
  put_be(out, r.flags.keywords.size(), 2);
  for (const auto& k : r.flags.keywords) {
    assert(!k.empty() && k.size() <= kMaxKeywordSize);
    put_be(out, k.size(), 1);
    out += k;
  }
  put_be(out, r.summary ? 1 : 0, 1);
  if (r.summary) {
    const SearchSummary& m = *r.summary;
    put_be(out, static_cast<uint64_t>(m.date_ms), 8);
    for (const std::string* f : {&m.from, &m.to, &m.cc, &m.bcc, &m.subject, &m.message_id})
      put_string32(out, *f);
  }
  return out;
}

std::string encode(const ImapStructure& r) {
  std::string out;
  out.reserve(1 + 12 + r.envelope.size() + r.body_structure.size() + r.body.size());
  put_be(out, kStructureRecordVersion, 1);
  put_string32(out, r.envelope);
  put_string32(out, r.body_structure);
  put_string32(out, r.body);
  return out;
}

std::string encode_subscription() {
  std::string out;
  put_be(out, kSubscriptionRecordVersion, 1);
  return out;
}

core::Result<UserRecord> decode_user(std::string_view bytes) {
  Reader in(bytes, "user");
  UserRecord r;
  in.version(kUserRecordVersion);
  r.next_mailbox_id = static_cast<uint32_t>(in.be<4>("next mailbox id"));
  r.next_uidvalidity = static_cast<uint32_t>(in.be<4>("next uidvalidity"));
  if (auto s = in.finish(); !s) return s;
  return r;
}

core::Result<MailboxRecord> decode_mailbox(std::string_view bytes) {
  Reader in(bytes, "mailbox");
  MailboxRecord r;
  const uint8_t version = in.version(kMailboxRecordVersion);
  r.id = static_cast<uint32_t>(in.be<4>("id"));
  r.uidvalidity = static_cast<uint32_t>(in.be<4>("uidvalidity"));
  r.uidnext = static_cast<uint32_t>(in.be<4>("uidnext"));
  r.highest_modseq = in.be<8>("highest modseq");
  r.messages = static_cast<uint32_t>(in.be<4>("messages"));
  r.bytes = in.be<8>("bytes");
  r.special_use = static_cast<SpecialUse>(
      in.byte_at_most(static_cast<uint8_t>(SpecialUse::kArchive), "special use"));
  if (version >= 2) {
    r.unseen = static_cast<uint32_t>(in.be<4>("unseen"));
    r.deleted = static_cast<uint32_t>(in.be<4>("deleted"));
    r.noselect = in.byte_at_most(kNoselectBit, "attributes") & kNoselectBit;
  } else {
    r.recount = true;
  }
  if (auto s = in.finish(); !s) return s;
  return r;
}

core::Status decode_message(std::string_view bytes, MessageView& r) {
  Reader in(bytes, "message");
  const uint8_t version = in.version(kMessageRecordVersion);
  r.system_flags = in.byte_at_most(kAllFlags, "flags");
  r.internal_date_ms = static_cast<int64_t>(in.be<8>("internal date"));
  r.size = in.be<8>("size");
  r.modseq = in.be<8>("modseq");
  r.chunks = static_cast<uint32_t>(in.be<4>("chunks"));
  const auto n = static_cast<size_t>(in.be<2>("keyword count"));
  r.keywords.clear();
  for (size_t i = 0; i < n && in.ok(); ++i) {
    const auto len = static_cast<size_t>(in.byte_at_most(kMaxKeywordSize, "keyword length"));
    r.keywords.push_back(in.view(len, "keyword"));
  }
  r.has_summary = version >= 2 && in.byte_at_most(1, "summary present") == 1;
  r.summary = {};
  if (r.has_summary) {
    r.summary.date_ms = static_cast<int64_t>(in.be<8>("date"));
    r.summary.from = in.string32("from");
    r.summary.to = in.string32("to");
    r.summary.cc = in.string32("cc");
    r.summary.bcc = in.string32("bcc");
    r.summary.subject = in.string32("subject");
    r.summary.message_id = in.string32("message-id");
  }
  return in.finish();
}

core::Result<MessageRecord> decode_message(std::string_view bytes) {
  MessageView v;
  if (auto s = decode_message(bytes, v); !s) return s;
  MessageRecord r;
  r.flags.system = v.system_flags;
  r.flags.keywords.assign(v.keywords.begin(), v.keywords.end());
  r.internal_date_ms = v.internal_date_ms;
  r.size = v.size;
  r.modseq = v.modseq;
  r.chunks = v.chunks;
  if (v.has_summary) {
    const auto& m = v.summary;
    r.summary = SearchSummary{
        std::string(m.from),    std::string(m.to),         std::string(m.cc), std::string(m.bcc),
        std::string(m.subject), std::string(m.message_id), m.date_ms};
  }
  return r;
}

core::Status decode_structure(std::string_view bytes, StructureView& r) {
  Reader in(bytes, "structure");
  in.version(kStructureRecordVersion);
  r.envelope = in.string32("envelope");
  r.body_structure = in.string32("body structure");
  r.body = in.string32("body");
  return in.finish();
}

core::Result<ImapStructure> decode_structure(std::string_view bytes) {
  StructureView v;
  if (auto s = decode_structure(bytes, v); !s) return s;
  return ImapStructure{std::string(v.envelope), std::string(v.body_structure), std::string(v.body)};
}

core::Status decode_subscription(std::string_view bytes) {
  Reader in(bytes, "subscription");
  in.version(kSubscriptionRecordVersion);
  return in.finish();
}

std::string user_key(std::string_view user) { return "u" + std::string(user); }

std::string mailbox_prefix(std::string_view user) { return user_part("m", user); }

std::string mailbox_key(std::string_view user, std::string_view name) {
  return mailbox_prefix(user) + std::string(name);
}

std::string message_prefix(std::string_view user, uint32_t mailbox_id) {
  std::string k = user_part("i", user);
  put_be(k, mailbox_id, 4);
  return k;
}

std::string message_key(std::string_view user, uint32_t mailbox_id, uint32_t uid) {
  std::string k = message_prefix(user, mailbox_id);
  put_be(k, uid, 4);
  return k;
}

std::string structure_prefix(std::string_view user, uint32_t mailbox_id) {
  std::string k = user_part("e", user);
  put_be(k, mailbox_id, 4);
  return k;
}

std::string structure_key(std::string_view user, uint32_t mailbox_id, uint32_t uid) {
  std::string k = structure_prefix(user, mailbox_id);
  put_be(k, uid, 4);
  return k;
}

std::string subscription_prefix(std::string_view user) { return user_part("s", user); }

std::string subscription_key(std::string_view user, std::string_view name) {
  return subscription_prefix(user) + std::string(name);
}

std::string blob_prefix(std::string_view user, uint32_t mailbox_id) {
  std::string k = user_part("", user);
  put_be(k, mailbox_id, 4);
  return k;
}

std::string blob_key(std::string_view user, uint32_t mailbox_id, uint32_t uid, uint32_t chunk) {
  std::string k = blob_prefix(user, mailbox_id);
  put_be(k, uid, 4);
  put_be(k, chunk, 4);
  return k;
}

std::string prefix_end(std::string_view prefix) {
  std::string k(prefix);
  while (!k.empty() && static_cast<unsigned char>(k.back()) == 0xff) k.pop_back();
  if (!k.empty()) k.back() = static_cast<char>(static_cast<unsigned char>(k.back()) + 1);
  return k;
}

std::optional<uint32_t> uid_of_message_key(std::string_view key) {
  if (key.size() < 10) return std::nullopt;
  uint32_t uid = 0;
  for (char c : key.substr(key.size() - 4)) uid = (uid << 8) | static_cast<unsigned char>(c);
  return uid;
}

}  // namespace mta::mailbox
