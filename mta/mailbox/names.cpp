#include "mta/mailbox/names.h"

#include "core/address.h"

namespace mta::mailbox {
namespace {

// The code point of the UTF-8 sequence at s[i], advancing i; -1 when it is not well formed.
int32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i++]);
  if (b0 < 0x80) return b0;
  int extra = 0;
  int32_t cp = 0;
  int32_t least = 0;
  if ((b0 & 0xe0) == 0xc0) {
    extra = 1, cp = b0 & 0x1f, least = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    extra = 2, cp = b0 & 0x0f, least = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    extra = 3, cp = b0 & 0x07, least = 0x10000;
  } else {
    return -1;
  }
  for (int k = 0; k < extra; ++k) {
    if (i >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[i++]);
    if ((b & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
  return cp;
}

}  // namespace

std::string canonical_name(std::string_view name) {
  const std::string_view first = name.substr(0, name.find(kSeparator));
  if (!core::iequals(first, kInbox)) return std::string(name);
  return std::string(kInbox) + std::string(name.substr(first.size()));
}

bool is_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();)
    if (next_code_point(s, i) < 0) return false;
  return true;
}

core::Status validate_name(std::string_view name) {
  auto refuse = [](std::string why) { return core::Status::invalid("mailbox name " + why); };
  if (name.empty()) return refuse("is empty");
  if (name.size() > kMaxNameSize)
    return refuse("is longer than " + std::to_string(kMaxNameSize) + " bytes");
  for (size_t i = 0; i < name.size();) {
    const int32_t cp = next_code_point(name, i);
    if (cp < 0) return refuse("is not UTF-8");
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return refuse("holds a control character");
    if (cp == '%' || cp == '*') return refuse("holds a wildcard (% or *)");
  }
  size_t begin = 0;
  while (true) {
    const size_t end = name.find(kSeparator, begin);
    const std::string_view part = name.substr(begin, end - begin);
    if (part.empty()) return refuse("has an empty level (a leading, trailing or double /)");
    if (part == "." || part == "..") return refuse("has a . or .. level");
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  return core::Status::ok();
}

bool is_inferior(std::string_view name, std::string_view parent) {
  return name.size() > parent.size() + 1 && name.starts_with(parent) &&
         name[parent.size()] == kSeparator;
}

std::vector<std::string> superiors(std::string_view name) {
  std::vector<std::string> out;
  for (size_t at = name.find(kSeparator); at != std::string_view::npos;
       at = name.find(kSeparator, at + 1))
    out.emplace_back(name.substr(0, at));
  return out;
}

}  // namespace mta::mailbox
