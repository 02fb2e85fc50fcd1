#pragma once
// DMARC (RFC 7489) for inbound mail: policy discovery over dns/, the record read by
// libopendmarc, identifier alignment against the Organizational Domain (libpsl), and the
// action a failing message gets after pct sampling. Decisions as values: the caller rejects
// (550 5.7.1 + reason), files into Junk, or writes Authentication-Results.
//
// Discovery (§6.6.3): TXT at _dmarc.<From domain>; the records that begin with "v=DMARC1"
// are kept; if none is left (or the name does not exist), the same at _dmarc.<Organizational
// Domain>, and then sp= (default p=) is the policy for the subdomain. No record: result none.
// A DNS failure (SERVFAIL, timeout): temperror. A record libopendmarc cannot read, or more than
// one record: permerror (the registry of §11.2); §6.6.3 says such a record is not applied.
// None of these three results carries an action.
//
// Evaluation: pass when SPF passed for a domain aligned with the From domain (aspf=) or a DKIM
// signature passed for an aligned d= (adkim=). Relaxed alignment: same Organizational Domain;
// strict: the same name (§3.1). Otherwise fail, unless an aligned identifier had a temporary
// error: then temperror, so that a DNS hiccup does not reject mail that would have passed.
// A failing message gets the policy's action for a pct% sample of messages; outside the
// sample the action is lowered one step (§6.6.4: reject -> quarantine -> none).
//
// What libopendmarc does here: it parses the record (tags, the abbreviations it tolerates,
// the defaults adkim=r aspf=r pct=100) and chooses between p= and sp= for the failing case
// (opendmarc_get_policy_to_enforce). It is not given the SPF and DKIM results, because its
// alignment test is wrong in 1.4.2: with the suffix list loaded it calls d=sub.example.com
// strictly aligned with From example.com, and in relaxed mode it aligns d=co.uk with
// example.co.uk. It is not asked to query DNS either (its resolver blocks).
//
// Lifetime and threading: one loop thread, the resolver's. `done` is called exactly once,
// later, on that thread, never inside check_dmarc(). The resolver must stay alive until then
// (the fallback query is asked from an answer's callback); a resolver destroyed earlier drops
// the check's callbacks (dns/resolver.h) and `done` is never called. `rng` is only used
// during the call (one draw, made up front).
//
// Limits: no reports (rua/ruf are ignored); a record with a bad tag value is not applied at
// all where §6.3 would keep it with that tag's default, and a record without a valid p= but
// with rua= gets permerror, not the p=none of §6.6.3 (no action either way); a malformed
// pct= reads as 0 (libopendmarc uses strtoul), which can only lower the action; the From
// domain is taken as the caller gives it (one domain; RFC 5322.From parsing is the caller's).

#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/resolver.h"
#include "policy/auth_results.h"

namespace policy {

// The result of an SPF check or of one DKIM signature, as DMARC needs it (RFC 8601 names).
enum class AuthOutcome { kNone, kPass, kFail, kNeutral, kSoftFail, kTempError, kPermError };

struct DmarcInput {
  std::string from_domain;  // RFC5322.From domain
  std::string spf_domain;   // the domain SPF checked: MAIL FROM's, or HELO's for a null sender
  AuthOutcome spf = AuthOutcome::kNone;
  std::vector<std::pair<std::string, AuthOutcome>> dkim;  // d= of each signature, its result
};

struct DmarcVerdict {
  enum class Result { kNone, kPass, kFail, kTempError, kPermError };
  enum class Action { kNone, kQuarantine, kReject };

  Result result = Result::kNone;
  Action action = Action::kNone;
  std::string policy_domain;  // where the record was found; empty when none was used
  char policy = 0;            // 'n', 'q', 'r': the p= or sp= that applied; 0 without a record
  bool spf_aligned = false;   // SPF passed for an aligned domain
  bool dkim_aligned = false;  // a DKIM signature passed for an aligned domain
  int pct = 100;
  std::string reason;  // one line of printable ASCII, for 550 5.7.1 and logs
};

void check_dmarc(dns::Resolver& resolver, const DmarcInput& input, std::mt19937& rng,
                 std::function<void(DmarcVerdict)> done);

// Identifier alignment (RFC 7489 §3.1): strict wants the same name, relaxed the same
// Organizational Domain. Case and a trailing dot do not matter.
bool domains_aligned(std::string_view from_domain, std::string_view auth_domain, bool strict);

// "none", "pass", "fail", "temperror", "permerror" (RFC 7489 §11.2)
const char* dmarc_result_name(DmarcVerdict::Result result);
// "none", "quarantine", "reject"
const char* dmarc_action_name(DmarcVerdict::Action action);

// The dmarc resinfo for Authentication-Results:
// "dmarc=fail (p=reject dis=quarantine) header.from=example.com".
AuthResultEntry dmarc_auth_result(const DmarcVerdict& verdict, std::string_view from_domain);

}  // namespace policy
