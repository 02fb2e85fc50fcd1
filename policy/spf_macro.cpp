#include "policy/spf_macro.h"

#include <algorithm>
#include <vector>

namespace policy {
namespace {

constexpr std::string_view kDelimiters = ".-+,/_=";
constexpr size_t kMaxQueryName = 253;
constexpr int kMaxDigits = 128;

// One piece of a macro-string: literal text, one of the escapes %%, %_ and %-, or a %{...}
// expansion.
struct Token {
  enum class Kind { kLiteral, kEscape, kMacro } kind = Kind::kLiteral;
  std::string literal;  // kLiteral and kEscape: the text it stands for
  char letter = 0;      // lower case
  bool url_escape = false;
  int digits = 0;  // 0: keep every part
  bool reverse = false;
  std::string delimiters;
};

bool is_macro_letter(char c, MacroContext where) {
  switch (c) {
    case 's':
    case 'l':
    case 'o':
    case 'd':
    case 'i':
    case 'p':
    case 'h':
    case 'v':
      return true;
    case 'c':
    case 'r':
    case 't':
      return where == MacroContext::kExplanation;
    default:
      return false;
  }
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// macro-literal = %x21-24 / %x26-7E; explain-string adds SP.
bool is_literal(char c, MacroContext where) {
  const auto u = static_cast<unsigned char>(c);
  if (u == ' ') return where == MacroContext::kExplanation;
  return u >= 0x21 && u <= 0x7E && u != '%';
}

core::Status tokenize(std::string_view text, MacroContext where, std::vector<Token>* out) {
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c != '%') {
      if (!is_literal(c, where)) {
        return core::Status::invalid("character " + std::to_string(static_cast<unsigned char>(c)) +
                                     " not allowed in \"" + std::string(text) + "\"");
      }
      if (out) {
        if (out->empty() || out->back().kind != Token::Kind::kLiteral) out->emplace_back();
        out->back().literal += c;
      }
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) {
      return core::Status::invalid("'%' at the end of \"" + std::string(text) + "\"");
    }
    const char next = text[i + 1];
    if (next == '%' || next == '_' || next == '-') {
      if (out) {
        Token t;
        t.kind = Token::Kind::kEscape;
        t.literal = next == '%' ? "%" : next == '_' ? " " : "%20";
        out->push_back(std::move(t));
      }
      i += 2;
      continue;
    }
    if (next != '{') {
      return core::Status::invalid("'%' not followed by '{', '%', '_' or '-' in \"" +
                                   std::string(text) + "\"");
    }
    const size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      return core::Status::invalid("unterminated macro in \"" + std::string(text) + "\"");
    }
    const std::string_view body = text.substr(i + 2, close - i - 2);
    Token t;
    t.kind = Token::Kind::kMacro;
    if (body.empty() || !is_macro_letter(lower(body[0]), where)) {
      return core::Status::invalid("unknown macro letter in \"" + std::string(text) + "\"");
    }
    t.letter = lower(body[0]);
    t.url_escape = body[0] != t.letter;
    size_t p = 1;
    bool has_digits = false;
    while (p < body.size() && body[p] >= '0' && body[p] <= '9') {
      has_digits = true;
      t.digits = std::min(t.digits * 10 + (body[p] - '0'), kMaxDigits + 1);
      ++p;
    }
    if (has_digits && t.digits == 0) {
      return core::Status::invalid("macro keeps zero parts in \"" + std::string(text) + "\"");
    }
    if (p < body.size() && (body[p] == 'r' || body[p] == 'R')) {
      t.reverse = true;
      ++p;
    }
    for (; p < body.size(); ++p) {
      if (kDelimiters.find(body[p]) == std::string_view::npos) {
        return core::Status::invalid("bad macro transformer in \"" + std::string(text) + "\"");
      }
      t.delimiters += body[p];
    }
    if (out) out->push_back(std::move(t));
    i = close + 1;
  }
  return core::Status::ok();
}

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool is_toplabel(std::string_view label) {
  if (label.empty() || label.front() == '-' || label.back() == '-') return false;
  bool alpha_or_dash = false;
  for (char c : label) {
    const bool digit = c >= '0' && c <= '9';
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!digit && !alpha && c != '-') return false;
    alpha_or_dash = alpha_or_dash || !digit;
  }
  return alpha_or_dash;
}

std::string letter_value(char letter, const MacroValues& v) {
  switch (letter) {
    case 's':
      return v.sender;
    case 'l':
      return v.local_part;
    case 'o':
      return v.sender_domain;
    case 'd':
      return v.domain;
    case 'i':
      return dotted_ip(v.ip);
    case 'p':
      return v.validated_name;
    case 'h':
      return v.helo;
    case 'v':
      return v.ip.is_v4() ? "in-addr" : "ip6";
    case 'c':
      return v.ip.str();
    case 'r':
      return v.receiver;
    case 't':
      return std::to_string(v.timestamp);
  }
  return {};
}

// §7.3: split on the delimiters, reverse, keep the right-hand parts, rejoin with ".".
std::string transform(const std::string& value, const Token& t) {
  const std::string_view delimiters =
      t.delimiters.empty() ? std::string_view(".") : std::string_view(t.delimiters);
  std::vector<std::string_view> parts;
  std::string_view rest = value;
  for (;;) {
    const size_t cut = rest.find_first_of(delimiters);
    parts.push_back(rest.substr(0, cut));
    if (cut == std::string_view::npos) break;
    rest.remove_prefix(cut + 1);
  }
  if (t.reverse) std::reverse(parts.begin(), parts.end());
  if (t.digits > 0 && static_cast<size_t>(t.digits) < parts.size()) {
    parts.erase(parts.begin(), parts.end() - t.digits);
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '.';
    out += parts[i];
  }
  return out;
}

// Upper-case macro letters: everything outside RFC 3986 "unreserved" is %-escaped (§7.3).
std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                            (u >= '0' && u <= '9') || u == '-' || u == '.' || u == '_' || u == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

}  // namespace

core::Status check_macro_string(std::string_view text, MacroContext where) {
  return tokenize(text, where, nullptr);
}

core::Status check_domain_spec(std::string_view text) {
  std::vector<Token> tokens;
  if (core::Status s = tokenize(text, MacroContext::kDomain, &tokens); !s) return s;
  if (tokens.empty()) return core::Status::invalid("empty domain-spec");
  if (tokens.back().kind != Token::Kind::kLiteral) return core::Status::ok();
  std::string_view tail = tokens.back().literal;
  if (tail.ends_with('.')) tail.remove_suffix(1);
  const size_t dot = tail.rfind('.');
  if (dot == std::string_view::npos || !is_toplabel(tail.substr(dot + 1))) {
    return core::Status::invalid("domain-spec \"" + std::string(text) +
                                 "\" does not end in a valid top label");
  }
  return core::Status::ok();
}

bool uses_macro_letter(std::string_view text, char letter) {
  std::vector<Token> tokens;
  if (!tokenize(text, MacroContext::kExplanation, &tokens)) return false;
  return std::any_of(tokens.begin(), tokens.end(), [&](const Token& t) {
    return t.kind == Token::Kind::kMacro && t.letter == lower(letter);
  });
}

core::Result<std::string> expand_macros(std::string_view text, const MacroValues& values,
                                        MacroContext where) {
  std::vector<Token> tokens;
  if (core::Status s = tokenize(text, where, &tokens); !s) return s;
  std::string out;
  for (const Token& t : tokens) {
    if (t.kind != Token::Kind::kMacro) {
      out += t.literal;
      continue;
    }
    std::string value = transform(letter_value(t.letter, values), t);
    out += t.url_escape ? url_escape(value) : value;
  }
  return out;
}

std::string query_name(std::string_view expanded) {
  if (expanded.ends_with('.')) expanded.remove_suffix(1);
  while (expanded.size() > kMaxQueryName) {
    const size_t dot = expanded.find('.');
    if (dot == std::string_view::npos) return {};
    expanded.remove_prefix(dot + 1);
  }
  return std::string(expanded);
}

std::string dotted_ip(const core::IpAddress& ip) {
  if (ip.is_v4()) return ip.str();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : ip.bytes()) {
    if (!out.empty()) out += '.';
    out += kHex[b >> 4];
    out += '.';
    out += kHex[b & 0xF];
  }
  return out;
}

std::string reverse_name(const core::IpAddress& ip) {
  Token t;
  t.reverse = true;
  return transform(dotted_ip(ip), t) + (ip.is_v4() ? ".in-addr.arpa" : ".ip6.arpa");
}

}  // namespace policy
