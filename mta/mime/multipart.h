#pragma once
// Reading MIME structure (RFC 2045, RFC 2046): a Content-Type value, one entity split into
// header fields and body, and a multipart body split into its parts.
//
// Everything returned views the caller's bytes (except ContentType, which owns its strings):
// keep the input alive while using the result. No I/O; any thread.
// Limits: no RFC 2231 parameter continuations or charsets; comments "(...)" in a
// Content-Type are not removed; nested multiparts are split one level per call.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/header.h"
#include "core/status.h"

namespace mta::mime {

struct ContentType {
  std::string type;                                         // lower case: "multipart"
  std::string subtype;                                      // lower case: "report"
  std::vector<std::pair<std::string, std::string>> params;  // name lower case, value unquoted

  std::optional<std::string> param(std::string_view name) const;  // name case-insensitive
  bool is(std::string_view t, std::string_view sub) const;
};

// RFC 2045 §5.1: type "/" subtype *(";" attribute "=" value), value a token or a quoted
// string. Accepts the raw (folded) field value. nullopt when type or subtype is missing.
std::optional<ContentType> parse_content_type(std::string_view value);

struct Entity {
  std::vector<core::HeaderField> fields;
  std::string_view body;  // after the empty line that ends the header section
};

// A message or body part as header fields and body (CRLF line ends). A part without header
// fields starts with its empty line (RFC 2046 §5.1.1), which this accepts.
Entity split_entity(std::string_view entity);

// RFC 2046 §5.1.1: the parts between "--boundary" lines, each without the CRLF that belongs
// to the next delimiter; the preamble and epilogue are dropped. Invalid when there is no
// opening delimiter or no close delimiter "--boundary--".
core::Result<std::vector<std::string_view>> split_multipart(std::string_view body,
                                                            std::string_view boundary);

}  // namespace mta::mime
