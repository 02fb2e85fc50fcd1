#include "mta/mime/multipart.h"

#include "core/address.h"

namespace mta::mime {
namespace {

bool is_wsp(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

// RFC 2045 §5.1 tspecials, plus white space and controls, end a token.
bool is_token_char(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c <= 32 || c >= 127) return false;
  return std::string_view("()<>@,;:\\\"/[]?=").find(ch) == std::string_view::npos;
}

std::string_view take_token(std::string_view& s) {
  s = trim(s);
  size_t n = 0;
  while (n < s.size() && is_token_char(s[n])) ++n;
  std::string_view t = s.substr(0, n);
  s.remove_prefix(n);
  s = trim(s);
  return t;
}

// A quoted-string starting at s[0] == '"'; nullopt when unterminated.
std::optional<std::string> take_quoted(std::string_view& s) {
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out += s[++i];
    } else if (s[i] == '"') {
      s.remove_prefix(i + 1);
      s = trim(s);
      return out;
    } else if (s[i] != '\r' && s[i] != '\n') {
      out += s[i];
    }
  }
  return std::nullopt;
}

// 0: not a delimiter line; 1: "--boundary"; 2: "--boundary--". Trailing white space is
// transport padding (RFC 2046 §5.1.1) and ignored.
int delimiter_kind(std::string_view line, std::string_view boundary) {
  if (line.size() < boundary.size() + 2 || line.substr(0, 2) != "--" ||
      line.substr(2, boundary.size()) != boundary)
    return 0;
  std::string_view rest = line.substr(2 + boundary.size());
  int kind = 1;
  if (rest.substr(0, 2) == "--") {
    kind = 2;
    rest.remove_prefix(2);
  }
  for (char c : rest)
    if (c != ' ' && c != '\t') return 0;
  return kind;
}

}  // namespace

std::optional<std::string> ContentType::param(std::string_view name) const {
  for (const auto& [n, v] : params)
    if (core::iequals(n, name)) return v;
  return std::nullopt;
}

bool ContentType::is(std::string_view t, std::string_view sub) const {
  return core::iequals(type, t) && core::iequals(subtype, sub);
}

std::optional<ContentType> parse_content_type(std::string_view value) {
  ContentType ct;
  std::string_view s = value;
  const std::string_view type = take_token(s);
  if (type.empty() || s.empty() || s.front() != '/') return std::nullopt;
  s.remove_prefix(1);
  const std::string_view subtype = take_token(s);
  if (subtype.empty()) return std::nullopt;
  ct.type = core::to_lower_ascii(type);
  ct.subtype = core::to_lower_ascii(subtype);
  while (!s.empty() && s.front() == ';') {
    s.remove_prefix(1);
    const std::string_view name = take_token(s);
    if (name.empty()) {
      if (s.empty()) break;  // a trailing ";" is common and harmless
      return std::nullopt;
    }
    if (s.empty() || s.front() != '=') return std::nullopt;
    s.remove_prefix(1);
    s = trim(s);
    std::string v;
    if (!s.empty() && s.front() == '"') {
      auto q = take_quoted(s);
      if (!q) return std::nullopt;
      v = std::move(*q);
    } else {
      v = std::string(take_token(s));
    }
    ct.params.emplace_back(core::to_lower_ascii(name), std::move(v));
  }
  return ct;
}

Entity split_entity(std::string_view entity) {
  Entity e;
  const auto end = core::header_end(entity);
  const size_t body_at = end ? *end : entity.size();
  e.fields = core::parse_header_fields(entity.substr(0, body_at));
  e.body = entity.substr(body_at);
  return e;
}

core::Result<std::vector<std::string_view>> split_multipart(std::string_view body,
                                                            std::string_view boundary) {
  if (boundary.empty() || boundary.size() > 70)  // RFC 2046 §5.1.1 bchars 1*70
    return core::Status::invalid("multipart: bad boundary length");
  std::vector<std::string_view> parts;
  bool opened = false;
  size_t part_start = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find("\r\n", pos);
    const size_t next = eol == std::string_view::npos ? body.size() : eol + 2;
    if (eol == std::string_view::npos) eol = body.size();
    const int kind = delimiter_kind(body.substr(pos, eol - pos), boundary);
    if (kind != 0) {
      if (opened) {
        // The CRLF before the delimiter belongs to the delimiter, not to the part.
        const size_t part_end = pos >= part_start + 2 ? pos - 2 : part_start;
        parts.push_back(body.substr(part_start, part_end - part_start));
      }
      if (kind == 2) {
        if (!opened) return core::Status::invalid("multipart: close delimiter before any part");
        return parts;
      }
      opened = true;
      part_start = next;
    }
    pos = next;
  }
  return core::Status::invalid(opened ? "multipart: no close delimiter"
                                      : "multipart: no opening delimiter");
}

}  // namespace mta::mime
