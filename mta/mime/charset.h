#pragma once
// Text in a MIME charset (RFC 2046 §4.1.2, RFC 2047, RFC 2231) turned into UTF-8, so that
// SEARCH compares one encoding and clients can be shown one encoding.
//
// to_utf8() always returns well-formed UTF-8, whatever the input:
// - "utf-8" and "us-ascii" (and their aliases) are checked, not converted: 8-bit bytes in
//   mail labelled us-ascii are nearly always UTF-8;
// - "iso-8859-1" is read as windows-1252, its superset, as every browser and mail reader does;
// - other charsets go through glibc iconv; a sequence iconv cannot convert becomes U+FFFD;
// - an unknown charset (or none) keeps well-formed UTF-8 as it is and replaces every other
//   8-bit byte with U+FFFD. Guessing latin-1 instead would show wrong letters for the many
//   other 8-bit charsets; U+FFFD says plainly that something could not be read.
//
// Thread safety: any thread; each thread keeps its own small cache of iconv descriptors.
// Limits: the output is at most a few times the input (U+FFFD is 3 bytes for 1 input byte).

#include <string>
#include <string_view>

namespace mta::mime {

// `charset` as in a MIME parameter or an encoded word, case-insensitive; an RFC 2231
// language suffix ("utf-8*en") is ignored.
std::string to_utf8(std::string_view bytes, std::string_view charset);

// Well-formed UTF-8 kept, every byte of an ill-formed sequence replaced with U+FFFD.
std::string sanitize_utf8(std::string_view bytes);

// True if to_utf8() converts this charset rather than treating it as unknown.
bool is_known_charset(std::string_view charset);

}  // namespace mta::mime
