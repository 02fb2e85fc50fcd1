#pragma once
// Header text as a person reads it: RFC 2047 encoded words ("=?utf-8?Q?caf=C3=A9?=") and
// RFC 2231 parameter values (continuations "name*0", "name*1"; charsets
// "name*=utf-8'en'caf%C3%A9"), all turned into UTF-8.
//
// Decoding is what SEARCH and display need; IMAP's ENVELOPE and BODYSTRUCTURE carry the raw
// forms (clients decode), which is why merge_rfc2231() keeps the charset form undecoded.
//
// Leniency, because real mail needs it: an encoded word is decoded wherever it appears
// (also inside a quoted string or glued to other text), adjacent encoded words in the same
// charset are joined before conversion (senders split multibyte characters across words),
// and white space between encoded words is dropped (RFC 2047 §6.2). Bytes that are no
// well-formed UTF-8 become U+FFFD (see charset.h).
//
// Pure functions; any thread.
// Limits: an encoded word must not contain white space; RFC 2231 sections are joined in
// numeric order up to section 999, later ones are dropped.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mta::mime {

// MIME parameters in order: name (lower case) and value (unquoted).
using Params = std::vector<std::pair<std::string, std::string>>;

// RFC 2047 words in `text` decoded; everything else kept (8-bit bytes made valid UTF-8).
std::string decode_encoded_words(std::string_view text);

// A raw header value (folding included) unfolded and decoded as above.
std::string decode_header_value(std::string_view raw_value);

// RFC 2231 §3-4: continuations joined into one parameter. A value with a charset keeps its
// form: the result holds "name*" -> "charset'language'percent-encoded" (any plain sections
// percent-encoded into it), the form clients expect in BODYSTRUCTURE. Plain parameters pass
// unchanged; for a repeated name the first wins.
Params merge_rfc2231(const Params& raw);

// "utf-8'en'caf%C3%A9" -> "café". A value without the two quotes is taken as percent-encoded
// text in an unknown charset.
std::string decode_rfc2231_value(std::string_view value);

// The decoded value of parameter `name` of merged params: "name*" if present, else "name"
// with any RFC 2047 words decoded (a common violation, e.g. filename="=?utf-8?B?...?=").
std::optional<std::string> param_utf8(const Params& merged, std::string_view name);

}  // namespace mta::mime
