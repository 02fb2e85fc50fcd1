#include "mta/mime/imap_section.h"

#include <cstdint>

#include "core/address.h"
#include "mta/mime/header_section.h"

namespace mta::mime {
namespace {

constexpr size_t kMaxPath = 64;

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && core::iequals(s.substr(0, prefix.size()), prefix);
}

// RFC 9051 §9 header-list: "(" astring *(SP astring) ")", the rest of the spec.
bool parse_header_list(std::string_view s, std::vector<std::string>& out) {
  if (s.empty() || s.front() != ' ') return false;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.empty() || s.front() != '(') return false;
  s.remove_prefix(1);
  while (true) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    if (s.empty()) return false;
    if (s.front() == ')') {
      s.remove_prefix(1);
      break;
    }
    std::string name;
    if (s.front() == '"') {
      size_t i = 1;
      for (; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        name += s[i];
      }
      if (i >= s.size()) return false;
      s.remove_prefix(i + 1);
    } else {
      size_t i = 0;
      while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c <= 32 || c >= 127 || c == '(' || c == ')' || c == '"' || c == '{' || c == '\\') break;
        ++i;
      }
      if (i == 0) return false;
      name.assign(s.substr(0, i));
      s.remove_prefix(i);
    }
    out.push_back(std::move(name));
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s.empty() && !out.empty();
}

// Part `n` counted inside `node`: a multipart's n-th part, or for anything else part 1, the
// node itself (RFC 9051 §6.4.5: a non-multipart message has only a part 1).
const Part* numbered(const Part& node, uint32_t n) {
  if (node.kind == PartKind::kMultipart)
    return n <= node.children.size() ? &node.children[n - 1] : nullptr;
  return n == 1 ? &node : nullptr;
}

std::string build_fields(std::string_view header, const std::vector<std::string>& names,
                         bool wanted) {
  std::string out;
  for (const FieldLines& f : read_header_section(header).fields) {
    bool listed = false;
    for (const auto& n : names)
      if (core::iequals(n, f.name)) listed = true;
    if (listed != wanted) continue;
    out += f.lines;
    if (f.lines.empty() || f.lines.back() != '\n') out += "\r\n";
  }
  out += "\r\n";
  return out;
}

}  // namespace

core::Result<SectionSpec> parse_section(std::string_view s) {
  SectionSpec spec;
  while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
    if (s.front() == '0') return core::Status::invalid("section: part number 0");
    uint64_t n = 0;
    while (!s.empty() && s.front() >= '0' && s.front() <= '9') {
      n = n * 10 + static_cast<uint64_t>(s.front() - '0');
      if (n > UINT32_MAX) return core::Status::invalid("section: part number too large");
      s.remove_prefix(1);
    }
    spec.path.push_back(static_cast<uint32_t>(n));
    if (spec.path.size() > kMaxPath) return core::Status::invalid("section: too deep");
    if (s.empty()) return spec;
    if (s.front() != '.') return core::Status::invalid("section: expected '.'");
    s.remove_prefix(1);
    if (s.empty()) return core::Status::invalid("section: nothing after '.'");
  }
  using Text = SectionSpec::Text;
  if (s.empty()) return spec;  // BODY[]: the whole message
  if (core::iequals(s, "HEADER")) {
    spec.text = Text::kHeader;
  } else if (core::iequals(s, "TEXT")) {
    spec.text = Text::kText;
  } else if (core::iequals(s, "MIME")) {
    if (spec.path.empty()) return core::Status::invalid("section: MIME needs a part number");
    spec.text = Text::kMime;
  } else if (starts_with_ci(s, "HEADER.FIELDS.NOT")) {
    spec.text = Text::kHeaderFieldsNot;
    if (!parse_header_list(s.substr(17), spec.fields))
      return core::Status::invalid("section: bad header list");
  } else if (starts_with_ci(s, "HEADER.FIELDS")) {
    spec.text = Text::kHeaderFields;
    if (!parse_header_list(s.substr(13), spec.fields))
      return core::Status::invalid("section: bad header list");
  } else {
    return core::Status::invalid("section: unknown section text");
  }
  return spec;
}

core::Result<SectionBytes> find_section(std::string_view message, const MessageTree& tree,
                                        const SectionSpec& spec) {
  using Text = SectionSpec::Text;
  const Part* part = nullptr;  // null: the message itself, before any number
  for (uint32_t n : spec.path) {
    const Part* node = &tree.root;
    if (part) {
      if (part->kind == PartKind::kMessage)
        node = &part->children.front();
      else if (part->kind == PartKind::kMultipart)
        node = part;
      else
        return core::Status::not_found("section: part has no subparts");
    }
    part = numbered(*node, n);
    if (!part) return core::Status::not_found("section: no such part");
  }
  SectionBytes out;
  if (spec.text == Text::kNone) {
    out.range = part ? part->body : ByteRange{0, message.size()};
    return out;
  }
  if (spec.text == Text::kMime) {
    if (!part) return core::Status::invalid("section: MIME needs a part number");
    out.range = part->header;
    return out;
  }
  const Part* msg = &tree.root;
  if (part) {
    if (part->kind != PartKind::kMessage)
      return core::Status::not_found("section: part is not a message/rfc822 part");
    msg = &part->children.front();
  }
  switch (spec.text) {
    case Text::kHeader:
      out.range = msg->header;
      break;
    case Text::kText:
      out.range = msg->body;
      break;
    default:
      out.built =
          build_fields(msg->header.of(message), spec.fields, spec.text == Text::kHeaderFields);
      break;
  }
  return out;
}

}  // namespace mta::mime
