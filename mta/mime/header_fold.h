#pragma once
// Writing header fields that carry text Porter does not control (a remote server's reply,
// an address, an envelope ID), so that the text stays inside its field.
//
// sanitize_field_text() makes the text one line of printable characters; fold_field() writes
// "Name: value" CRLF, folded (RFC 5322 §2.2.3) so that lines stay near 78 octets and never
// exceed 998 (§2.1.1). Pure functions; any thread.
// Limits: no RFC 2047 encoded-words; a value with UTF-8 is only legal where RFC 6532 allows it
// (message/global, or a message sent with SMTPUTF8), which is the caller's choice.

#include <cstddef>
#include <string>
#include <string_view>

namespace mta::mime {

constexpr size_t kFoldWidth = 78;       // RFC 5322 §2.1.1 SHOULD
constexpr size_t kMaxLineOctets = 998;  // RFC 5322 §2.1.1 MUST, CRLF excluded

// Controls (CR, LF, NUL, TAB, DEL ...) become spaces, runs of spaces collapse to one, and the
// ends are trimmed. Bytes >= 0x80 are kept when allow_utf8 and they form well-formed UTF-8;
// otherwise each such byte becomes '?'. At most max_octets octets are kept (cut on a
// character boundary, "..." appended) so that one hostile reply cannot grow a message.
std::string sanitize_field_text(std::string_view text, bool allow_utf8, size_t max_octets = 4096);

// "Name: value\r\n", folded at spaces. `value` must already be one line (sanitize it first).
// A run without spaces that would pass 998 octets is split by a fold; unfolding then shows a
// space inside that run, which is acceptable for free text and the only legal choice.
std::string fold_field(std::string_view name, std::string_view value);

// True if `s` is all ASCII (no byte >= 0x80).
bool is_ascii(std::string_view s);

// The largest length <= n at which `s` can be cut without splitting a UTF-8 sequence.
size_t utf8_cut(std::string_view s, size_t n);

}  // namespace mta::mime
