#pragma once
// RFC 5322 §3.4 address lists (From, To, Cc ...) read the way IMAP's ENVELOPE needs them:
// each mailbox as display name, source route, local part and domain, and groups as a start
// and an end marker (RFC 9051 §7.5.2).
//
// Lenient, because the fields are written by every program there is: obsolete syntax
// (routes "<@a,@b:user@host>", "John Q. Public" phrases, empty list members) is read; a
// comment after a bare address becomes the display name when there is none ("user@host
// (Real Name)"); 8-bit bytes are kept (RFC 6532); a member that has no "@" keeps its text as
// the local part with an empty domain; an unterminated quoted string, comment or "<" runs to
// the end of the field.
// Display names stay raw: RFC 2047 words are not decoded (clients decode them; for SEARCH
// use encoded_words.h) and quoted strings are unquoted (quoted-pairs resolved).
//
// Pure; any thread.
// Limits: a local part that was a quoted string is returned unquoted, so "a b"@x and a b@x
// read the same; nested groups (not valid) are flattened.

#include <string>
#include <string_view>
#include <vector>

namespace mta::mime {

struct MailAddress {
  enum class Kind { kMailbox, kGroupStart, kGroupEnd };
  Kind kind = Kind::kMailbox;
  std::string name;     // display name; for kGroupStart the group's name; "" if none
  std::string route;    // obsolete source route "@a,@b"; "" if none
  std::string mailbox;  // local part; "" if none
  std::string host;     // domain ("[192.0.2.1]" for a literal); "" if none
  bool operator==(const MailAddress&) const = default;
};

// `value` is the raw (folded) field value.
std::vector<MailAddress> parse_address_list(std::string_view value);

}  // namespace mta::mime
