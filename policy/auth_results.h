#pragma once
// The Authentication-Results header field (RFC 8601): writing ours, and removing any that
// arrives claiming to be ours.
//
// authentication_results() writes one field, "Authentication-Results: ID; m1=r1 ...;
// m2=r2 ...\r\n", or "Authentication-Results: ID; none\r\n" when there is no entry (§2.2).
// The field is folded before a unit that would carry its line past 78 columns (RFC 5322
// §2.1.1), with the same style as our Received field (CRLF TAB). Property values and reasons
// are written as they are when the grammar allows (a token, or local-part@domain) and as a
// quoted-string otherwise; comments have their parentheses and backslashes escaped.
// Control characters (CR, LF, NUL, ...) in any caller text are dropped, so no input can end
// the field. Method, result and property names are keywords chosen by our code; anything
// outside [A-Za-z0-9._-] in them is dropped for the same reason.
//
// remove_our_auth_results() implements §5: before we add ours, every Authentication-Results
// field whose authserv-id equals ours (case-insensitive; comments and white space before it
// skipped) is removed; every other byte of the header section is kept as it was.
//
// Pure functions; any thread.
// Limits: no authres-version is written (version 1 is implied); "none" is written only for
// an empty list, never mixed with results. remove_our_auth_results() leaves fields whose
// authserv-id cannot be read (a forgery cannot hide behind that: a receiver reading the
// field needs the id just as much).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace policy {

struct AuthResultEntry {
  std::string method;   // "spf", "dkim", "dmarc", "auth", "iprev"
  std::string result;   // "pass", "fail", "none", "temperror", ...
  std::string comment;  // optional, written in parentheses after the result: "p=reject"
  std::string reason;   // optional reasonspec: reason="..."
  // ptype.property = value, in order: {"smtp.mailfrom", "a@example.com"},
  // {"header.d", "example.com"}, {"header.s", "sel"}.
  std::vector<std::pair<std::string, std::string>> properties;
};

// One complete field, ending in CRLF.
std::string authentication_results(std::string_view authserv_id,
                                   const std::vector<AuthResultEntry>& entries);

// `header_section` as received (CRLF line ends; the empty line that ends it may be included)
// without our forged fields.
std::string remove_our_auth_results(std::string_view header_section, std::string_view authserv_id);

}  // namespace policy
