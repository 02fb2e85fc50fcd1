#include "policy/spf_record.h"

#include <arpa/inet.h>

#include "core/address.h"
#include "policy/spf_macro.h"

namespace policy {
namespace {

constexpr std::string_view kVersion = "v=spf1";

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

core::Status bad_term(std::string_view term, std::string_view why) {
  return core::Status::invalid("SPF term \"" + std::string(term) + "\": " + std::string(why));
}

// ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT), ip6-cidr-length likewise up to 128
// (§5.6): no leading zeros, no value past the address size.
bool parse_cidr(std::string_view digits, int max, int* out) {
  if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return false;
  int value = 0;
  for (char c : digits) {
    if (!is_digit(c)) return false;
    value = value * 10 + (c - '0');
  }
  if (value > max) return false;
  *out = value;
  return true;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// ip4-network = qnum "." qnum "." qnum "." qnum, qnum = 0..255 without leading zeros (§5.6).
bool parse_ip4(std::string_view text, std::array<uint8_t, 16>* out) {
  for (int i = 0; i < 4; ++i) {
    const size_t dot = i < 3 ? text.find('.') : text.size();
    if (dot == std::string_view::npos) return false;
    const std::string_view part = text.substr(0, dot);
    int value = 0;
    if (!parse_cidr(part, 255, &value)) return false;
    (*out)[i] = static_cast<uint8_t>(value);
    text.remove_prefix(i < 3 ? dot + 1 : dot);
  }
  return text.empty();
}

bool parse_ip6(std::string_view text, std::array<uint8_t, 16>* out) {
  const std::string s(text);
  return !s.empty() && inet_pton(AF_INET6, s.c_str(), out->data()) == 1;
}

// dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] (§5.3), taken from the right
// end of `arg`, because a domain-spec may itself hold '/' ("a:foo:bar/baz.example.com").
core::Status split_dual_cidr(std::string_view term, std::string_view* arg, SpfMechanism* m) {
  if (const size_t p = arg->rfind("//"); p != std::string_view::npos) {
    const std::string_view digits = arg->substr(p + 2);
    if (all_digits(digits)) {
      if (!parse_cidr(digits, 128, &m->cidr6)) return bad_term(term, "bad IPv6 prefix length");
      arg->remove_suffix(digits.size() + 2);
    }
  }
  if (const size_t p = arg->rfind('/'); p != std::string_view::npos) {
    const std::string_view digits = arg->substr(p + 1);
    if (all_digits(digits)) {
      if (!parse_cidr(digits, 32, &m->cidr4)) return bad_term(term, "bad IPv4 prefix length");
      arg->remove_suffix(digits.size() + 1);
    }
  }
  return core::Status::ok();
}

core::Status parse_network(std::string_view term, std::string_view arg, bool v6, SpfMechanism* m) {
  const size_t slash = arg.find('/');
  const std::string_view net = arg.substr(0, slash);
  if (!(v6 ? parse_ip6(net, &m->network) : parse_ip4(net, &m->network))) {
    return bad_term(term, v6 ? "bad IPv6 network" : "bad IPv4 network");
  }
  if (slash != std::string_view::npos &&
      !parse_cidr(arg.substr(slash + 1), v6 ? 128 : 32, v6 ? &m->cidr6 : &m->cidr4)) {
    return bad_term(term, "bad prefix length");
  }
  return core::Status::ok();
}

core::Result<SpfMechanism> parse_mechanism(std::string_view term) {
  SpfMechanism m;
  m.text = std::string(term);
  std::string_view body = term;
  switch (body.front()) {
    case '+':
    case '-':
    case '~':
    case '?':
      m.qualifier = static_cast<SpfQualifier>(body.front());
      body.remove_prefix(1);
      break;
  }
  const size_t name_end = body.find_first_of(":/");
  const std::string name = core::to_lower_ascii(body.substr(0, name_end));
  std::string_view rest = name_end == std::string_view::npos ? "" : body.substr(name_end);
  const bool has_arg = rest.starts_with(':');
  std::string_view arg = has_arg ? rest.substr(1) : rest;

  if (name == "all") {
    if (!rest.empty()) return bad_term(term, "\"all\" takes no argument");
    m.kind = SpfMechanismKind::kAll;
    return m;
  }
  if (name == "ip4" || name == "ip6") {
    if (!has_arg) return bad_term(term, "a network is required");
    m.kind = name == "ip4" ? SpfMechanismKind::kIp4 : SpfMechanismKind::kIp6;
    if (core::Status s = parse_network(term, arg, name == "ip6", &m); !s) return s;
    return m;
  }
  if (name == "a" || name == "mx") {
    m.kind = name == "a" ? SpfMechanismKind::kA : SpfMechanismKind::kMx;
    if (core::Status s = split_dual_cidr(term, &arg, &m); !s) return s;
    if (!has_arg) {
      if (!arg.empty()) return bad_term(term, "unexpected text");
      return m;
    }
  } else if (name == "include" || name == "exists") {
    m.kind = name == "include" ? SpfMechanismKind::kInclude : SpfMechanismKind::kExists;
    if (!has_arg) return bad_term(term, "a domain is required");
  } else if (name == "ptr") {
    m.kind = SpfMechanismKind::kPtr;
    if (!has_arg) {
      if (!rest.empty()) return bad_term(term, "\"ptr\" takes no prefix length");
      return m;
    }
  } else {
    return bad_term(term, "unknown mechanism");
  }
  if (core::Status s = check_domain_spec(arg); !s) return bad_term(term, s.message());
  m.domain_spec = std::string(arg);
  return m;
}

// name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ), then "=" (§4.6.1). Anything else is read
// as a mechanism, so "redirect:x" and "1up=x" fail as unknown mechanisms.
size_t modifier_name_length(std::string_view term) {
  if (term.empty() || !is_alpha(term[0])) return 0;
  size_t i = 1;
  while (i < term.size() && (is_alpha(term[i]) || is_digit(term[i]) || term[i] == '-' ||
                             term[i] == '_' || term[i] == '.')) {
    ++i;
  }
  return i < term.size() && term[i] == '=' ? i : 0;
}

core::Status parse_modifier(std::string_view term, size_t name_length, SpfRecord* record) {
  const std::string name = core::to_lower_ascii(term.substr(0, name_length));
  const std::string_view value = term.substr(name_length + 1);
  std::optional<std::string>* slot = name == "redirect" ? &record->redirect
                                     : name == "exp"    ? &record->exp
                                                        : nullptr;
  if (!slot) {
    if (core::Status s = check_macro_string(value, MacroContext::kDomain); !s) {
      return bad_term(term, s.message());
    }
    return core::Status::ok();
  }
  // §6: redirect and exp MUST NOT appear more than once each.
  if (slot->has_value()) return bad_term(term, "modifier given twice");
  if (core::Status s = check_domain_spec(value); !s) return bad_term(term, s.message());
  *slot = std::string(value);
  return core::Status::ok();
}

}  // namespace

bool is_spf_record(std::string_view txt) {
  return txt.size() >= kVersion.size() && core::iequals(txt.substr(0, kVersion.size()), kVersion) &&
         (txt.size() == kVersion.size() || txt[kVersion.size()] == ' ');
}

core::Result<SpfRecord> parse_spf_record(std::string_view txt) {
  if (!is_spf_record(txt)) return core::Status::invalid("not an SPF record");
  SpfRecord record;
  std::string_view rest = txt.substr(kVersion.size());
  // Terms are separated by one or more spaces, and only spaces (§4.6.1).
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = rest.find(' ');
    const std::string_view term = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    if (const size_t n = modifier_name_length(term); n > 0) {
      if (core::Status s = parse_modifier(term, n, &record); !s) return s;
      continue;
    }
    core::Result<SpfMechanism> m = parse_mechanism(term);
    if (!m) return m.status();
    record.mechanisms.push_back(std::move(m).value());
  }
  return record;
}

}  // namespace policy
