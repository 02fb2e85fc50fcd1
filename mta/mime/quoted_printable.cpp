#include "mta/mime/quoted_printable.h"

namespace mta::mime {
namespace {

constexpr size_t kMaxEncodedLine = 76;  // RFC 2045 §6.7 rule (5), "=" of a soft break included
constexpr char kHex[] = "0123456789ABCDEF";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void encode_line(std::string_view line, std::string& out) {
  size_t col = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    const bool last = i + 1 == line.size();
    // White space at the end of a line would be stripped by some transports (rule 3).
    const bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
    const size_t width = literal ? 1 : 3;
    // Keep room for the "=" of a soft break unless this is the line's last token.
    if (col + width > (last ? kMaxEncodedLine : kMaxEncodedLine - 1)) {
      out += "=\r\n";
      col = 0;
    }
    if (literal) {
      out += static_cast<char>(c);
    } else {
      out += '=';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
    col += width;
  }
}

}  // namespace

std::string encode_quoted_printable(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t eol = text.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      encode_line(text.substr(pos), out);
      break;
    }
    encode_line(text.substr(pos, eol - pos), out);
    out += "\r\n";
    pos = eol + 2;
  }
  return out;
}

std::string decode_quoted_printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') {
      out += text[i];
      continue;
    }
    if (text.substr(i + 1, 2) == "\r\n") {
      i += 2;
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(text[i + 2]) : -1;
    if (lo < 0) {
      out += '=';
      continue;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace mta::mime
