#include "policy/auth_results.h"

#include "core/address.h"
#include "core/header.h"

namespace policy {
namespace {

constexpr size_t kFoldAt = 78;  // RFC 5322 §2.1.1 "SHOULD" line length
constexpr std::string_view kFieldName = "Authentication-Results";

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

// RFC 2045 §5.1 tspecials, which (with space and controls) a token may not hold.
bool is_tspecial(char c) {
  return std::string_view("()<>@,;:\\\"/[]?=").find(c) != std::string_view::npos;
}

bool is_token_char(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c > 0x20 && c < 0x7f && !is_tspecial(ch);
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

// RFC 5322 §3.2.3 atext.
bool is_atext(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c <= 0x20 || c >= 0x7f) return false;
  return std::string_view("()<>[]:;@\\,.\"").find(ch) == std::string_view::npos;
}

bool is_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i + 1] == '.') return false;
    } else if (!is_atext(s[i])) {
      return false;
    }
  }
  return true;
}

// RFC 6376 §3.5 domain-name: labels of letters, digits and hyphens.
bool is_domain_name(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ldh =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (c == '.' ? s[i + 1] == '.' : !ldh) return false;
  }
  return true;
}

// pvalue = [CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]   (RFC 8601 §2.2)
bool is_bare_mailbox(std::string_view s) {
  const size_t at = s.rfind('@');
  if (at == std::string_view::npos) return false;
  const std::string_view local = s.substr(0, at);
  return (local.empty() || is_dot_atom(local)) && is_domain_name(s.substr(at + 1));
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (is_control(static_cast<unsigned char>(c))) continue;
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// value = token / quoted-string (RFC 2045 §5.1, RFC 5322 §3.2.4)
std::string value_text(std::string_view s) {
  return is_token(s) ? std::string(s) : quoted(s);
}

std::string pvalue_text(std::string_view s) {
  return is_bare_mailbox(s) ? std::string(s) : value_text(s);
}

std::string comment_text(std::string_view s) {
  std::string out = "(";
  for (char c : s) {
    if (is_control(static_cast<unsigned char>(c))) continue;
    if (c == '(' || c == ')' || c == '\\') out += '\\';
    out += c;
  }
  out += ')';
  return out;
}

std::string keyword(std::string_view s) {
  std::string out;
  for (char c : s)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '_' || c == '-')
      out += c;
  return out;
}

// The units between which the field may be folded: "method=result", "(comment)",
// "reason=...", each "ptype.property=value"; the last unit of each resinfo but the last one
// carries the ';' that separates it from the next.
std::vector<std::string> units_of(const std::vector<AuthResultEntry>& entries) {
  std::vector<std::string> units;
  for (const auto& e : entries) {
    if (!units.empty()) units.back() += ';';
    units.push_back(keyword(e.method) + "=" + keyword(e.result));
    if (!e.comment.empty()) units.push_back(comment_text(e.comment));
    if (!e.reason.empty()) units.push_back("reason=" + value_text(e.reason));
    for (const auto& [name, value] : e.properties)
      units.push_back(keyword(name) + "=" + pvalue_text(value));
  }
  if (units.empty()) units.push_back("none");
  return units;
}

// Skips white space, line folds and (nested) comments: RFC 5322 §3.2.2 CFWS.
size_t skip_cfws(std::string_view s, size_t i) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (depth > 0) {
      if (c == '\\') {
        ++i;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')') {
        --depth;
      }
    } else if (c == '(') {
      depth = 1;
    } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      break;
    }
  }
  return i;
}

// The authserv-id that opens a field value (a token or a quoted-string), or "" if none.
std::string authserv_id_of(std::string_view value) {
  size_t i = skip_cfws(value, 0);
  std::string id;
  if (i < value.size() && value[i] == '"') {
    for (++i; i < value.size() && value[i] != '"'; ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) ++i;
      if (value[i] != '\r' && value[i] != '\n') id += value[i];
    }
    return i < value.size() ? id : std::string();
  }
  while (i < value.size() && is_token_char(value[i])) id += value[i++];
  return id;
}

}  // namespace

std::string authentication_results(std::string_view authserv_id,
                                   const std::vector<AuthResultEntry>& entries) {
  std::string out = std::string(kFieldName) + ": " + value_text(authserv_id) + ";";
  size_t line_len = out.size();
  for (const auto& unit : units_of(entries)) {
    if (line_len + 1 + unit.size() > kFoldAt) {
      out += "\r\n\t";
      line_len = 1;
    } else {
      out += ' ';
      ++line_len;
    }
    out += unit;
    line_len += unit.size();
  }
  out += "\r\n";
  return out;
}

std::string remove_our_auth_results(std::string_view header_section, std::string_view authserv_id) {
  std::string out;
  out.reserve(header_section.size());
  size_t kept_from = 0;
  for (const auto& field : core::parse_header_fields(header_section)) {
    if (!core::iequals(field.name, kFieldName)) continue;
    const std::string id = authserv_id_of(field.value);
    if (id.empty() || !core::iequals(id, authserv_id)) continue;
    const size_t begin = field.name.data() - header_section.data();
    size_t end = field.value.data() + field.value.size() - header_section.data();
    if (header_section.substr(end, 2) == "\r\n") end += 2;
    out.append(header_section.substr(kept_from, begin - kept_from));
    kept_from = end;
  }
  out.append(header_section.substr(kept_from));
  return out;
}

}  // namespace policy
