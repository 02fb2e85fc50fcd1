#pragma once
// Where mail for a domain goes: MX ordering (RFC 5321 §5.1, RFC 7505) and the route, the
// ordered list of (host, address) pairs a delivery attempt tries in turn.
//
// order_mx is pure. resolve_route asks a Resolver for the MX records, then A and AAAA of each
// host (all at once), and reports facts as a RouteOutcome; the caller's failure policy maps
// them to replies (the RFC 3463 codes beside each outcome are what the RFCs ask for).
//
// Threading/lifetime: resolve_route calls back on the resolver's thread, never inside the
// call. The resolver and the rng must outlive the callback; if the resolver is destroyed
// first, the callback is never called.
//
// Limits: "ourselves" is recognised by host name only (options.self_names), not by address;
// domain literals ("[192.0.2.1]") are the caller's business; an MX host that is an address
// literal is looked up as a name (RFC 5321 §5.1 forbids it), so it usually finds nothing.

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dns/resolver.h"

namespace dns {

enum class MxOutcome {
  kOk,           // hosts: the ones to try, in order
  kNullMx,       // RFC 7505 null MX: the domain accepts no mail (556 5.1.10)
  kLoopsToSelf,  // we are the most preferred MX: mail would loop back to us (5.4.6)
};

struct MxOrder {
  MxOutcome outcome = MxOutcome::kOk;
  std::vector<MxRecord> hosts;
};

// Ascending preference, random order among equal preferences. A single record "." of
// preference 0 is a null MX; a "." among other records is dropped (RFC 7505 §3 forbids the
// mix, and no mail can be delivered to the root). If a name of self_names is in the list,
// only hosts of strictly lower preference value are kept (RFC 5321 §5.1); none left means
// kLoopsToSelf. Names compare case-insensitively, with or without a trailing dot.
MxOrder order_mx(std::vector<MxRecord> records, std::mt19937& rng,
                 const std::vector<std::string>& self_names);

enum class RouteOutcome {
  kOk,            // hops non-empty
  kNoSuchDomain,  // NXDOMAIN (or an unusable name) for the domain: permanent (5.1.2)
  kNullMx,        // 556 5.1.10 (RFC 7505 §4)
  kLoopsToSelf,   // permanent (5.4.6)
  kUnroutable,    // the MX hosts (or the implicit MX) have no address at all: permanent (5.4.4)
  kTemporary,     // SERVFAIL or timeout on the way, nothing to try: defer, never bounce (4.4.3)
};

struct RouteHop {
  std::string host;  // MX host name, for logs and the TLS name check
  std::string ip;    // "192.0.2.1" or "2001:db8::1"
  uint16_t preference = 0;

  bool operator==(const RouteHop&) const = default;
};

struct Route {
  RouteOutcome outcome = RouteOutcome::kOk;
  std::vector<RouteHop> hops;
  std::string detail;  // why, for logs and DSNs, when outcome is not kOk
};

struct RouteOptions {
  std::vector<std::string> self_names;  // our own host names, for the loop check
  bool use_ipv4 = true;
  bool use_ipv6 = true;
  bool prefer_ipv6 = true;  // within one host, try its IPv6 addresses before its IPv4 ones
};

// MX, then the addresses of every host. No MX records (NODATA) means the implicit MX: the
// domain itself at preference 0 (RFC 5321 §5.1). A host whose address lookups fail
// temporarily is skipped; only if no host has an address is that kTemporary. An address
// already listed for a more preferred host is not repeated.
void resolve_route(Resolver& resolver, const std::string& domain, const RouteOptions& options,
                   std::mt19937& rng, std::function<void(Route)> done);

}  // namespace dns
