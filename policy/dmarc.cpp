#include "policy/dmarc.h"

#include <opendmarc/dmarc.h>

#include <algorithm>
#include <memory>

#include "core/address.h"
#include "policy/org_domain.h"

namespace policy {
namespace {

using Result = DmarcVerdict::Result;
using Action = DmarcVerdict::Action;

std::string normalized(std::string_view domain) {
  while (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  return core::to_lower_ascii(domain);
}

// Domains come from headers and DNS; the reason goes into an SMTP reply (core::Reply wants
// ASCII without CR/LF).
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) out += (c > 0x20 && c < 0x7f) ? c : '?';
  return out;
}

const char* outcome_name(AuthOutcome o) {
  switch (o) {
    case AuthOutcome::kNone:
      return "none";
    case AuthOutcome::kPass:
      return "pass";
    case AuthOutcome::kFail:
      return "fail";
    case AuthOutcome::kNeutral:
      return "neutral";
    case AuthOutcome::kSoftFail:
      return "softfail";
    case AuthOutcome::kTempError:
      return "temperror";
    case AuthOutcome::kPermError:
      return "permerror";
  }
  return "?";
}

const char* policy_name(char p) {
  switch (p) {
    case 'r':
      return "reject";
    case 'q':
      return "quarantine";
    case 'n':
      return "none";
  }
  return "unknown";
}

// §6.6.3 step 4: a DMARC record starts with the version tag. In the ABNF of §6.4 the tag name
// is a quoted string (any case) and "DMARC1" is written in %x form (exact case).
bool is_dmarc_record(std::string_view txt) {
  auto skip_wsp = [&](size_t i) {
    while (i < txt.size() && (txt[i] == ' ' || txt[i] == '\t')) ++i;
    return i;
  };
  if (txt.empty() || (txt[0] != 'v' && txt[0] != 'V')) return false;
  size_t i = skip_wsp(1);
  if (i >= txt.size() || txt[i] != '=') return false;
  i = skip_wsp(i + 1);
  if (txt.substr(i, 6) != "DMARC1") return false;
  i = skip_wsp(i + 6);
  return i == txt.size() || txt[i] == ';';
}

// What libopendmarc read from a record.
struct Policy {
  char applied = 0;  // p= or sp=, whichever governs the From domain
  bool subdomain_policy = false;
  bool strict_spf = false;
  bool strict_dkim = false;
  int pct = 100;
};

struct PolicyContextDeleter {
  void operator()(DMARC_POLICY_T* ctx) const { opendmarc_policy_connect_shutdown(ctx); }
};

u_char* uchars(std::string& s) {
  return reinterpret_cast<u_char*>(s.data());
}

// `record_domain` is where the record was found; when it is not the From domain it is the
// Organizational Domain, which makes libopendmarc apply sp= (§6.6.3 step 3, §6.3 "sp").
core::Result<Policy> read_record(std::string record, std::string from_domain,
                                 std::string record_domain) {
  // The client address only feeds reports, which we do not send.
  std::string no_address = "0.0.0.0";
  std::unique_ptr<DMARC_POLICY_T, PolicyContextDeleter> ctx(
      opendmarc_policy_connect_init(uchars(no_address), 0));
  if (!ctx) return core::Status::temporary("dmarc: out of memory");
  const bool fallback = record_domain != from_domain;
  const int rc = opendmarc_policy_store_dmarc(ctx.get(), uchars(record), uchars(from_domain),
                                              fallback ? uchars(record_domain) : nullptr);
  if (rc != DMARC_PARSE_OKAY) return core::Status::invalid(opendmarc_policy_status_to_str(rc));

  Policy policy;
  int adkim = 0, aspf = 0;
  (void)opendmarc_policy_fetch_adkim(ctx.get(), &adkim);
  (void)opendmarc_policy_fetch_aspf(ctx.get(), &aspf);
  (void)opendmarc_policy_fetch_pct(ctx.get(), &policy.pct);
  policy.strict_dkim = adkim == DMARC_RECORD_A_STRICT;
  policy.strict_spf = aspf == DMARC_RECORD_A_STRICT;
  policy.pct = std::clamp(policy.pct, 0, 100);
  // No SPF or DKIM result was stored, so this is the policy for a failing message.
  switch (opendmarc_get_policy_to_enforce(ctx.get())) {
    case DMARC_POLICY_REJECT:
      policy.applied = 'r';
      break;
    case DMARC_POLICY_QUARANTINE:
      policy.applied = 'q';
      break;
    case DMARC_POLICY_NONE:
      policy.applied = 'n';
      break;
    default:
      return core::Status::invalid("libopendmarc chose no policy");
  }
  policy.subdomain_policy = opendmarc_get_policy_token_used(ctx.get()) == DMARC_USED_POLICY_IS_SP;
  return policy;
}

bool spf_aligned(const DmarcInput& in, const std::string& from, bool strict, AuthOutcome want) {
  return in.spf == want && domains_aligned(from, in.spf_domain, strict);
}

bool dkim_aligned(const DmarcInput& in, const std::string& from, bool strict, AuthOutcome want) {
  return std::any_of(in.dkim.begin(), in.dkim.end(), [&](const auto& sig) {
    return sig.second == want && domains_aligned(from, sig.first, strict);
  });
}

// "SPF pass for other.net (not aligned), DKIM fail for d=example.com"
std::string describe_identities(const DmarcInput& in, const std::string& from, const Policy& p) {
  std::string out;
  if (in.spf == AuthOutcome::kNone || in.spf_domain.empty()) {
    out = "no SPF result";
  } else {
    out = std::string("SPF ") + outcome_name(in.spf) + " for " + printable(in.spf_domain);
    if (!domains_aligned(from, in.spf_domain, p.strict_spf)) out += " (not aligned)";
  }
  if (in.dkim.empty()) return out + ", no DKIM signature";
  for (const auto& [d, outcome] : in.dkim) {
    out += std::string(", DKIM ") + outcome_name(outcome) + " for d=" + printable(d);
    if (!domains_aligned(from, d, p.strict_dkim)) out += " (not aligned)";
  }
  return out;
}

// §6.6.4: outside the pct sample, reject becomes quarantine and quarantine becomes none.
Action action_for(char policy, bool sampled) {
  switch (policy) {
    case 'r':
      return sampled ? Action::kReject : Action::kQuarantine;
    case 'q':
      return sampled ? Action::kQuarantine : Action::kNone;
  }
  return Action::kNone;
}

DmarcVerdict evaluate(const DmarcInput& in, const std::string& from, const std::string& record,
                      const std::string& record_domain, int roll) {
  DmarcVerdict v;
  v.policy_domain = record_domain;
  const std::string where = "_dmarc." + printable(record_domain);
  auto policy = read_record(record, from, record_domain);
  if (!policy) {
    v.result = Result::kPermError;
    v.reason = "DMARC record at " + where + " not applied: " + policy.status().message();
    return v;
  }
  const Policy& p = *policy;
  v.policy = p.applied;
  v.pct = p.pct;
  v.spf_aligned = spf_aligned(in, from, p.strict_spf, AuthOutcome::kPass);
  v.dkim_aligned = dkim_aligned(in, from, p.strict_dkim, AuthOutcome::kPass);
  const std::string head = " for From domain " + printable(from) + " (" +
                           (p.subdomain_policy ? "sp=" : "p=") + policy_name(p.applied) + " at " +
                           where + "): ";
  const std::string identities = describe_identities(in, from, p);
  if (v.spf_aligned || v.dkim_aligned) {
    v.result = Result::kPass;
    v.reason = "DMARC pass" + head + identities;
    return v;
  }
  if (spf_aligned(in, from, p.strict_spf, AuthOutcome::kTempError) ||
      dkim_aligned(in, from, p.strict_dkim, AuthOutcome::kTempError)) {
    v.result = Result::kTempError;
    v.reason = "DMARC temperror" + head + identities;
    return v;
  }
  v.result = Result::kFail;
  const bool sampled = roll < p.pct;
  v.action = action_for(p.applied, sampled);
  v.reason = "DMARC fail" + head + identities;
  if (!sampled && p.applied != 'n')
    v.reason +=
        "; pct=" + std::to_string(p.pct) + " lowers the action to " + dmarc_action_name(v.action);
  return v;
}

// One DMARC check in flight: the state the DNS callbacks share.
struct Check {
  dns::Resolver* resolver;
  DmarcInput input;
  std::string from;  // normalized From domain
  int roll;          // 0..99, drawn up front so that rng need not outlive the call
  std::function<void(DmarcVerdict)> done;
};

DmarcVerdict error_verdict(Result result, std::string reason) {
  DmarcVerdict v;
  v.result = result;
  v.reason = std::move(reason);
  return v;
}

void lookup(const std::shared_ptr<Check>& check, const std::string& domain);

void on_answer(const std::shared_ptr<Check>& check, const std::string& domain,
               core::Result<dns::TxtAnswer> answer) {
  if (check->from.empty())
    return check->done(error_verdict(Result::kPermError, "DMARC permerror: no From domain"));
  const std::string where = "_dmarc." + printable(domain);
  std::vector<std::string> records;
  if (answer) {
    for (auto& txt : answer->records)
      if (is_dmarc_record(txt)) records.push_back(std::move(txt));
  } else if (answer.status().kind() == core::Status::Kind::kTemporary) {
    return check->done(error_verdict(
        Result::kTempError, "DMARC temperror: lookup of " + where + " failed, try again later"));
  } else if (answer.status().kind() != core::Status::Kind::kNotFound) {
    return check->done(error_verdict(
        Result::kPermError,
        "DMARC permerror: cannot look up " + where + ": " + printable(answer.status().message())));
  }
  if (records.size() > 1) {
    auto v =
        error_verdict(Result::kPermError, "DMARC permerror: " + std::to_string(records.size()) +
                                              " DMARC records at " + where + ", none applied");
    v.policy_domain = domain;
    return check->done(std::move(v));
  }
  if (records.size() == 1)
    return check->done(evaluate(check->input, check->from, records[0], domain, check->roll));
  // §6.6.3 step 3: no record at the From domain, so ask its Organizational Domain.
  if (domain == check->from) {
    const std::string org = organizational_domain(check->from);
    if (org != check->from) return lookup(check, org);
  }
  check->done(
      error_verdict(Result::kNone, "no DMARC record for From domain " + printable(check->from)));
}

void lookup(const std::shared_ptr<Check>& check, const std::string& domain) {
  check->resolver->query_txt("_dmarc." + domain,
                             [check, domain](core::Result<dns::TxtAnswer> answer) {
                               on_answer(check, domain, std::move(answer));
                             });
}

}  // namespace

void check_dmarc(dns::Resolver& resolver, const DmarcInput& input, std::mt19937& rng,
                 std::function<void(DmarcVerdict)> done) {
  const int roll = std::uniform_int_distribution<int>(0, 99)(rng);
  auto check = std::make_shared<Check>(
      Check{&resolver, input, normalized(input.from_domain), roll, std::move(done)});
  // With no From domain the answer is known, but it still goes through the resolver (one
  // useless query) so that `done` never runs inside this call.
  lookup(check, check->from);
}

bool domains_aligned(std::string_view from_domain, std::string_view auth_domain, bool strict) {
  const std::string from = normalized(from_domain);
  const std::string auth = normalized(auth_domain);
  if (from.empty() || auth.empty()) return false;
  if (from == auth) return true;
  return !strict && organizational_domain(from) == organizational_domain(auth);
}

const char* dmarc_result_name(DmarcVerdict::Result result) {
  switch (result) {
    case Result::kNone:
      return "none";
    case Result::kPass:
      return "pass";
    case Result::kFail:
      return "fail";
    case Result::kTempError:
      return "temperror";
    case Result::kPermError:
      return "permerror";
  }
  return "?";
}

const char* dmarc_action_name(DmarcVerdict::Action action) {
  switch (action) {
    case Action::kNone:
      return "none";
    case Action::kQuarantine:
      return "quarantine";
    case Action::kReject:
      return "reject";
  }
  return "?";
}

AuthResultEntry dmarc_auth_result(const DmarcVerdict& verdict, std::string_view from_domain) {
  AuthResultEntry e;
  e.method = "dmarc";
  e.result = dmarc_result_name(verdict.result);
  if (verdict.policy != 0)
    e.comment = std::string("p=") + policy_name(verdict.policy) +
                " dis=" + dmarc_action_name(verdict.action);
  e.properties.emplace_back("header.from", normalized(from_domain));
  return e;
}

}  // namespace policy
