#pragma once
// IMAP's views of a parsed message (RFC 9051 §7.5.2): the ENVELOPE and the BODY /
// BODYSTRUCTURE values, as the exact text that follows "ENVELOPE " or "BODYSTRUCTURE " in a
// FETCH response, so that the store can compute them once at delivery.
//
// Strings follow RFC 9051 §4.3: a quoted string ("\" and '"' escaped) when every octet may
// stand in one, else a literal "{n}\r\n" and the octets. With `utf8` (the client enabled
// UTF8=ACCEPT, RFC 9051 §6.3.1 / RFC 6855) well-formed UTF-8 may be quoted too; 8-bit bytes
// otherwise force a literal. NUL octets are dropped (no IMAP string may carry them).
//
// ENVELOPE: raw header values (unfolded, not RFC 2047-decoded, as RFC 9051 wants; clients
// decode); the first field of each name counts; Sender and Reply-To fall back to From when
// absent or without addresses; a group is (NIL NIL "name" NIL) ... (NIL NIL NIL NIL). An
// address without a domain or local part gets "MISSING_DOMAIN" / "MISSING_MAILBOX" (as
// Dovecot does), because NIL there would read as group syntax.
//
// BODYSTRUCTURE: type, subtype, encoding and attribute names in upper case (values as
// written); text parts without a charset get ("CHARSET" "us-ascii"); body-fld-octets is the
// size of the stored body and body-fld-lines its count of LF characters; MD5 is the
// Content-MD5 value or NIL (Porter computes none); RFC 2231 parameters appear as
// mime_tree.h keeps them ("FILENAME*" "utf-8''..."). A container the tree made a leaf
// (depth or part limit) is shown as "APPLICATION" "OCTET-STREAM".
//
// Pure; any thread. Limits: output is linear in the message size.

#include <optional>
#include <string>
#include <string_view>

#include "mta/mime/mime_tree.h"

namespace mta::mime {

// RFC 9051 §4.3 string, appended to `out`.
void append_imap_string(std::string& out, std::string_view s, bool utf8);
// NIL for nullopt.
void append_imap_nstring(std::string& out, const std::optional<std::string>& s, bool utf8);

// `message_part` is the tree's root or the child of a message/rfc822 part.
std::string imap_envelope(std::string_view message, const Part& message_part, bool utf8);

// BODYSTRUCTURE with `extended`, else BODY, of `part` (usually the tree's root).
std::string imap_body_structure(std::string_view message, const Part& part, bool extended,
                                bool utf8);

}  // namespace mta::mime
