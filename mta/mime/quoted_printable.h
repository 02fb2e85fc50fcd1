#pragma once
// Quoted-Printable (RFC 2045 §6.7) for text bodies: how Porter sends a text part that holds
// UTF-8 through any mail path (7bit-safe, lines of at most 76 characters).
//
// Pure functions; any thread.
// Limits: the encoder treats CRLF as a hard line break and any other CR or LF as data
// (encoded); it does not protect "From " or a leading "." (SMTP dot-stuffing does the latter).

#include <string>
#include <string_view>

namespace mta::mime {

std::string encode_quoted_printable(std::string_view text);
// Lenient, as RFC 2045 §6.7 note (1) suggests: "=XX" (either case) is decoded, "=" CRLF
// (soft break) removed, any other "=" kept as it is.
std::string decode_quoted_printable(std::string_view text);

}  // namespace mta::mime
