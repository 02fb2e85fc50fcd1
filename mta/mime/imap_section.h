#pragma once
// BODY[section] addressing (RFC 9051 §6.4.5): reading a section spec and finding the bytes
// it names in a stored message, using the MIME tree (mime_tree.h).
//
// Part numbers: the parts of a multipart are 1..n; a message whose body is not multipart has
// one part, 1, its body; after a message/rfc822 (or message/global) part the numbers go on
// inside the encapsulated message. HEADER, HEADER.FIELDS[.NOT] and TEXT apply to the whole
// message, or after part numbers to an encapsulated message; MIME needs part numbers and
// names the header section of that part.
//
// Every section but HEADER.FIELDS[.NOT] is a slice of the stored bytes (no copy); those two
// are built: the matching fields as stored (folding kept), then the empty line, which RFC
// 9051 says is always included.
//
// Pure; any thread.
// Limits: a header field name in HEADER.FIELDS may be an atom or a quoted string, not a
// literal; at most 64 part numbers; partial fetches <o.n> are the caller's (slice the view).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "mta/mime/mime_tree.h"

namespace mta::mime {

struct SectionSpec {
  enum class Text { kNone, kHeader, kHeaderFields, kHeaderFieldsNot, kText, kMime };
  std::vector<uint32_t> path;  // part numbers, each >= 1; empty for the whole message
  Text text = Text::kNone;
  std::vector<std::string> fields;  // for kHeaderFields and kHeaderFieldsNot, as given
  bool operator==(const SectionSpec&) const = default;
};

// The text between "[" and "]", e.g. "", "1.2.MIME", "HEADER.FIELDS (From To)".
// Keywords are case-insensitive. Invalid (for a BAD reply) on anything else.
core::Result<SectionSpec> parse_section(std::string_view spec);

struct SectionBytes {
  std::optional<ByteRange> range;  // a slice of the message, or
  std::string built;               // (HEADER.FIELDS[.NOT]) these bytes

  std::string_view view(std::string_view message) const {
    return range ? range->of(message) : std::string_view(built);
  }
};

// NotFound when a part number does not exist or a HEADER/TEXT follows part numbers that do
// not name a message/rfc822 part (RFC 9051 leaves the reply to the server: Dovecot and
// Cyrus send an empty string).
core::Result<SectionBytes> find_section(std::string_view message, const MessageTree& tree,
                                        const SectionSpec& spec);

}  // namespace mta::mime
