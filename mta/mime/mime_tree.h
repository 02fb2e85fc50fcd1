#pragma once
// A stored message parsed once into its MIME tree (RFC 2045, RFC 2046): every part with the
// byte offsets of its header section and body and what its MIME header fields say, so that
// IMAP can answer BODY[section] by slicing the stored bytes and build BODYSTRUCTURE without
// reading the message again.
//
// Shape: the root is the message itself. A multipart part has its parts as children; a
// message/rfc822 (or message/global) part has exactly one child, the encapsulated message
// (its header section is that message's header). Every other part is a leaf.
//
// Mail is taken as it comes, never refused (RFC 2045 §5.2 and RFC 2046 §5.1 defaults, and
// what other servers do with broken mail):
// - a missing or unreadable Content-Type is text/plain; charset=us-ascii (message/rfc822
//   inside multipart/digest); an unreadable parameter is dropped, not the type;
// - an unknown or malformed Content-Transfer-Encoding reads as "7bit";
// - a multipart without a boundary, or whose boundary never occurs, has one child: a
//   text/plain part with no header fields holding the whole body, so clients still show
//   the text; without a close delimiter the last part runs to the end of the body;
// - message/rfc822 content is parsed as a message even if (against RFC 2046 §5.2.1) it has a
//   base64 or quoted-printable encoding;
// - CRLF and bare LF line ends are both read; offsets are always of the stored bytes.
//
// Pure; any thread; the tree holds offsets only, so it is valid for the exact bytes it was
// built from.
// Limits: containers nested deeper than kMaxMimeDepth are leaves, and after kMaxMimeParts
// parts no more are made (the rest stays inside their parent's body); `limited` records
// either. Work is O(depth x size) (each level scans its own body once).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/mime/multipart.h"
#include "mta/mime/transfer_encoding.h"

namespace mta::mime {

inline constexpr size_t kMaxMimeDepth = 50;
inline constexpr size_t kMaxMimeParts = 10000;

enum class PartKind { kLeaf, kMultipart, kMessage };

struct Part {
  PartKind kind = PartKind::kLeaf;
  ByteRange header;  // the header section, with the empty line that ends it (may be empty)
  ByteRange body;
  ContentType type;      // as declared, or the default (see above)
  std::string encoding;  // Content-Transfer-Encoding token, lower case; "7bit" by default
  std::optional<Disposition> disposition;
  std::vector<std::string> languages;      // Content-Language tags, as written
  std::optional<std::string> id;           // Content-ID, unfolded
  std::optional<std::string> description;  // Content-Description, unfolded, not decoded
  std::optional<std::string> location;     // Content-Location, unfolded
  std::optional<std::string> md5;          // Content-MD5, unfolded
  uint64_t lines = 0;  // LF count of the body; set for text/* leaves and message parts
  std::vector<Part> children;

  TransferEncoding transfer_encoding() const { return parse_transfer_encoding(encoding); }
};

struct MessageTree {
  Part root;
  size_t part_count = 1;
  bool limited = false;  // kMaxMimeDepth or kMaxMimeParts was reached
};

MessageTree parse_message(std::string_view message);

}  // namespace mta::mime
