#include "mta/mime/transfer_encoding.h"

#include <array>
#include <cstdint>

#include "core/address.h"
#include "mta/mime/quoted_printable.h"

namespace mta::mime {
namespace {

constexpr std::array<signed char, 256> make_base64_table() {
  std::array<signed char, 256> t{};
  for (auto& v : t) v = -1;
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < kAlphabet.size(); ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<signed char>(i);
  return t;
}
constexpr auto kBase64 = make_base64_table();

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// Bare LF line ends become CRLF, so that the decoder sees "=" LF as the soft break it is.
std::string crlf_line_ends(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

}  // namespace

TransferEncoding parse_transfer_encoding(std::string_view value) {
  const std::string v = core::to_lower_ascii(trim(value));
  if (v.empty() || v == "7bit") return TransferEncoding::k7Bit;
  if (v == "8bit") return TransferEncoding::k8Bit;
  if (v == "binary") return TransferEncoding::kBinary;
  if (v == "base64") return TransferEncoding::kBase64;
  if (v == "quoted-printable") return TransferEncoding::kQuotedPrintable;
  return TransferEncoding::kOther;
}

std::string decode_base64_lenient(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int n = 0;
  const auto flush = [&] {
    // 2 or 3 sextets left over carry 1 or 2 octets; a single one carries none.
    if (n == 2) out += static_cast<char>(acc >> 4);
    if (n == 3) {
      out += static_cast<char>(acc >> 10);
      out += static_cast<char>((acc >> 2) & 0xFF);
    }
    acc = 0;
    n = 0;
  };
  for (char ch : text) {
    if (ch == '=') {
      flush();
      continue;
    }
    const int v = kBase64[static_cast<unsigned char>(ch)];
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    if (++n == 4) {
      out += static_cast<char>(acc >> 16);
      out += static_cast<char>((acc >> 8) & 0xFF);
      out += static_cast<char>(acc & 0xFF);
      acc = 0;
      n = 0;
    }
  }
  flush();
  return out;
}

std::string decode_transfer_encoding(std::string_view body, TransferEncoding encoding) {
  switch (encoding) {
    case TransferEncoding::kBase64:
      return decode_base64_lenient(body);
    case TransferEncoding::kQuotedPrintable:
      return decode_quoted_printable(crlf_line_ends(body));
    default:
      return std::string(body);
  }
}

}  // namespace mta::mime
