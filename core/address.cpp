#include "core/address.h"

#include <cctype>

#include "core/cidr.h"

namespace core {
namespace {

constexpr size_t kMaxLocal = 64;    // RFC 5321 §4.5.3.1.1
constexpr size_t kMaxDomain = 255;  // §4.5.3.1.2
constexpr size_t kMaxPath = 256;    // §4.5.3.1.3, including the angle brackets

bool is_atext(unsigned char c, bool allow_utf8) {
  if (c >= 0x80) return allow_utf8;
  if (std::isalnum(c)) return true;
  static constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
  return kSpecials.find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_dot_string(std::string_view s, bool allow_utf8) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(static_cast<unsigned char>(c), allow_utf8)) {
      return false;
    }
    prev = c;
  }
  return true;
}

// Quoted-string = DQUOTE *QcontentSMTP DQUOTE (RFC 5321 §4.1.2).
bool is_quoted_string(std::string_view s, bool allow_utf8) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (++i + 1 >= s.size()) return false;
      const auto q = static_cast<unsigned char>(s[i]);
      if (q < 32 || q > 126) return false;
    } else if (c == '"' || c < 32 || c == 127 || (c >= 0x80 && !allow_utf8)) {
      return false;
    }
  }
  return true;
}

bool is_ldh_label(std::string_view l, bool allow_utf8) {
  if (l.empty() || l.size() > 63) return false;
  if (l.front() == '-' || l.back() == '-') return false;
  for (char ch : l) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      if (!allow_utf8) return false;
    } else if (!std::isalnum(c) && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Address::str() const {
  if (empty()) return {};
  return local + "@" + domain;
}

bool Address::needs_utf8() const {
  for (char c : local + domain)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

std::string to_lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

size_t utf8_sequence_length(std::string_view s) {
  if (s.empty()) return 0;
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  return n;
}

bool is_valid_utf8(std::string_view s) {
  while (!s.empty()) {
    const size_t n = utf8_sequence_length(s);
    if (n == 0) return false;
    s.remove_prefix(n);
  }
  return true;
}

bool is_valid_domain(std::string_view d, bool allow_utf8) {
  if (d.empty() || d.size() > kMaxDomain) return false;
  if (d.front() == '[') {
    // address-literal: [IPv4] or [IPv6:...] (RFC 5321 §4.1.3)
    if (d.back() != ']') return false;
    std::string_view inner = d.substr(1, d.size() - 2);
    if (inner.size() > 5 && iequals(inner.substr(0, 5), "IPv6:"))
      return IpAddress::parse(inner.substr(5)).is_ok() &&
             inner.substr(5).find(':') != std::string_view::npos;
    return IpAddress::parse(inner).is_ok() && inner.find(':') == std::string_view::npos;
  }
  if (allow_utf8 && !is_valid_utf8(d)) return false;
  std::string_view rest = d;
  if (rest.back() == '.') return false;
  while (true) {
    const size_t dot = rest.find('.');
    if (!is_ldh_label(rest.substr(0, dot), allow_utf8)) return false;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return true;
}

Result<Address> parse_mailbox(std::string_view m, bool allow_utf8) {
  const size_t at = m.rfind('@');
  if (at == std::string_view::npos) return Status::invalid("address has no @domain");
  std::string_view local = m.substr(0, at);
  std::string_view domain = m.substr(at + 1);
  if (local.empty()) return Status::invalid("empty local part");
  if (local.size() > kMaxLocal) return Status::invalid("local part longer than 64 octets");
  if (allow_utf8 && !is_valid_utf8(local)) return Status::invalid("local part is not UTF-8");
  if (!is_dot_string(local, allow_utf8) && !is_quoted_string(local, allow_utf8))
    return Status::invalid(allow_utf8 ? "malformed local part"
                                      : "malformed local part (non-ASCII needs SMTPUTF8)");
  if (!is_valid_domain(domain, allow_utf8))
    return Status::invalid(allow_utf8 ? "malformed domain"
                                      : "malformed domain (non-ASCII needs SMTPUTF8)");
  Address a;
  a.local = std::string(local);
  a.domain = to_lower_ascii(domain);
  return a;
}

Result<Address> parse_path(std::string_view p, bool allow_utf8, bool allow_null) {
  if (p.size() > kMaxPath) return Status::invalid("path longer than 256 octets");
  if (p.size() < 2 || p.front() != '<' || p.back() != '>')
    return Status::invalid("path must be enclosed in <>");
  std::string_view inner = p.substr(1, p.size() - 2);
  if (inner.empty()) {
    if (allow_null) return Address{};
    return Status::invalid("null path not allowed here");
  }
  if (inner.front() == '@') {
    // A-d-l source route, obsolete: accept and ignore (RFC 5321 §4.1.2, §C).
    const size_t colon = inner.find(':');
    if (colon == std::string_view::npos) return Status::invalid("malformed source route");
    inner.remove_prefix(colon + 1);
  }
  return parse_mailbox(inner, allow_utf8);
}

}  // namespace core
