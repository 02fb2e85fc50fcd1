#include "dns/message.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace dns {
namespace {

constexpr uint16_t kClassIn = 1;
constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxNameLength = 255;  // RFC 1035 §2.3.4, wire form
constexpr int kMaxCnameLinks = 8;

enum Rcode : uint8_t { kNoError = 0, kServFail = 2, kNxDomain = 3 };

struct Record {
  std::string name;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  size_t rdata = 0;  // offset of RDATA in the message
  uint16_t rdlength = 0;
};

struct Message {
  uint8_t rcode = 0;
  bool truncated = false;
  std::vector<Record> answer;
  std::vector<Record> authority;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> msg, size_t pos = 0) : msg_(msg), pos_(pos) {}

  size_t pos() const { return pos_; }
  bool u16(uint16_t& v) {
    if (pos_ + 2 > msg_.size()) return false;
    v = static_cast<uint16_t>(msg_[pos_] << 8 | msg_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    uint16_t hi, lo;
    if (!u16(hi) || !u16(lo)) return false;
    v = uint32_t{hi} << 16 | lo;
    return true;
  }
  bool skip(size_t n) {
    if (pos_ + n > msg_.size()) return false;
    pos_ += n;
    return true;
  }

  // A possibly compressed name; the reader ends up after the name's in-place bytes.
  bool name(std::string& out) {
    out.clear();
    size_t p = pos_;
    size_t wire_length = 1;
    bool jumped = false;
    for (;;) {
      if (p >= msg_.size()) return false;
      const uint8_t len = msg_[p];
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= msg_.size()) return false;
        const size_t target = size_t{len & 0x3Fu} << 8 | msg_[p + 1];
        if (target >= p) return false;
        if (!jumped) pos_ = p + 2;
        jumped = true;
        p = target;
        continue;
      }
      if (len & 0xC0) return false;  // extended label types (RFC 6891 §5) are obsolete
      if (len == 0) break;
      if (p + 1 + len > msg_.size()) return false;
      wire_length += 1 + len;
      if (wire_length > kMaxNameLength) return false;
      if (!out.empty()) out += '.';
      append_label(msg_.subspan(p + 1, len), out);
      p += 1 + len;
    }
    if (!jumped) pos_ = p + 1;
    if (out.empty()) out = ".";
    return true;
  }

  bool record(Record& r) {
    if (!name(r.name) || !u16(r.type) || !u16(r.klass) || !u32(r.ttl) || !u16(r.rdlength)) {
      return false;
    }
    // RFC 2181 §8: a TTL with the top bit set is treated as zero.
    if (r.ttl > 0x7FFFFFFF) r.ttl = 0;
    r.rdata = pos_;
    return skip(r.rdlength);
  }

 private:
  static void append_label(std::span<const uint8_t> label, std::string& out) {
    for (uint8_t c : label) {
      if (c == '.' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x21 || c > 0x7E) {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\%03u", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
  }

  std::span<const uint8_t> msg_;
  size_t pos_;
};

std::optional<Message> parse(std::span<const uint8_t> msg) {
  Reader r(msg);
  uint16_t id, flags, qdcount, ancount, nscount, arcount;
  if (!r.u16(id) || !r.u16(flags) || !r.u16(qdcount) || !r.u16(ancount) || !r.u16(nscount) ||
      !r.u16(arcount)) {
    return std::nullopt;
  }
  if (!(flags & 0x8000)) return std::nullopt;  // QR: a query, not a reply
  Message m;
  m.truncated = flags & 0x0200;
  m.rcode = flags & 0x000F;
  std::string qname;
  for (uint16_t i = 0; i < qdcount; ++i) {
    if (!r.name(qname) || !r.skip(4)) return std::nullopt;
  }
  Record rec;
  for (uint16_t i = 0; i < ancount; ++i) {
    if (!r.record(rec)) return std::nullopt;
    m.answer.push_back(rec);
  }
  // The authority section only matters for the SOA of a negative answer; a reply cut
  // short there still has a usable answer section.
  for (uint16_t i = 0; i < nscount; ++i) {
    if (!r.record(rec)) break;
    m.authority.push_back(rec);
  }
  return m;
}

// RFC 2308 §5: the negative TTL is the smaller of the SOA's own TTL and its MINIMUM field.
uint32_t negative_ttl(std::span<const uint8_t> msg, const Message& m) {
  for (const Record& rec : m.authority) {
    if (rec.type != static_cast<uint16_t>(RrType::kSoa) || rec.klass != kClassIn) continue;
    Reader r(msg, rec.rdata);
    std::string mname, rname;
    uint32_t serial, refresh, retry, expire, minimum;
    if (r.name(mname) && r.name(rname) && r.u32(serial) && r.u32(refresh) && r.u32(retry) &&
        r.u32(expire) && r.u32(minimum) && r.pos() <= rec.rdata + rec.rdlength) {
      return std::min(rec.ttl, minimum);
    }
  }
  return kDefaultNegativeTtl;
}

// Decodes one RR's RDATA; false when it is malformed.
template <typename T>
using RdataDecoder = bool (*)(std::span<const uint8_t> msg, const Record& rec, T& out);

bool decode_mx(std::span<const uint8_t> msg, const Record& rec, MxRecord& out) {
  Reader r(msg, rec.rdata);
  return r.u16(out.preference) && r.name(out.host) && r.pos() <= rec.rdata + rec.rdlength;
}

template <int kFamily, size_t kSize>
bool decode_address(std::span<const uint8_t> msg, const Record& rec, std::string& out) {
  if (rec.rdlength != kSize) return false;
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(kFamily, msg.data() + rec.rdata, buf, sizeof buf)) return false;
  out = buf;
  return true;
}

bool decode_ptr(std::span<const uint8_t> msg, const Record& rec, std::string& out) {
  Reader r(msg, rec.rdata);
  return r.name(out) && r.pos() <= rec.rdata + rec.rdlength;
}

bool decode_txt(std::span<const uint8_t> msg, const Record& rec, std::string& out) {
  out.clear();
  size_t p = rec.rdata;
  const size_t end = rec.rdata + rec.rdlength;
  while (p < end) {
    const size_t len = msg[p];
    if (p + 1 + len > end) return false;
    out.append(reinterpret_cast<const char*>(msg.data() + p + 1), len);
    p += 1 + len;
  }
  return true;
}

std::string describe(RrType type, std::string_view qname) {
  return std::string(rr_type_name(type)) + " " + std::string(qname);
}

template <typename T>
core::Result<Answer<T>> decode_reply(std::span<const uint8_t> msg, std::string_view qname,
                                     RrType type, RdataDecoder<T> decode) {
  const std::optional<Message> m = parse(msg);
  if (!m) return core::Status::temporary("dns: malformed reply for " + describe(type, qname));
  switch (m->rcode) {
    case kNoError:
      break;
    case kNxDomain:
      return core::Status::not_found("dns: NXDOMAIN for " + describe(type, qname));
    case kServFail:
      return core::Status::temporary("dns: SERVFAIL for " + describe(type, qname));
    default:
      return core::Status::temporary("dns: RCODE " + std::to_string(m->rcode) + " for " +
                                     describe(type, qname));
  }
  if (m->truncated) {
    return core::Status::temporary("dns: truncated reply for " + describe(type, qname));
  }

  const auto cname = static_cast<uint16_t>(RrType::kCname);
  const auto wanted = static_cast<uint16_t>(type);
  std::string owner = normalize_name(qname);
  uint32_t ttl = UINT32_MAX;
  for (int link = 0; link < kMaxCnameLinks; ++link) {
    auto it = std::find_if(m->answer.begin(), m->answer.end(), [&](const Record& rec) {
      return rec.type == cname && rec.klass == kClassIn && normalize_name(rec.name) == owner;
    });
    if (it == m->answer.end()) break;
    Reader r(msg, it->rdata);
    std::string target;
    if (!r.name(target)) {
      return core::Status::temporary("dns: malformed CNAME for " + describe(type, qname));
    }
    ttl = std::min(ttl, it->ttl);
    owner = normalize_name(target);
  }

  Answer<T> answer;
  for (const Record& rec : m->answer) {
    if (rec.type != wanted || rec.klass != kClassIn || normalize_name(rec.name) != owner) continue;
    T value;
    if (!decode(msg, rec, value)) {
      return core::Status::temporary("dns: malformed " + std::string(rr_type_name(type)) +
                                     " record for " + std::string(qname));
    }
    answer.records.push_back(std::move(value));
    ttl = std::min(ttl, rec.ttl);
  }
  answer.ttl = answer.records.empty() ? negative_ttl(msg, *m) : ttl;
  return answer;
}

}  // namespace

core::Result<MxAnswer> decode_mx_reply(std::span<const uint8_t> msg, std::string_view qname) {
  return decode_reply<MxRecord>(msg, qname, RrType::kMx, decode_mx);
}

core::Result<AddressAnswer> decode_a_reply(std::span<const uint8_t> msg, std::string_view qname) {
  return decode_reply<std::string>(msg, qname, RrType::kA, decode_address<AF_INET, 4>);
}

core::Result<AddressAnswer> decode_aaaa_reply(std::span<const uint8_t> msg,
                                              std::string_view qname) {
  return decode_reply<std::string>(msg, qname, RrType::kAaaa, decode_address<AF_INET6, 16>);
}

core::Result<TxtAnswer> decode_txt_reply(std::span<const uint8_t> msg, std::string_view qname) {
  return decode_reply<std::string>(msg, qname, RrType::kTxt, decode_txt);
}

core::Result<PtrAnswer> decode_ptr_reply(std::span<const uint8_t> msg, std::string_view qname) {
  return decode_reply<std::string>(msg, qname, RrType::kPtr, decode_ptr);
}

}  // namespace dns
