#include "mta/mime/header_fold.h"

#include <algorithm>

#include "core/address.h"

namespace mta::mime {
namespace {

// Length of the UTF-8 sequence that starts at s[i] if it is well-formed, else 0.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  return core::is_valid_utf8(s.substr(i, n)) ? n : 0;
}

}  // namespace

size_t utf8_cut(std::string_view s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::string sanitize_field_text(std::string_view text, bool allow_utf8, size_t max_octets) {
  std::string out;
  out.reserve(std::min(text.size(), max_octets) + 3);
  bool pending_space = false;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c <= 0x20 || c == 0x7F) {
      pending_space = !out.empty();
      ++i;
      continue;
    }
    std::string_view piece;
    std::string_view replacement = "?";
    size_t consumed = 1;
    if (c < 0x80) {
      piece = text.substr(i, 1);
    } else if (const size_t n = allow_utf8 ? utf8_sequence(text, i) : 0; n > 0) {
      piece = text.substr(i, n);
      consumed = n;
    } else {
      piece = replacement;
    }
    if (out.size() + (pending_space ? 1 : 0) + piece.size() > max_octets) {
      out += "...";
      return out;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += piece;
    i += consumed;
  }
  return out;
}

std::string fold_field(std::string_view name, std::string_view value) {
  std::string out(name);
  out += ':';
  size_t line = out.size();
  bool word_on_line = false;
  size_t pos = 0;
  while (pos < value.size()) {
    const size_t space = value.find(' ', pos);
    std::string_view word =
        value.substr(pos, space == std::string_view::npos ? value.npos : space - pos);
    pos = space == std::string_view::npos ? value.size() : space + 1;
    if (word.empty()) continue;
    if (word_on_line && line + 1 + word.size() > kFoldWidth) {
      out += "\r\n";
      line = 0;
    }
    out += ' ';
    ++line;
    while (line + word.size() > kMaxLineOctets) {
      const size_t room = line < kMaxLineOctets ? kMaxLineOctets - line : 0;
      size_t take = utf8_cut(word, room);
      if (take == 0 && line == 1) take = room;  // not UTF-8 at all: cut anywhere
      out += word.substr(0, take);
      out += "\r\n ";
      line = 1;
      word.remove_prefix(take);
    }
    out += word;
    line += word.size();
    word_on_line = true;
  }
  out += "\r\n";
  return out;
}

}  // namespace mta::mime
