#pragma once
// SPF macros (RFC 7208 §7): checking and expanding macro-strings and domain-specs.
//
// A record's macro-strings are checked when it is parsed (check_macro_string,
// check_domain_spec), so a syntax error anywhere in a record is a permerror before any
// mechanism runs (§4.6); they are expanded (expand_macros) when a term needs them, with the
// values of that moment (<domain> changes across include and redirect).
//
// Where a macro-string appears decides what it may hold (§7.1): the letters c, r and t only
// in explanation text (the TXT record that exp= points at), which may also hold spaces
// (explain-string, §6.2). Everything else (domain-specs, unknown modifiers) is kDomain.
//
// Pure functions; any thread.
// Limits: %{p} needs DNS, so it is not resolved here: the caller validates the client's PTR
// names first and passes the chosen one in MacroValues::validated_name. A transformer digit
// above 128 (the RFC asks for at least 128) keeps every part, as any count larger than the
// number of parts does.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/cidr.h"
#include "core/status.h"

namespace policy {

enum class MacroContext { kDomain, kExplanation };

// The values the macro letters stand for (§7.3).
struct MacroValues {
  std::string sender;                      // s: "local-part@domain"
  std::string local_part;                  // l ("postmaster" when <sender> had none, §4.3)
  std::string sender_domain;               // o
  std::string domain;                      // d: the domain whose record is being evaluated
  core::IpAddress ip;                      // i, c, v
  std::string helo;                        // h
  std::string validated_name = "unknown";  // p
  std::string receiver;                    // r
  int64_t timestamp = 0;                   // t: seconds since the Unix epoch
};

// Status::invalid with the reason when `text` is not a macro-string valid in `where`.
core::Status check_macro_string(std::string_view text, MacroContext where);

// domain-spec = macro-string domain-end, domain-end = ("." toplabel ["."]) / macro-expand
// (§7.1): a literal name must end in a top label that is not all digits ("a:192.0.2.1" is a
// classic publishing mistake), and an empty domain-spec is an error.
core::Status check_domain_spec(std::string_view text);

// True when a valid macro-string uses `letter` (either case), e.g. 'p' to know whether the
// PTR names must be validated before expanding.
bool uses_macro_letter(std::string_view text, char letter);

// The expansion of a macro-string valid in `where` (it is checked again: an invalid one is
// Status::invalid, never a partial result).
core::Result<std::string> expand_macros(std::string_view text, const MacroValues& values,
                                        MacroContext where);

// An expanded domain-spec as a name to query: without its trailing dot, and shortened from
// the left, label by label, until it fits in 253 characters (§7.3).
std::string query_name(std::string_view expanded);

// %{i}: the dotted quad of IPv4, the 32 dot-separated nibbles of IPv6 (§7.3), lower case as
// in the §7.4 examples.
std::string dotted_ip(const core::IpAddress& ip);

// The name to ask for PTR records of `ip`: %{ir}.%{v}.arpa.
std::string reverse_name(const core::IpAddress& ip);

}  // namespace policy
