#include "mta/mime/header_section.h"

#include "core/address.h"

namespace mta::mime {
namespace {

// RFC 5322 §3.6.8 ftext (printable ASCII but ":"), with obs-fname white space before the
// colon (§4.5.8).
bool starts_field(std::string_view line, size_t& name_end) {
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  size_t i = 0;
  while (i < colon) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c <= 32 || c >= 127) break;
    ++i;
  }
  name_end = i;
  for (size_t j = i; j < colon; ++j)
    if (line[j] != ' ' && line[j] != '\t') return false;
  return i > 0;
}

}  // namespace

HeaderSection read_header_section(std::string_view entity) {
  HeaderSection h;
  size_t pos = 0;
  while (pos < entity.size()) {
    const size_t nl = entity.find('\n', pos);
    const size_t next = nl == std::string_view::npos ? entity.size() : nl + 1;
    size_t end = nl == std::string_view::npos ? entity.size() : nl;
    if (end > pos && entity[end - 1] == '\r') --end;
    const std::string_view line = entity.substr(pos, end - pos);
    if (line.empty()) {
      h.body_start = next;
      return h;
    }
    size_t name_end = 0;
    if (line[0] == ' ' || line[0] == '\t') {
      if (!h.fields.empty()) {
        FieldLines& f = h.fields.back();
        f.value = std::string_view(f.value.data(), entity.data() + end - f.value.data());
        f.lines = std::string_view(f.lines.data(), entity.data() + next - f.lines.data());
      }
    } else if (starts_field(line, name_end)) {
      const size_t colon = line.find(':');
      h.fields.push_back(
          {line.substr(0, name_end), line.substr(colon + 1), entity.substr(pos, next - pos)});
    } else {
      h.body_start = pos;
      return h;
    }
    pos = next;
  }
  h.body_start = entity.size();
  return h;
}

const FieldLines* find_field(const std::vector<FieldLines>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (core::iequals(f.name, name)) return &f;
  return nullptr;
}

std::string unfold_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value)
    if (c != '\r' && c != '\n') out += c;
  const size_t b = out.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const size_t e = out.find_last_not_of(" \t");
  return out.substr(b, e - b + 1);
}

}  // namespace mta::mime
