#pragma once
// The inbound judgement of one message (port 25, from a client neither trusted nor
// authenticated): from the SPF, DKIM and DMARC results to what happens to the message and
// the Authentication-Results entries (RFC 8601) that record them.
//
//   check   result                          enforce                      report
//   SPF     MAIL FROM identity "fail"       550 5.7.23 at MAIL (§8.4)    recorded only
//   DKIM    any                             recorded; a failed signature alone never
//                                           refuses mail (RFC 6376 §6.3): DMARC acts on it
//   DMARC   action reject (after pct)       550 5.7.1 with the reason     recorded only
//           action quarantine               accepted, filed into Junk    recorded only
//   any     temperror                       accepted (a DNS hiccup never refuses mail)
//
// A check that is off is neither run nor written. Pure functions; any thread.
//
// Limits: the HELO identity is recorded, never acted on (its fail only refuses a null
// sender, whose MAIL FROM identity is postmaster@HELO); no iprev.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/reply.h"
#include "policy/auth_results.h"
#include "policy/dkim_verifier.h"
#include "policy/dmarc.h"
#include "policy/spf.h"

namespace policy {

enum class CheckMode { kEnforce, kReport, kOff };

AuthOutcome to_auth_outcome(SpfResult result);
AuthOutcome to_auth_outcome(DkimResult::Outcome outcome);

// The refusal of MAIL FROM, if SPF is enforced and the sender's identity failed.
std::optional<core::Reply> spf_refusal(const SpfVerdict& mail_from, CheckMode mode);

struct InboundResults {
  std::string mail_from;                    // envelope sender, "" for <>
  std::string helo;
  std::optional<SpfVerdict> spf_mail_from;  // nullopt: SPF was off
  std::optional<SpfVerdict> spf_helo;       // nullopt: off, or HELO is not a domain
  std::optional<std::vector<DkimResult>> dkim;  // nullopt: DKIM verification was off
  std::string from_domain;                  // RFC5322.From domain; "" if none could be read
  std::optional<DmarcVerdict> dmarc;        // nullopt: off or no From domain
};

// What DMARC needs from the SPF and DKIM results.
DmarcInput dmarc_input(const InboundResults& results);

struct InboundDecision {
  enum class Action { kAccept, kQuarantine, kReject };
  Action action = Action::kAccept;
  core::Reply refusal;  // when kReject
  std::vector<AuthResultEntry> entries;
};

InboundDecision judge_inbound(const InboundResults& results, CheckMode dmarc_mode);

// "accept", "quarantine", "reject", for logs.
const char* inbound_action_name(InboundDecision::Action action);

}  // namespace policy
