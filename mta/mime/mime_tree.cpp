#include "mta/mime/mime_tree.h"

#include <algorithm>

#include "core/address.h"
#include "mta/mime/header_section.h"

namespace mta::mime {
namespace {

constexpr size_t kMaxLanguages = 64;

ContentType default_type(bool in_digest) {
  if (in_digest) return {"message", "rfc822", {}};
  return {"text", "plain", {{"charset", "us-ascii"}}};
}

bool is_token_char(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c <= 32 || c >= 127) return false;
  return std::string_view("()<>@,;:\\\"/[]?=").find(ch) == std::string_view::npos;
}

// RFC 2045 §6.1 mechanism: one token, or "7bit" when it is anything else.
std::string read_encoding(std::string_view raw) {
  const std::string v = unfold_value(raw);
  if (v.empty() || !std::all_of(v.begin(), v.end(), is_token_char)) return "7bit";
  return core::to_lower_ascii(v);
}

// RFC 3282 §2: Language-Tag *("," Language-Tag), comments allowed.
std::vector<std::string> read_languages(std::string_view raw) {
  std::vector<std::string> tags;
  std::string cur;
  int comment = 0;
  const auto end_tag = [&] {
    if (!cur.empty() && tags.size() < kMaxLanguages) tags.push_back(cur);
    cur.clear();
  };
  for (char c : raw) {
    if (c == '(') {
      ++comment;
    } else if (c == ')' && comment > 0) {
      --comment;
    } else if (comment > 0) {
      continue;
    } else if (c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      end_tag();
    } else {
      cur += c;
    }
  }
  end_tag();
  return tags;
}

uint64_t count_lines(std::string_view body) {
  return static_cast<uint64_t>(std::count(body.begin(), body.end(), '\n'));
}

class TreeBuilder {
 public:
  explicit TreeBuilder(std::string_view msg) : msg_(msg) {}

  void entity(size_t begin, size_t end, size_t depth, bool in_digest, Part& p) {
    const HeaderSection hs = read_header_section(msg_.substr(begin, end - begin));
    p.header = {begin, begin + hs.body_start};
    p.body = {begin + hs.body_start, end};
    read_fields(hs.fields, in_digest, p);
    classify(depth, p);
    switch (p.kind) {
      case PartKind::kMultipart:
        multipart(depth, p);
        break;
      case PartKind::kMessage:
        ++parts_;
        p.children.emplace_back();
        entity(p.body.begin, p.body.end, depth + 1, false, p.children.back());
        p.lines = count_lines(p.body.of(msg_));
        break;
      case PartKind::kLeaf:
        if (p.type.type == "text") p.lines = count_lines(p.body.of(msg_));
        break;
    }
  }

  size_t parts() const { return parts_; }
  bool limited() const { return limited_; }

 private:
  void read_fields(const std::vector<FieldLines>& fields, bool in_digest, Part& p) {
    std::optional<ContentType> type;
    bool seen_type = false;
    for (const FieldLines& f : fields) {
      if (f.name.size() < 8 || !core::iequals(f.name.substr(0, 8), "content-")) continue;
      const std::string_view n = f.name.substr(8);
      // The first of each field counts, as in core::find_field.
      if (core::iequals(n, "type") && !seen_type) {
        seen_type = true;
        type = parse_content_type(f.value, Syntax::kLenient);
      } else if (core::iequals(n, "transfer-encoding") && p.encoding.empty()) {
        p.encoding = read_encoding(f.value);
      } else if (core::iequals(n, "disposition") && !p.disposition) {
        p.disposition = parse_content_disposition(f.value);
      } else if (core::iequals(n, "language") && p.languages.empty()) {
        p.languages = read_languages(f.value);
      } else if (core::iequals(n, "id") && !p.id) {
        p.id = unfold_value(f.value);
      } else if (core::iequals(n, "description") && !p.description) {
        p.description = unfold_value(f.value);
      } else if (core::iequals(n, "location") && !p.location) {
        p.location = unfold_value(f.value);
      } else if (core::iequals(n, "md5") && !p.md5) {
        p.md5 = unfold_value(f.value);
      }
    }
    // RFC 2045 §5.2: absent or unreadable means the default; in a digest the default for an
    // absent field is message/rfc822 (RFC 2046 §5.1.5).
    p.type = type ? std::move(*type) : default_type(in_digest && !seen_type);
    if (p.encoding.empty()) p.encoding = "7bit";
  }

  void classify(size_t depth, Part& p) {
    const bool container =
        p.type.type == "multipart" ||
        (p.type.type == "message" && (p.type.subtype == "rfc822" || p.type.subtype == "global"));
    if (!container) return;
    if (depth >= kMaxMimeDepth || parts_ >= kMaxMimeParts) {
      limited_ = true;
      return;
    }
    p.kind = p.type.type == "multipart" ? PartKind::kMultipart : PartKind::kMessage;
  }

  void multipart(size_t depth, Part& p) {
    std::string boundary;
    if (auto b = p.type.param("boundary")) {
      boundary = std::move(*b);
    } else if (auto ext = p.type.param("boundary*")) {
      boundary = decode_rfc2231_value(*ext);
    }
    const std::string_view body = p.body.of(msg_);
    const MultipartLayout layout = find_parts(body, boundary, kMaxMimeParts - parts_);
    if (layout.parts.empty()) {
      // No delimiter: one headerless text part with the whole body, so the text stays
      // readable and BODYSTRUCTURE keeps its 1*body.
      ++parts_;
      Part& child = p.children.emplace_back();
      child.header = {p.body.begin, p.body.begin};
      child.body = p.body;
      child.type = default_type(false);
      child.encoding = "7bit";
      child.lines = count_lines(body);
      return;
    }
    const bool digest = p.type.subtype == "digest";
    for (const ByteRange& r : layout.parts) {
      if (parts_ >= kMaxMimeParts) {
        limited_ = true;
        break;
      }
      ++parts_;
      entity(p.body.begin + r.begin, p.body.begin + r.end, depth + 1, digest,
             p.children.emplace_back());
    }
  }

  std::string_view msg_;
  size_t parts_ = 1;
  bool limited_ = false;
};

}  // namespace

MessageTree parse_message(std::string_view message) {
  MessageTree tree;
  TreeBuilder b(message);
  b.entity(0, message.size(), 0, false, tree.root);
  tree.part_count = b.parts();
  tree.limited = b.limited();
  return tree;
}

}  // namespace mta::mime
