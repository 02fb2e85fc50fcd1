#pragma once
// Header sections of stored mail as they really come: CRLF or bare LF line ends, folded
// values, and sometimes no empty line before the body.
//
// core/header.h reads the CRLF-only form the SMTP server receives; a stored message may have
// come through IMAP APPEND or an old mbox with bare LFs, and MIME parsing must not give up on
// it. A line that is neither a field nor a continuation ends the section and starts the body
// (as in core and in most MTAs); a continuation before any field is skipped.
//
// Everything returned views the caller's bytes. Pure; any thread.
// Limits: field names are printable ASCII without spaces (obsolete white space before the
// colon is accepted); one FieldLines per field, so a huge header costs a vector that size.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mta::mime {

struct FieldLines {
  std::string_view name;   // as written, e.g. "Content-Type"
  std::string_view value;  // after the colon, folding kept, up to its final line end
  std::string_view lines;  // the whole field from its name to its final line end, included
};

struct HeaderSection {
  size_t body_start = 0;  // offset past the empty line, or of the first line that is no field
  std::vector<FieldLines> fields;
};

HeaderSection read_header_section(std::string_view entity);

// The first field with this name (case-insensitive), or nullptr.
const FieldLines* find_field(const std::vector<FieldLines>& fields, std::string_view name);

// Value with every CR and LF removed (the folding) and surrounding blanks trimmed: what
// IMAP's ENVELOPE shows and what the MIME field parsers read.
std::string unfold_value(std::string_view value);

}  // namespace mta::mime
