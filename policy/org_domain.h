#pragma once
// The Organizational Domain of a DNS name (RFC 7489 §3.2), from the Public Suffix List.
//
// The list is Debian's publicsuffix package file (kPublicSuffixFile), read by libpsl once, on
// first use; if that file cannot be read, libpsl's built-in copy is used instead. The rules
// of both sections (ICANN and private, e.g. "github.io") count as public suffixes, so
// "a.github.io" and "b.github.io" are two organisations, as DMARC wants.
//
// Threading: any thread; the list is loaded under the static-initialisation guard and then
// only read.
//
// Limits: ASCII (A-label) names only, as dns/ hands them; no IDNA conversion. A name that is
// itself a public suffix ("co.uk") has no label to add (§3.2 step 3) and is returned as is.

#include <string>
#include <string_view>

namespace policy {

inline constexpr const char* kPublicSuffixFile = "/usr/share/publicsuffix/public_suffix_list.dat";

// "a.b.example.co.uk" -> "example.co.uk". The result is in lower case without a trailing
// dot; so is `domain` when it is a public suffix, unknown to the list's rules, or empty.
std::string organizational_domain(std::string_view domain);

}  // namespace policy
