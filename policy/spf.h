#pragma once
// SPF (RFC 7208): check_host() evaluated asynchronously over dns::Resolver.
//
// Written by hand because no Debian-packaged SPF library runs on our event loop (libspf2
// resolves with blocking calls). One evaluation:
//   - looks up the TXT records of <domain>, selects the one "v=spf1" record (none: "none",
//     several: permerror, §4.5), parses all of it first (a syntax error anywhere: permerror),
//   - evaluates mechanisms left to right (all, include, a, mx, ptr, ip4, ip6, exists with
//     their dual CIDR lengths), then redirect=; on "fail" fetches the exp= explanation (§6.2)
//     of the record that decided (never of an included one; redirect replaces it),
//   - expands macros (policy/spf_macro.h), resolving %{p} through validated PTR names.
// Limits enforced (§4.6.4), each one a permerror when exceeded: 10 terms that cause DNS
// lookups (include, a, mx, ptr, exists, redirect; they bound include/redirect loops too),
// 2 void lookups (NXDOMAIN or no records for a, mx or exists), more than 10 MX records for
// one "mx"; only the first 10 PTR names are validated. Besides, a whole evaluation makes at
// most max_queries DNS queries (permerror) and takes at most max_elapsed_ms (temperror, §4.6.4
// "at least 20 seconds"), measured when each answer arrives.
// DNS errors (SERVFAIL, timeout) are temperror, except in ptr and %{p} validation (§5.5: the
// name is skipped) and in exp= (the explanation is dropped). A name that a domain-spec
// expands into but that DNS cannot hold (empty or over-long label) is treated as not
// existing: the mechanism does not match, an include or redirect to it is a permerror.
//
// Threading: the resolver's loop thread. `done` is called exactly once, through `poster`,
// never inside check_host() — unless the resolver is destroyed first: then, as with the
// resolver's own callbacks, it is never called. Resolver, poster and clock must outlive the
// evaluation; SpfRequest and SpfHostQuery are copied.
//
// Limits: no SPF (type 99) records (RFC 7208 §3.1 removed them); no IDNA conversion (names
// are queried as given). The explanation is printable US-ASCII (§6.2) or empty: there is no
// default text, the caller chooses one for its SMTP reply.

#include <cstdint>
#include <functional>
#include <string>

#include "core/cidr.h"
#include "core/clock.h"
#include "dns/post.h"
#include "dns/resolver.h"

namespace policy {

enum class SpfResult { kNone, kNeutral, kPass, kFail, kSoftFail, kTempError, kPermError };

// "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror": the names of
// RFC 7208 §2.6 as Authentication-Results (RFC 8601) and Received-SPF write them.
const char* spf_result_name(SpfResult result);

struct SpfVerdict {
  SpfResult result = SpfResult::kNone;
  std::string explanation;  // expanded exp= text when the result is fail and there is one
  std::string mechanism;    // the term that decided ("ip4:192.0.2.0/24", "-all"), or "default"
  std::string domain;       // the checked identity's domain
  std::string problem;      // why temperror or permerror (or none), for logs
};

using SpfCallback = std::function<void(SpfVerdict)>;

// The SMTP facts of one message, for the MAIL FROM check.
struct SpfRequest {
  core::IpAddress ip;
  std::string helo;
  std::string mail_from;  // "user@domain"; empty for the null sender: then postmaster@helo
  std::string receiver = "porter.invalid";  // %{r}
};

// The arguments of check_host() (§4.1) for one identity.
struct SpfHostQuery {
  core::IpAddress ip;
  std::string domain;  // the domain whose record is checked
  std::string sender;  // "local@domain"; no local part ("@d" or "d") means postmaster (§4.3)
  std::string helo;
  std::string receiver = "porter.invalid";
};

struct SpfOptions {
  int max_dns_terms = 10;              // §4.6.4
  int max_void_lookups = 2;            // §4.6.4
  int max_names = 10;                  // MX and PTR names per mechanism, §4.6.4
  int max_queries = 150;               // every DNS query of one evaluation, exp= included
  int64_t max_elapsed_ms = 20'000;     // §4.6.4: "at least 20 seconds"
  const core::Clock* clock = nullptr;  // nullptr: the system clock; also gives %{t}
};

// The MAIL FROM identity (§2.4), or postmaster@HELO for the null sender (§2.4).
SpfHostQuery mail_from_identity(const SpfRequest& request);
// The HELO identity (§2.3): postmaster@HELO.
SpfHostQuery helo_identity(const SpfRequest& request);

void check_host(dns::Resolver& resolver, dns::Poster& poster, const SpfHostQuery& query,
                SpfCallback done, const SpfOptions& options = {});

// check_host() of the MAIL FROM identity.
void check_spf(dns::Resolver& resolver, dns::Poster& poster, const SpfRequest& request,
               SpfCallback done, const SpfOptions& options = {});

}  // namespace policy
