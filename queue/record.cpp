#include "queue/record.h"

#include <cassert>
#include <limits>

#include "queue/big_endian.h"

namespace queue {
namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// Zigzag, so that small negative times (never expected, but representable) stay short.
void put_signed(std::string& out, int64_t v) {
  put_varint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out += s;
}

void put_byte(std::string& out, uint8_t b) { out += static_cast<char>(b); }

// Reads fields in order; the first failure sticks and names the field and the byte offset
// where it starts.
class Reader {
 public:
  Reader(std::string_view in, size_t pos) : in_(in), pos_(pos) {}

  uint64_t varint(const char* field) {
    start_ = pos_;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!need(1, field)) return 0;
      const auto b = static_cast<unsigned char>(in_[pos_++]);
      if (shift == 63 && b > 1) return fail(field, "varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return fail(field, "varint overflows 64 bits");
  }

  int64_t signed_varint(const char* field) {
    const uint64_t z = varint(field);
    return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }

  uint32_t u32(const char* field) {
    const uint64_t v = varint(field);
    if (v > std::numeric_limits<uint32_t>::max()) return fail(field, "value out of range");
    return static_cast<uint32_t>(v);
  }

  std::string string(const char* field) {
    const uint64_t n = varint(field);
    if (!need(n, field)) return {};
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }

  // A byte that must be at most `max` (enums and booleans).
  uint8_t small(const char* field, uint8_t max) {
    start_ = pos_;
    if (!need(1, field)) return 0;
    const auto b = static_cast<uint8_t>(in_[pos_]);
    if (b > max) return fail(field, "value " + std::to_string(b) + " out of range");
    ++pos_;
    return b;
  }

  // Counts of repeated items: each takes at least one byte, so a count larger than what is
  // left is a lie, refused before anything is allocated for it.
  uint64_t count(const char* field) {
    const uint64_t n = varint(field);
    if (ok() && n > in_.size() - pos_) return fail(field, "count exceeds the record");
    return n;
  }

  void expect_end() {
    start_ = pos_;
    if (ok() && pos_ != in_.size()) fail("end of record", "unexpected trailing bytes");
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  bool need(uint64_t n, const char* field) {
    if (!ok()) return false;
    if (n > in_.size() - pos_) {
      fail(field, "truncated");
      return false;
    }
    return true;
  }

  uint8_t fail(const char* field, const std::string& why) {
    if (ok()) error_ = std::string(field) + " at byte " + std::to_string(start_) + ": " + why;
    pos_ = in_.size();
    return 0;
  }

  std::string_view in_;
  size_t pos_;
  size_t start_ = 0;
  std::string error_;
};

}  // namespace

std::string encode_record(const MessageRecord& r) {
  const core::Envelope& e = r.envelope;
  assert(r.status.size() == e.recipients.size());
  std::string out;
  out.reserve(256 + 96 * e.recipients.size());
  put_byte(out, kRecordVersion);
  put_string(out, r.id);
  put_string(out, e.sender.local);
  put_string(out, e.sender.domain);
  put_byte(out, static_cast<uint8_t>(e.body));
  put_byte(out, e.smtputf8 ? 1 : 0);
  put_byte(out, static_cast<uint8_t>(e.ret));
  put_string(out, e.envid);
  put_varint(out, e.declared_size);
  put_string(out, e.client_ip);
  put_string(out, e.client_helo);
  put_string(out, e.auth_user);
  put_string(out, e.listener);
  put_byte(out, e.tls ? 1 : 0);
  put_byte(out, e.quarantine ? 1 : 0);
  put_signed(out, e.received_at_ms);
  put_varint(out, e.recipients.size());
  for (size_t i = 0; i < e.recipients.size(); ++i) {
    const core::Recipient& rcpt = e.recipients[i];
    const RecipientStatus& st = r.status[i];
    put_string(out, rcpt.address.local);
    put_string(out, rcpt.address.domain);
    put_byte(out, rcpt.notify);
    put_string(out, rcpt.orcpt);
    put_byte(out, static_cast<uint8_t>(st.state));
    put_varint(out, st.attempts);
    put_signed(out, st.last_attempt_ms);
    put_string(out, st.last_reply);
    put_string(out, st.remote_mta);
  }
  put_varint(out, r.body_size);
  put_varint(out, r.body_chunks);
  put_signed(out, r.next_attempt_ms);
  put_byte(out, static_cast<uint8_t>(r.state));
  put_signed(out, r.created_ms);
  put_byte(out, r.delay_warned ? 1 : 0);
  return out;
}

core::Result<MessageRecord> decode_record(std::string_view bytes) {
  if (bytes.empty()) return core::Status::corrupt("queue record: empty");
  const auto version = static_cast<uint8_t>(bytes[0]);
  if (version < 1 || version > kRecordVersion)
    return core::Status::corrupt("queue record: unknown format version " + std::to_string(version) +
                                 " (this porter reads versions 1 to " +
                                 std::to_string(kRecordVersion) + ")");
  Reader in(bytes, 1);
  MessageRecord r;
  core::Envelope& e = r.envelope;
  r.id = in.string("id");
  e.sender.local = in.string("sender local part");
  e.sender.domain = in.string("sender domain");
  e.body = static_cast<core::BodyType>(in.small("body type", 2));
  e.smtputf8 = in.small("smtputf8", 1) != 0;
  e.ret = static_cast<core::DsnRet>(in.small("dsn ret", 2));
  e.envid = in.string("envid");
  e.declared_size = in.varint("declared size");
  e.client_ip = in.string("client ip");
  e.client_helo = in.string("client helo");
  e.auth_user = in.string("auth user");
  e.listener = in.string("listener");
  e.tls = in.small("tls", 1) != 0;
  if (version >= 2) e.quarantine = in.small("quarantine", 1) != 0;
  e.received_at_ms = in.signed_varint("received at");
  const uint64_t n = in.count("recipient count");
  for (uint64_t i = 0; i < n && in.ok(); ++i) {
    core::Recipient& rcpt = e.recipients.emplace_back();
    RecipientStatus& st = r.status.emplace_back();
    rcpt.address.local = in.string("recipient local part");
    rcpt.address.domain = in.string("recipient domain");
    rcpt.notify = in.small("recipient notify", 0x0f);
    rcpt.orcpt = in.string("recipient orcpt");
    st.state = static_cast<RecipientState>(in.small("recipient state", 2));
    st.attempts = in.u32("recipient attempts");
    st.last_attempt_ms = in.signed_varint("recipient last attempt");
    st.last_reply = in.string("recipient last reply");
    st.remote_mta = in.string("recipient remote mta");
  }
  r.body_size = in.varint("body size");
  r.body_chunks = in.u32("body chunks");
  r.next_attempt_ms = in.signed_varint("next attempt");
  r.state = static_cast<MessageState>(in.small("message state", 2));
  r.created_ms = in.signed_varint("created");
  r.delay_warned = in.small("delay warned", 1) != 0;
  in.expect_end();
  if (!in.ok()) return core::Status::corrupt("queue record: " + in.error());
  return r;
}

std::string body_key(std::string_view id, uint32_t chunk) {
  std::string k;
  k.reserve(id.size() + 4);
  k += id;
  put_fixed_be(k, chunk, 4);
  return k;
}

std::string schedule_key(int64_t due_ms, std::string_view id) {
  std::string k;
  k.reserve(8 + id.size());
  put_fixed_be(k, static_cast<uint64_t>(due_ms < 0 ? 0 : due_ms), 8);
  k += id;
  return k;
}

std::optional<BodyKey> parse_body_key(std::string_view key) {
  if (key.size() < 5) return std::nullopt;
  const size_t n = key.size() - 4;
  return BodyKey{key.substr(0, n), static_cast<uint32_t>(get_fixed_be(key.substr(n)))};
}

std::optional<ScheduleKey> parse_schedule_key(std::string_view key) {
  if (key.size() < 9) return std::nullopt;
  const uint64_t due = get_fixed_be(key.substr(0, 8));
  if (due > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return ScheduleKey{static_cast<int64_t>(due), key.substr(8)};
}

const char* recipient_state_name(RecipientState s) {
  switch (s) {
    case RecipientState::kPending: return "pending";
    case RecipientState::kDelivered: return "delivered";
    case RecipientState::kFailed: return "failed";
  }
  return "?";
}

const char* state_name(MessageState s) {
  switch (s) {
    case MessageState::kActive: return "active";
    case MessageState::kDeferred: return "deferred";
    case MessageState::kHeld: return "held";
  }
  return "?";
}

}  // namespace queue
