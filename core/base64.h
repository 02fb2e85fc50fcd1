#pragma once
// Base64 (RFC 4648 §4) for SASL exchanges in SMTP, POP3 and IMAP.
//
// decode_base64() is strict: padding required, no white space, no characters outside the
// alphabet; SASL (RFC 4954 §4) wants a malformed response rejected, not guessed at.

#include <optional>
#include <string>
#include <string_view>

namespace core {

std::string encode_base64(std::string_view data);
std::optional<std::string> decode_base64(std::string_view text);

}  // namespace core
