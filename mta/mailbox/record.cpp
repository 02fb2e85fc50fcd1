#include "mta/mailbox/record.h"

#include <array>
#include <cassert>

namespace mta::mailbox {
namespace {

constexpr size_t kUserRecordSize = 1 + 4 + 4;
constexpr size_t kMailboxRecordSize = 1 + 4 + 4 + 4 + 8 + 4 + 8 + 1;
constexpr size_t kMessageFixedSize = 1 + 1 + 8 + 8 + 8 + 4 + 2;

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// Reads fixed-width fields in order; the first failure sticks and names the field.
class Reader {
 public:
  Reader(std::string_view in, const char* what) : in_(in), what_(what) {}

  uint64_t be(int bytes, const char* field) {
    if (!need(static_cast<size_t>(bytes), field)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in_[pos_++]);
    return v;
  }
  uint8_t byte_at_most(uint8_t max, const char* field) {
    const auto b = static_cast<uint8_t>(be(1, field));
    if (ok() && b > max) fail(field, "value " + std::to_string(b) + " out of range");
    return b;
  }
  std::string bytes(size_t n, const char* field) {
    if (!need(n, field)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  void version() {
    const auto v = static_cast<uint8_t>(be(1, "version"));
    if (ok() && v != kRecordVersion) fail("version", "unknown version " + std::to_string(v));
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
  put_be(out, kRecordVersion, 1);
  put_be(out, r.next_mailbox_id, 4);
  put_be(out, r.next_uidvalidity, 4);
  return out;
}

std::string encode(const MailboxRecord& r) {
  std::string out;
  out.reserve(kMailboxRecordSize);
  put_be(out, kRecordVersion, 1);
  put_be(out, r.id, 4);
  put_be(out, r.uidvalidity, 4);
  put_be(out, r.uidnext, 4);
  put_be(out, r.highest_modseq, 8);
  put_be(out, r.messages, 4);
  put_be(out, r.bytes, 8);
  put_be(out, static_cast<uint8_t>(r.special_use), 1);
  return out;
}

std::string encode(const MessageRecord& r) {
  assert(r.flags.keywords.size() <= kMaxKeywords);
  std::string out;
  out.reserve(kMessageFixedSize + 16 * r.flags.keywords.size());
  put_be(out, kRecordVersion, 1);
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
  return out;
}

core::Result<UserRecord> decode_user(std::string_view bytes) {
  Reader in(bytes, "user");
  UserRecord r;
  in.version();
  r.next_mailbox_id = static_cast<uint32_t>(in.be(4, "next mailbox id"));
  r.next_uidvalidity = static_cast<uint32_t>(in.be(4, "next uidvalidity"));
  if (auto s = in.finish(); !s) return s;
  return r;
}

core::Result<MailboxRecord> decode_mailbox(std::string_view bytes) {
  Reader in(bytes, "mailbox");
  MailboxRecord r;
  in.version();
  r.id = static_cast<uint32_t>(in.be(4, "id"));
  r.uidvalidity = static_cast<uint32_t>(in.be(4, "uidvalidity"));
  r.uidnext = static_cast<uint32_t>(in.be(4, "uidnext"));
  r.highest_modseq = in.be(8, "highest modseq");
  r.messages = static_cast<uint32_t>(in.be(4, "messages"));
  r.bytes = in.be(8, "bytes");
  r.special_use = static_cast<SpecialUse>(
      in.byte_at_most(static_cast<uint8_t>(SpecialUse::kArchive), "special use"));
  if (auto s = in.finish(); !s) return s;
  return r;
}

core::Result<MessageRecord> decode_message(std::string_view bytes) {
  Reader in(bytes, "message");
  MessageRecord r;
  in.version();
  r.flags.system = in.byte_at_most(kAllFlags, "flags");
  r.internal_date_ms = static_cast<int64_t>(in.be(8, "internal date"));
  r.size = in.be(8, "size");
  r.modseq = in.be(8, "modseq");
  r.chunks = static_cast<uint32_t>(in.be(4, "chunks"));
  const auto n = static_cast<size_t>(in.be(2, "keyword count"));
  for (size_t i = 0; i < n && in.ok(); ++i) {
    const auto len = static_cast<size_t>(in.byte_at_most(kMaxKeywordSize, "keyword length"));
    r.flags.keywords.push_back(in.bytes(len, "keyword"));
  }
  if (auto s = in.finish(); !s) return s;
  return r;
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

std::string blob_key(std::string_view user, uint32_t mailbox_id, uint32_t uid, uint32_t chunk) {
  std::string k = user_part("", user);
  put_be(k, mailbox_id, 4);
  put_be(k, uid, 4);
  put_be(k, chunk, 4);
  return k;
}

std::optional<uint32_t> uid_of_message_key(std::string_view key) {
  if (key.size() < 10) return std::nullopt;
  uint32_t uid = 0;
  for (char c : key.substr(key.size() - 4)) uid = (uid << 8) | static_cast<unsigned char>(c);
  return uid;
}

}  // namespace mta::mailbox
