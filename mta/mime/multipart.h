#pragma once
// Reading MIME structure (RFC 2045, RFC 2046, RFC 2183): Content-Type and
// Content-Disposition values, one entity split into header fields and body, and a multipart
// body split into its parts.
//
// Everything returned views the caller's bytes (except ContentType and Disposition, which
// own their strings): keep the input alive while using the result. No I/O; any thread.
//
// Parameters come back with RFC 2231 continuations joined (encoded_words.h,
// merge_rfc2231()); comments "(...)" between the items of a value are skipped.
// Two strictnesses: kStrict refuses a value with any syntax error (for mail Porter composes
// and checks, such as DSNs); kLenient keeps what can be read (for stored mail, where a broken
// parameter must not hide the type): a parameter without "=" is dropped, an unquoted value
// with spaces or 8-bit bytes runs to the next ";", an unterminated quoted string to the end.
//
// find_parts() is the lenient splitter the MIME tree uses: CRLF or bare LF lines, a missing
// close delimiter (the last part runs to the end), a cap on the number of parts.
// Limits: nested multiparts are split one level per call.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/header.h"
#include "core/status.h"
#include "mta/mime/encoded_words.h"

namespace mta::mime {

enum class Syntax { kStrict, kLenient };

struct ContentType {
  std::string type;     // lower case: "multipart"
  std::string subtype;  // lower case: "report"
  Params params;        // name lower case, value unquoted, RFC 2231 continuations joined

  std::optional<std::string> param(std::string_view name) const;  // name case-insensitive
  bool is(std::string_view t, std::string_view sub) const;
};

// RFC 2045 §5.1: type "/" subtype *(";" attribute "=" value), value a token or a quoted
// string. Accepts the raw (folded) field value. nullopt when type or subtype is missing (in
// either mode) or, for kStrict, on any syntax error.
std::optional<ContentType> parse_content_type(std::string_view value,
                                              Syntax syntax = Syntax::kStrict);

struct Disposition {
  std::string type;  // lower case: "attachment", "inline"
  Params params;     // as for ContentType
};

// RFC 2183 §2: disposition-type *(";" parameter), read leniently; nullopt without a type.
std::optional<Disposition> parse_content_disposition(std::string_view value);

struct Entity {
  std::vector<core::HeaderField> fields;
  std::string_view body;  // after the empty line that ends the header section
};

// A message or body part as header fields and body (CRLF line ends). A part without header
// fields starts with its empty line (RFC 2046 §5.1.1), which this accepts.
Entity split_entity(std::string_view entity);

// RFC 2046 §5.1.1: the parts between "--boundary" lines, each without the line end that
// belongs to the next delimiter; the preamble and epilogue are dropped. Invalid when there is
// no opening delimiter or no close delimiter "--boundary--".
core::Result<std::vector<std::string_view>> split_multipart(std::string_view body,
                                                            std::string_view boundary);

// Offsets [begin, end) into some text.
struct ByteRange {
  size_t begin = 0;
  size_t end = 0;

  size_t size() const { return end - begin; }
  std::string_view of(std::string_view text) const { return text.substr(begin, end - begin); }
  bool operator==(const ByteRange&) const = default;
};

struct MultipartLayout {
  std::vector<ByteRange> parts;  // offsets into the body, as split_multipart() cuts them
  bool opened = false;           // an opening delimiter was seen
  bool closed = false;           // the close delimiter was seen
};

// The lenient form of split_multipart(): never fails. Without a close delimiter the last part
// runs to the end of the body; a close delimiter before any part ends the search with no
// parts. After `max_parts` parts no further delimiter is recognised, so the last part takes
// the rest of the body. An empty boundary finds nothing; unlike split_multipart(), one over
// RFC 2046's 70 characters is accepted (up to a line's 998).
MultipartLayout find_parts(std::string_view body, std::string_view boundary, size_t max_parts);

}  // namespace mta::mime
