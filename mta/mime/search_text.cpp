#include "mta/mime/search_text.h"

#include "mta/mime/charset.h"
#include "mta/mime/encoded_words.h"
#include "mta/mime/header_fold.h"
#include "mta/mime/header_section.h"

namespace mta::mime {
namespace {

// Depth-first, so recursion is bounded by the tree's depth (kMaxMimeDepth); stops once `out`
// is full.
void collect(std::string_view message, const Part& p, size_t max_bytes, std::string& out) {
  if (out.size() >= max_bytes) return;
  if (p.kind != PartKind::kLeaf) {
    for (const Part& c : p.children) collect(message, c, max_bytes, out);
    return;
  }
  if (p.type.type != "text") return;
  out += decoded_content(message, p);
  out += '\n';
}

}  // namespace

std::string header_text_utf8(std::string_view header_section) {
  std::string out;
  for (const FieldLines& f : read_header_section(header_section).fields) {
    out += sanitize_utf8(f.name);
    out += ": ";
    out += decode_header_value(f.value);
    out += '\n';
  }
  return out;
}

std::string decoded_content(std::string_view message, const Part& part) {
  std::string content = decode_transfer_encoding(part.body.of(message), part.transfer_encoding());
  if (part.type.type != "text") return content;
  const auto charset = param_utf8(part.type.params, "charset");
  return to_utf8(content, charset ? *charset : "us-ascii");
}

std::string body_text_utf8(std::string_view message, const MessageTree& tree, size_t max_bytes) {
  std::string out;
  collect(message, tree.root, max_bytes, out);
  if (out.size() > max_bytes) out.resize(utf8_cut(out, max_bytes));
  return out;
}

}  // namespace mta::mime
