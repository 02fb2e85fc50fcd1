#pragma once
// Mailbox names: what the store accepts as a name and how names form a hierarchy, with "/"
// as the separator (RFC 9051 §5.1, §6.3.4).
//
// A name is UTF-8 (IMAP4rev2 names; the IMAP layer turns IMAP4rev1 modified UTF-7 into
// UTF-8 before it gets here) of 1 to kMaxNameSize bytes, made of components separated by
// single "/". Refused, as kInvalid with a reason a client can be shown:
//   an empty name or component ("", "a//b", "/a", "a/"), a "." or ".." component, bytes
//   that are not well-formed UTF-8, control characters (C0, DEL and C1), and "%" and "*"
//   (LIST wildcards, RFC 9051 §6.3.9: a name holding them could never be listed alone;
//   Dovecot refuses them too).
// "INBOX" is case-insensitive (RFC 9051 §5.1), also as the first component of an inferior
// name ("inbox/x" is "INBOX/x"); every other component is case-sensitive.
//
// Pure functions; any thread.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mta::mailbox {

inline constexpr std::string_view kInbox = "INBOX";
inline constexpr char kSeparator = '/';
inline constexpr size_t kMaxNameSize = 255;

// "INBOX" for any case of it as the whole name or its first component; otherwise unchanged.
std::string canonical_name(std::string_view name);

// Ok, or kInvalid saying what is wrong with the name.
core::Status validate_name(std::string_view name);

// True when `name` lies below `parent` ("a/b/c" below "a/b" and "a"; not "ab" below "a").
bool is_inferior(std::string_view name, std::string_view parent);

// The superior names of `name`, outermost first: "a/b/c" -> {"a", "a/b"}.
std::vector<std::string> superiors(std::string_view name);

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_utf8(std::string_view s);

}  // namespace mta::mailbox
