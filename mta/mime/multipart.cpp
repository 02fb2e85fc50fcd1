#include "mta/mime/multipart.h"

#include <algorithm>
#include <cstdint>

#include "core/address.h"

namespace mta::mime {
namespace {

constexpr size_t kMaxBoundary = 70;          // RFC 2046 §5.1.1 bchars 1*70
constexpr size_t kMaxLenientBoundary = 998;  // RFC 5322 §2.1.1 line length

bool is_wsp(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// RFC 2045 §5.1 tspecials, plus white space and controls, end a token.
bool is_token_char(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c <= 32 || c >= 127) return false;
  return std::string_view("()<>@,;:\\\"/[]?=").find(ch) == std::string_view::npos;
}

// White space and RFC 5322 §3.2.2 comments (nested, with quoted-pairs); an unterminated
// comment runs to the end.
void skip_cfws(std::string_view& s) {
  while (!s.empty()) {
    if (is_wsp(s.front())) {
      s.remove_prefix(1);
    } else if (s.front() == '(') {
      int depth = 0;
      size_t i = 0;
      for (; i < s.size(); ++i) {
        if (s[i] == '\\') {
          ++i;
        } else if (s[i] == '(') {
          ++depth;
        } else if (s[i] == ')' && --depth == 0) {
          break;
        }
      }
      s.remove_prefix(std::min(i + 1, s.size()));
    } else {
      return;
    }
  }
}

std::string_view take_token(std::string_view& s) {
  skip_cfws(s);
  size_t n = 0;
  while (n < s.size() && is_token_char(s[n])) ++n;
  std::string_view t = s.substr(0, n);
  s.remove_prefix(n);
  skip_cfws(s);
  return t;
}

// A quoted-string starting at s[0] == '"'; folding CR and LF are dropped. Unterminated:
// nullopt, or for lenient parsing what there is.
std::optional<std::string> take_quoted(std::string_view& s, Syntax syntax) {
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out += s[++i];
    } else if (s[i] == '"') {
      s.remove_prefix(i + 1);
      skip_cfws(s);
      return out;
    } else if (s[i] != '\r' && s[i] != '\n') {
      out += s[i];
    }
  }
  if (syntax == Syntax::kStrict) return std::nullopt;
  s = {};
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

// Past the next ";" that is not inside a quoted string (or to the end).
void skip_to_semicolon(std::string_view& s) {
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (quoted && s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && s[i] == ';') {
      s.remove_prefix(i);
      return;
    }
  }
  s = {};
}

// *(";" attribute "=" value) with RFC 2231 continuations joined; false on a syntax error
// when strict.
bool parse_params(std::string_view s, Syntax syntax, Params& merged) {
  const bool strict = syntax == Syntax::kStrict;
  Params raw;
  skip_cfws(s);
  while (!s.empty()) {
    if (s.front() != ';') {
      if (strict) return false;
      skip_to_semicolon(s);
      continue;
    }
    s.remove_prefix(1);
    const std::string_view name = take_token(s);
    if (name.empty() || s.empty() || s.front() != '=') {
      if (s.empty() && name.empty()) break;  // a trailing ";" is common and harmless
      if (strict) return false;
      skip_to_semicolon(s);
      continue;
    }
    s.remove_prefix(1);
    skip_cfws(s);
    std::string v;
    if (!s.empty() && s.front() == '"') {
      auto q = take_quoted(s, syntax);
      if (!q) return false;
      v = std::move(*q);
    } else {
      const std::string_view start = s;
      v = std::string(take_token(s));
      if (!strict && !s.empty() && s.front() != ';') {
        // "name=two words" or raw 8-bit: the value runs to the next ";".
        skip_to_semicolon(s);
        v = std::string(trim(start.substr(0, start.size() - s.size())));
      }
    }
    raw.emplace_back(core::to_lower_ascii(name), std::move(v));
  }
  merged = merge_rfc2231(raw);
  return true;
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

std::optional<ContentType> parse_content_type(std::string_view value, Syntax syntax) {
  ContentType ct;
  std::string_view s = value;
  const std::string_view type = take_token(s);
  if (type.empty() || s.empty() || s.front() != '/') return std::nullopt;
  s.remove_prefix(1);
  const std::string_view subtype = take_token(s);
  if (subtype.empty()) return std::nullopt;
  ct.type = core::to_lower_ascii(type);
  ct.subtype = core::to_lower_ascii(subtype);
  if (!parse_params(s, syntax, ct.params)) return std::nullopt;
  return ct;
}

std::optional<Disposition> parse_content_disposition(std::string_view value) {
  Disposition d;
  std::string_view s = value;
  const std::string_view type = take_token(s);
  if (type.empty()) return std::nullopt;
  d.type = core::to_lower_ascii(type);
  if (!parse_params(s, Syntax::kLenient, d.params)) return std::nullopt;
  return d;
}

Entity split_entity(std::string_view entity) {
  Entity e;
  const auto end = core::header_end(entity);
  const size_t body_at = end ? *end : entity.size();
  e.fields = core::parse_header_fields(entity.substr(0, body_at));
  e.body = entity.substr(body_at);
  return e;
}

MultipartLayout find_parts(std::string_view body, std::string_view boundary, size_t max_parts) {
  MultipartLayout layout;
  if (boundary.empty() || boundary.size() > kMaxLenientBoundary || max_parts == 0) return layout;
  size_t part_start = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t nl = body.find('\n', pos);
    const size_t next = nl == std::string_view::npos ? body.size() : nl + 1;
    size_t eol = nl == std::string_view::npos ? body.size() : nl;
    if (eol > pos && body[eol - 1] == '\r') --eol;
    const int kind = body[pos] == '-' ? delimiter_kind(body.substr(pos, eol - pos), boundary) : 0;
    if (kind != 0) {
      if (layout.opened) {
        // The line end before the delimiter belongs to the delimiter, not to the part.
        size_t part_end = pos;
        if (part_end > part_start && body[part_end - 1] == '\n') --part_end;
        if (part_end > part_start && body[part_end - 1] == '\r') --part_end;
        layout.parts.push_back({part_start, part_end});
      }
      if (kind == 2) {
        layout.closed = true;
        return layout;
      }
      layout.opened = true;
      part_start = next;
      if (layout.parts.size() + 1 == max_parts) break;  // the last part takes the rest
    }
    pos = next;
  }
  if (layout.opened) layout.parts.push_back({std::min(part_start, body.size()), body.size()});
  return layout;
}

core::Result<std::vector<std::string_view>> split_multipart(std::string_view body,
                                                            std::string_view boundary) {
  if (boundary.empty() || boundary.size() > kMaxBoundary)
    return core::Status::invalid("multipart: bad boundary length");
  const MultipartLayout layout = find_parts(body, boundary, SIZE_MAX);
  if (!layout.closed)
    return core::Status::invalid(layout.opened ? "multipart: no close delimiter"
                                               : "multipart: no opening delimiter");
  if (!layout.opened) return core::Status::invalid("multipart: close delimiter before any part");
  std::vector<std::string_view> parts;
  for (const ByteRange& r : layout.parts) parts.push_back(r.of(body));
  return parts;
}

}  // namespace mta::mime
