#pragma once
// RFC 5322 header sections: where they end and what fields they hold.
//
// The input is a message as bytes with CRLF line ends. header_end() finds the empty line
// that ends the header section; parse_header_fields() splits the section into fields,
// keeping each value raw (folding CRLFs included) so that it can be written back unchanged.
//
// Limits: obsolete syntax (white space before the colon) is accepted; a line without a
// colon ends the section, as in most MTAs. No decoding of RFC 2047 words (mta/mime does).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace core {

struct HeaderField {
  std::string_view name;   // as written, e.g. "Message-ID"
  std::string_view value;  // after the colon up to (not including) the final CRLF
};

// Offset just past the CRLF CRLF (or the first line without a colon) that ends the header
// section, or nullopt if the section has not ended within `msg`.
std::optional<size_t> header_end(std::string_view msg);
std::vector<HeaderField> parse_header_fields(std::string_view section);
// The first field with this name (case-insensitive), or nullptr.
const HeaderField* find_field(const std::vector<HeaderField>& fields, std::string_view name);
// Value with folding removed and surrounding white space trimmed.
std::string unfold(std::string_view value);

}  // namespace core
