#pragma once
// SPF records (RFC 7208 §4.5, §4.6, §5, §6): recognising the SPF record among a name's TXT
// strings and parsing it, whole, into mechanisms and modifiers.
//
// The whole record is checked before anything is evaluated, so a syntax error after a
// matching mechanism is still a permerror (§4.6). Checked: the version, every term's syntax
// (mechanism names, qualifiers, domain-specs and their macros, ip4/ip6 networks without
// leading zeros, CIDR lengths in range and without leading zeros), unknown modifier names
// and values, and redirect= / exp= at most once each (§6). Names are case-insensitive.
// Unknown modifiers are checked and then dropped (§6).
//
// Pure functions; any thread.
// Limits: the record is ASCII (§3.1); any other byte is a syntax error. The DNS lookup
// limits are counted at evaluation time (policy/spf.h), not here.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace policy {

// The result a mechanism gives when it matches (§4.6.2).
enum class SpfQualifier : char { kPass = '+', kFail = '-', kSoftFail = '~', kNeutral = '?' };

enum class SpfMechanismKind { kAll, kInclude, kA, kMx, kPtr, kIp4, kIp6, kExists };

struct SpfMechanism {
  SpfQualifier qualifier = SpfQualifier::kPass;
  SpfMechanismKind kind = SpfMechanismKind::kAll;
  std::string domain_spec;            // include, a, mx, ptr, exists; empty: <domain>
  std::array<uint8_t, 16> network{};  // ip4 (bytes 0..3) and ip6
  int cidr4 = 32;                     // a, mx, ip4
  int cidr6 = 128;                    // a, mx, ip6
  std::string text;                   // the term as written, for results and logs
};

struct SpfRecord {
  std::vector<SpfMechanism> mechanisms;  // in record order
  std::optional<std::string> redirect;   // domain-spec of redirect=
  std::optional<std::string> exp;        // domain-spec of exp=
};

// True when `txt` is an SPF record: "v=spf1" (any case) followed by a space or the end
// (§4.5). "v=spf10" is not one.
bool is_spf_record(std::string_view txt);

// The parsed record; Status::invalid naming the offending term otherwise.
core::Result<SpfRecord> parse_spf_record(std::string_view txt);

}  // namespace policy
