#include "policy/inbound_verdict.h"

namespace policy {

AuthOutcome to_auth_outcome(SpfResult result) {
  switch (result) {
    case SpfResult::kNone: return AuthOutcome::kNone;
    case SpfResult::kNeutral: return AuthOutcome::kNeutral;
    case SpfResult::kPass: return AuthOutcome::kPass;
    case SpfResult::kFail: return AuthOutcome::kFail;
    case SpfResult::kSoftFail: return AuthOutcome::kSoftFail;
    case SpfResult::kTempError: return AuthOutcome::kTempError;
    case SpfResult::kPermError: return AuthOutcome::kPermError;
  }
  return AuthOutcome::kNone;
}

AuthOutcome to_auth_outcome(DkimResult::Outcome outcome) {
  using O = DkimResult::Outcome;
  switch (outcome) {
    case O::kPass: return AuthOutcome::kPass;
    case O::kFail: return AuthOutcome::kFail;
    case O::kNeutral: return AuthOutcome::kNeutral;
    case O::kTempError: return AuthOutcome::kTempError;
    case O::kPermError: return AuthOutcome::kPermError;
    case O::kNone: return AuthOutcome::kNone;
  }
  return AuthOutcome::kNone;
}

std::optional<core::Reply> spf_refusal(const SpfVerdict& mail_from, CheckMode mode) {
  if (mode != CheckMode::kEnforce || mail_from.result != SpfResult::kFail) return std::nullopt;
  std::string text = "SPF check failed: " + mail_from.domain + " does not allow this host to send";
  if (!mail_from.explanation.empty()) text += " (" + mail_from.explanation + ")";
  return core::Reply{550, "5.7.23", text};
}

DmarcInput dmarc_input(const InboundResults& r) {
  DmarcInput in;
  in.from_domain = r.from_domain;
  if (r.spf_mail_from) {
    in.spf_domain = r.spf_mail_from->domain;
    in.spf = to_auth_outcome(r.spf_mail_from->result);
  }
  if (r.dkim)
    for (const DkimResult& d : *r.dkim)
      if (!d.domain.empty()) in.dkim.emplace_back(d.domain, to_auth_outcome(d.result));
  return in;
}

namespace {

AuthResultEntry spf_entry(const SpfVerdict& v, const char* property, const std::string& value) {
  AuthResultEntry e;
  e.method = "spf";
  e.result = spf_result_name(v.result);
  if (!v.problem.empty()) e.reason = v.problem;
  e.properties.emplace_back(property, value);
  return e;
}

AuthResultEntry dkim_entry(const DkimResult& d) {
  AuthResultEntry e;
  e.method = "dkim";
  e.result = outcome_name(d.result);
  if (!d.reason.empty() && d.result != DkimResult::Outcome::kPass) e.reason = d.reason;
  if (!d.domain.empty()) e.properties.emplace_back("header.d", d.domain);
  if (!d.selector.empty()) e.properties.emplace_back("header.s", d.selector);
  if (!d.algorithm.empty()) e.properties.emplace_back("header.a", d.algorithm);
  return e;
}

}  // namespace

InboundDecision judge_inbound(const InboundResults& r, CheckMode dmarc_mode) {
  InboundDecision out;
  if (r.spf_mail_from) {
    // RFC 8601 §2.7.2: smtp.mailfrom is the address, or the HELO domain's postmaster for <>.
    const std::string who = r.mail_from.empty() ? "postmaster@" + r.helo : r.mail_from;
    out.entries.push_back(spf_entry(*r.spf_mail_from, "smtp.mailfrom", who));
  }
  if (r.spf_helo) out.entries.push_back(spf_entry(*r.spf_helo, "smtp.helo", r.helo));
  if (r.dkim)
    for (const DkimResult& d : *r.dkim) out.entries.push_back(dkim_entry(d));
  if (!r.dmarc) return out;
  out.entries.push_back(dmarc_auth_result(*r.dmarc, r.from_domain));
  if (dmarc_mode != CheckMode::kEnforce || r.dmarc->result != DmarcVerdict::Result::kFail)
    return out;
  switch (r.dmarc->action) {
    case DmarcVerdict::Action::kReject:
      out.action = InboundDecision::Action::kReject;
      out.refusal = {550, "5.7.1", r.dmarc->reason};
      break;
    case DmarcVerdict::Action::kQuarantine:
      out.action = InboundDecision::Action::kQuarantine;
      break;
    case DmarcVerdict::Action::kNone:
      break;
  }
  return out;
}

const char* inbound_action_name(InboundDecision::Action action) {
  switch (action) {
    case InboundDecision::Action::kAccept: return "accept";
    case InboundDecision::Action::kQuarantine: return "quarantine";
    case InboundDecision::Action::kReject: return "reject";
  }
  return "?";
}

}  // namespace policy
