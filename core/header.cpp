#include "core/header.h"

#include "core/address.h"

namespace core {
namespace {
bool starts_field(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  for (size_t i = 0; i < colon; ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c <= 32 || c >= 127) {
      // obs-fname allows WSP before the colon (RFC 5322 §4.5.8).
      for (size_t j = i; j < colon; ++j)
        if (line[j] != ' ' && line[j] != '\t') return false;
      return i > 0;
    }
  }
  return true;
}
}  // namespace

std::optional<size_t> header_end(std::string_view msg) {
  size_t pos = 0;
  while (pos < msg.size()) {
    const size_t eol = msg.find("\r\n", pos);
    if (eol == std::string_view::npos) return std::nullopt;
    std::string_view line = msg.substr(pos, eol - pos);
    if (line.empty()) return eol + 2;
    const bool continuation = line[0] == ' ' || line[0] == '\t';
    if (!continuation && !starts_field(line)) return pos;  // body starts without blank line
    pos = eol + 2;
  }
  return std::nullopt;
}

std::vector<HeaderField> parse_header_fields(std::string_view section) {
  std::vector<HeaderField> out;
  size_t pos = 0;
  while (pos < section.size()) {
    size_t eol = section.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = section.size();
    std::string_view line = section.substr(pos, eol - pos);
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) {
      // Extend the previous field's value over this continuation line.
      const char* begin = out.back().value.data();
      out.back().value = std::string_view(begin, section.data() + eol - begin);
    } else if (starts_field(line)) {
      const size_t colon = line.find(':');
      size_t name_end = colon;
      while (name_end > 0 && (line[name_end - 1] == ' ' || line[name_end - 1] == '\t'))
        --name_end;
      out.push_back({line.substr(0, name_end), line.substr(colon + 1)});
    } else {
      break;
    }
    pos = eol + 2;
  }
  return out;
}

const HeaderField* find_field(const std::vector<HeaderField>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (iequals(f.name, name)) return &f;
  return nullptr;
}

std::string unfold(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;
      continue;
    }
    out += value[i];
  }
  const size_t b = out.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const size_t e = out.find_last_not_of(" \t");
  return out.substr(b, e - b + 1);
}

}  // namespace core
