#pragma once
// The text IMAP SEARCH compares (RFC 9051 §6.4.4): header values with RFC 2047 words decoded,
// and the content of text parts with their transfer encoding undone, all as UTF-8.
//
// SEARCH BODY looks at body_text_utf8(); SEARCH TEXT at header_text_utf8() of the root plus
// body_text_utf8(); SEARCH HEADER/FROM/SUBJECT at decode_header_value() of single fields
// (encoded_words.h). Matching (case folding, substrings) is the caller's.
//
// Pure; any thread.
// Limits: only text/* parts count (also inside attached messages); HTML is not stripped of
// its tags; attachments of other types are not searched; output stops at max_bytes.

#include <cstddef>
#include <string>
#include <string_view>

#include "mta/mime/mime_tree.h"

namespace mta::mime {

// One line "Name: decoded value\n" per field of a header section.
std::string header_text_utf8(std::string_view header_section);

// The content of one part: transfer encoding undone, and for text/* converted from its charset
// to UTF-8 (other types come back as the decoded octets).
std::string decoded_content(std::string_view message, const Part& part);

// The content of every text/* leaf in tree order, each followed by "\n", cut (on a character
// boundary) at max_bytes.
std::string body_text_utf8(std::string_view message, const MessageTree& tree, size_t max_bytes);

}  // namespace mta::mime
