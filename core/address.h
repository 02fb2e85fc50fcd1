#pragma once
// Mail addresses as SMTP carries them (RFC 5321 §4.1.2), with SMTPUTF8 (RFC 6531).
//
// Address holds a local part exactly as sent (case preserved: only the receiving host may
// interpret it, RFC 5321 §2.4) and a domain folded to lower case. An empty Address is the
// null reverse-path "<>". parse_path() accepts "<...>" with an optional (ignored) source
// route; parse_mailbox() the bare "local@domain" form.
//
// Limits: length limits of RFC 5321 §4.5.3.1 are enforced (64 local, 255 domain, 256 path);
// IDNA conversion is not done (U-labels are kept as UTF-8 and only checked to be UTF-8).

#include <string>
#include <string_view>

#include "core/status.h"

namespace core {

struct Address {
  std::string local;
  std::string domain;  // lower case; may be an address literal "[192.0.2.1]"

  bool empty() const { return local.empty() && domain.empty(); }
  // "local@domain", or "" for the null path.
  std::string str() const;
  // True if either part holds non-ASCII bytes, i.e. the address needs SMTPUTF8.
  bool needs_utf8() const;
  bool operator==(const Address&) const = default;
};

// "<local@domain>", "<@a,@b:local@domain>" or "<>" (null path only when allow_null).
Result<Address> parse_path(std::string_view path, bool allow_utf8, bool allow_null);
// "local@domain" with a Dot-string or Quoted-string local part.
Result<Address> parse_mailbox(std::string_view mailbox, bool allow_utf8);
// A host name of LDH labels (or UTF-8 U-labels when allow_utf8), or an address literal.
bool is_valid_domain(std::string_view domain, bool allow_utf8);
// True for well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view s);
// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629 §4: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 when there is none.
size_t utf8_sequence_length(std::string_view s);
std::string to_lower_ascii(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

}  // namespace core
