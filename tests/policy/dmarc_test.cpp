#include "policy/dmarc.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "dns/fake_resolver.h"
#include "dns/post.h"

namespace {

using policy::AuthOutcome;
using policy::DmarcInput;
using policy::DmarcVerdict;
using Result = DmarcVerdict::Result;
using Action = DmarcVerdict::Action;
using Fault = dns::FakeResolver::Fault;

struct Dns {
  dns::ManualPoster poster;
  dns::FakeResolver resolver{poster};
};

// Runs one check to its end; the verdict must not arrive inside check_dmarc().
DmarcVerdict run(Dns& dns, const DmarcInput& input, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::optional<DmarcVerdict> verdict;
  int calls = 0;
  policy::check_dmarc(dns.resolver, input, rng, [&](DmarcVerdict v) {
    ++calls;
    verdict = std::move(v);
  });
  REQUIRE(calls == 0);
  dns.poster.run_pending();
  REQUIRE(calls == 1);
  return *verdict;
}

DmarcInput from_example(std::string spf_domain, AuthOutcome spf,
                        std::vector<std::pair<std::string, AuthOutcome>> dkim = {}) {
  return DmarcInput{"example.com", std::move(spf_domain), spf, std::move(dkim)};
}

struct Scenario {
  const char* name;
  std::vector<std::pair<std::string, std::string>> txt;  // name -> TXT record
  DmarcInput input;
  Result result;
  Action action;
  char policy;
  bool spf_aligned;
  bool dkim_aligned;
};

}  // namespace

TEST_CASE("unit: DMARC scenarios", "[policy][unit]") {
  const auto s = GENERATE(values<Scenario>({
      {"aligned SPF pass",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("example.com", AuthOutcome::kPass),
       Result::kPass,
       Action::kNone,
       'r',
       true,
       false},
      {"relaxed: SPF for a subdomain of the From domain aligns",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("bounces.example.com", AuthOutcome::kPass),
       Result::kPass,
       Action::kNone,
       'r',
       true,
       false},
      {"aligned DKIM pass with SPF fail",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("example.com", AuthOutcome::kFail, {{"example.com", AuthOutcome::kPass}}),
       Result::kPass,
       Action::kNone,
       'r',
       false,
       true},
      {"one good signature among bad ones",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("", AuthOutcome::kNone,
                    {{"example.com", AuthOutcome::kFail},
                     {"esp.example", AuthOutcome::kPass},
                     {"mail.example.com", AuthOutcome::kPass}}),
       Result::kPass,
       Action::kNone,
       'r',
       false,
       true},
      {"unaligned SPF pass, no DKIM: p=reject rejects",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kFail,
       Action::kReject,
       'r',
       false,
       false},
      {"p=quarantine quarantines",
       {{"_dmarc.example.com", "v=DMARC1; p=quarantine"}},
       from_example("other.net", AuthOutcome::kPass, {{"other.net", AuthOutcome::kPass}}),
       Result::kFail,
       Action::kQuarantine,
       'q',
       false,
       false},
      {"p=none only monitors",
       {{"_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:d@example.com"}},
       from_example("example.com", AuthOutcome::kFail),
       Result::kFail,
       Action::kNone,
       'n',
       false,
       false},
      {"a passing but unaligned DKIM signature does not help",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("example.com", AuthOutcome::kSoftFail, {{"example.net", AuthOutcome::kPass}}),
       Result::kFail,
       Action::kReject,
       'r',
       false,
       false},
      {"adkim=s: d=sub.example.com does not align with example.com",
       {{"_dmarc.example.com", "v=DMARC1; p=reject; adkim=s"}},
       from_example("other.net", AuthOutcome::kPass, {{"sub.example.com", AuthOutcome::kPass}}),
       Result::kFail,
       Action::kReject,
       'r',
       false,
       false},
      {"adkim=s: the exact domain aligns",
       {{"_dmarc.example.com", "v=DMARC1; p=reject; adkim=s"}},
       from_example("other.net", AuthOutcome::kPass, {{"EXAMPLE.com.", AuthOutcome::kPass}}),
       Result::kPass,
       Action::kNone,
       'r',
       false,
       true},
      {"aspf=s: SPF for a subdomain does not align",
       {{"_dmarc.example.com", "v=DMARC1; p=quarantine; aspf=s"}},
       from_example("bounces.example.com", AuthOutcome::kPass),
       Result::kFail,
       Action::kQuarantine,
       'q',
       false,
       false},
      {"relaxed alignment does not cross a public suffix",
       {{"_dmarc.example.co.uk", "v=DMARC1; p=reject"}},
       {"example.co.uk", "co.uk", AuthOutcome::kPass, {{"other.co.uk", AuthOutcome::kPass}}},
       Result::kFail,
       Action::kReject,
       'r',
       false,
       false},
      {"subdomain From with only the organisational record: sp=none",
       {{"_dmarc.example.com", "v=DMARC1; p=reject; sp=none"}},
       {"news.example.com", "other.net", AuthOutcome::kPass, {}},
       Result::kFail,
       Action::kNone,
       'n',
       false,
       false},
      {"subdomain From without sp=: p applies",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       {"news.example.com", "other.net", AuthOutcome::kPass, {}},
       Result::kFail,
       Action::kReject,
       'r',
       false,
       false},
      {"subdomain with its own record: its p=, not the parent's sp=",
       {{"_dmarc.news.example.com", "v=DMARC1; p=quarantine"},
        {"_dmarc.example.com", "v=DMARC1; p=reject; sp=none"}},
       {"news.example.com", "other.net", AuthOutcome::kPass, {}},
       Result::kFail,
       Action::kQuarantine,
       'q',
       false,
       false},
      {"subdomain From, SPF for the organisational domain aligns (relaxed)",
       {{"_dmarc.example.com", "v=DMARC1; p=reject; sp=reject"}},
       {"news.example.com", "example.com", AuthOutcome::kPass, {}},
       Result::kPass,
       Action::kNone,
       'r',
       true,
       false},
      {"pct=0 with p=reject: quarantine (RFC 7489 §6.6.4)",
       {{"_dmarc.example.com", "v=DMARC1; p=reject; pct=0"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kFail,
       Action::kQuarantine,
       'r',
       false,
       false},
      {"pct=0 with p=quarantine: no action",
       {{"_dmarc.example.com", "v=DMARC1; p=quarantine; pct=0"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kFail,
       Action::kNone,
       'q',
       false,
       false},
      {"no record anywhere: none",
       {{"example.com", "v=spf1 -all"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kNone,
       Action::kNone,
       0,
       false,
       false},
      {"TXT records that are not DMARC are ignored",
       {{"_dmarc.example.com", "v=spf1 -all"},
        {"_dmarc.example.com", "v=DMARC2; p=reject"},
        {"_dmarc.example.com", "v=dmarc1; p=reject"},
        {"_dmarc.example.com", "xv=DMARC1; p=reject"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kNone,
       Action::kNone,
       0,
       false,
       false},
      {"a DMARC record next to other TXT records is used",
       {{"_dmarc.example.com", "google-site-verification=x"},
        {"_dmarc.example.com", "v=DMARC1;p=quarantine"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kFail,
       Action::kQuarantine,
       'q',
       false,
       false},
      {"two DMARC records: permerror, not applied",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}, {"_dmarc.example.com", "v=DMARC1; p=none"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kPermError,
       Action::kNone,
       0,
       false,
       false},
      {"malformed record (bad p=): permerror, not applied (§6.6.3)",
       {{"_dmarc.example.com", "v=DMARC1; p=bogus"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kPermError,
       Action::kNone,
       0,
       false,
       false},
      {"malformed record (no p=): permerror, not applied",
       {{"_dmarc.example.com", "v=DMARC1; rua=mailto:d@example.com"}},
       from_example("other.net", AuthOutcome::kPass),
       Result::kPermError,
       Action::kNone,
       0,
       false,
       false},
      {"an aligned SPF temperror is not a failure",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("example.com", AuthOutcome::kTempError),
       Result::kTempError,
       Action::kNone,
       'r',
       false,
       false},
      {"an aligned DKIM temperror is not a failure",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("other.net", AuthOutcome::kPass, {{"example.com", AuthOutcome::kTempError}}),
       Result::kTempError,
       Action::kNone,
       'r',
       false,
       false},
      {"an unaligned temperror changes nothing",
       {{"_dmarc.example.com", "v=DMARC1; p=reject"}},
       from_example("other.net", AuthOutcome::kTempError),
       Result::kFail,
       Action::kReject,
       'r',
       false,
       false},
  }));
  CAPTURE(s.name);
  Dns dns;
  for (const auto& [name, text] : s.txt) dns.resolver.add_txt(name, text);
  const DmarcVerdict v = run(dns, s.input);
  CAPTURE(v.reason);
  CHECK(v.result == s.result);
  CHECK(v.action == s.action);
  CHECK(v.policy == s.policy);
  CHECK(v.spf_aligned == s.spf_aligned);
  CHECK(v.dkim_aligned == s.dkim_aligned);
  CHECK(!v.reason.empty());
  for (char c : v.reason) CHECK((c >= 0x20 && c < 0x7f));
}

TEST_CASE("unit: DMARC policy discovery asks the From domain, then its organisation",
          "[policy][unit]") {
  Dns dns;
  SECTION("NXDOMAIN at the subdomain falls back to the organisational record") {
    dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    const auto v = run(dns, {"a.b.example.com", "other.net", AuthOutcome::kPass, {}});
    CHECK(v.policy_domain == "example.com");
    CHECK(v.action == Action::kReject);
    CHECK(dns.resolver.queries() ==
          std::vector<std::string>{"TXT _dmarc.a.b.example.com", "TXT _dmarc.example.com"});
  }
  SECTION("NODATA at the subdomain falls back too") {
    dns.resolver.add_a("_dmarc.news.example.com", "192.0.2.1");
    dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=quarantine");
    const auto v = run(dns, {"news.example.com", "other.net", AuthOutcome::kPass, {}});
    CHECK(v.policy_domain == "example.com");
    CHECK(v.action == Action::kQuarantine);
  }
  SECTION("the organisational domain is not asked twice") {
    const auto v = run(dns, from_example("example.com", AuthOutcome::kPass));
    CHECK(v.result == Result::kNone);
    CHECK(v.policy_domain.empty());
    CHECK(dns.resolver.queries() == std::vector<std::string>{"TXT _dmarc.example.com"});
  }
  SECTION("the From domain is compared without case or trailing dot") {
    dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    const auto v = run(dns, {"Example.COM.", "example.com", AuthOutcome::kPass, {}});
    CHECK(v.result == Result::kPass);
    CHECK(dns.resolver.queries() == std::vector<std::string>{"TXT _dmarc.example.com"});
  }
  SECTION("a malformed record at the From domain stops discovery") {
    dns.resolver.add_txt("_dmarc.news.example.com", "v=DMARC1; p=rejection");
    dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
    const auto v = run(dns, {"news.example.com", "other.net", AuthOutcome::kPass, {}});
    CHECK(v.result == Result::kPermError);
    CHECK(v.action == Action::kNone);
    CHECK(v.policy_domain == "news.example.com");
    CHECK(dns.resolver.queries().size() == 1);
  }
}

TEST_CASE("unit: DMARC DNS failures give temperror and no action", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
  const auto [where, fault] = GENERATE(table<std::string, Fault>({
      {"_dmarc.example.com", Fault::kServfail},
      {"_dmarc.example.com", Fault::kTimeout},
      {"_dmarc.news.example.com", Fault::kServfail},
  }));
  CAPTURE(where);
  dns.resolver.set_fault(where, fault);
  const std::string from = where.substr(std::string("_dmarc.").size());
  const auto v = run(dns, {from, "other.net", AuthOutcome::kPass, {}});
  CHECK(v.result == Result::kTempError);
  CHECK(v.action == Action::kNone);
  CHECK(dns.resolver.queries().size() == 1);  // no fallback past a failure
  CHECK_THAT(v.reason, Catch::Contains(where));
}

TEST_CASE("unit: DMARC without a From domain is a permerror", "[policy][unit]") {
  Dns dns;
  const auto v = run(dns, {"", "other.net", AuthOutcome::kPass, {}});
  CHECK(v.result == Result::kPermError);
  CHECK(v.action == Action::kNone);
}

TEST_CASE("unit: DMARC pct samples the failing messages", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=reject; pct=30");
  int rejected = 0, quarantined = 0;
  for (uint32_t seed = 0; seed < 400; ++seed) {
    const auto v = run(dns, from_example("other.net", AuthOutcome::kPass), seed);
    CHECK(v.pct == 30);
    if (v.action == Action::kReject) ++rejected;
    if (v.action == Action::kQuarantine) ++quarantined;
  }
  CHECK(rejected + quarantined == 400);
  CHECK(rejected > 80);  // 120 expected
  CHECK(rejected < 160);
}

TEST_CASE("unit: DMARC without pct= acts on every failing message", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
  for (uint32_t seed = 0; seed < 50; ++seed) {
    const auto v = run(dns, from_example("other.net", AuthOutcome::kPass), seed);
    CHECK(v.pct == 100);
    CHECK(v.action == Action::kReject);
  }
}

TEST_CASE("unit: DMARC reason names the policy and the identities", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine");
  const auto v = run(
      dns,
      {"news.example.com", "other.net", AuthOutcome::kPass, {{"example.org", AuthOutcome::kFail}}});
  CHECK(v.reason ==
        "DMARC fail for From domain news.example.com (sp=quarantine at _dmarc.example.com): SPF "
        "pass for other.net (not aligned), DKIM fail for d=example.org (not aligned)");
}

TEST_CASE("unit: DMARC alignment modes", "[policy][unit]") {
  const auto [from, auth, strict, aligned] = GENERATE(table<std::string, std::string, bool, bool>({
      {"example.com", "example.com", true, true},
      {"example.com", "Example.Com.", true, true},
      {"example.com", "mail.example.com", true, false},
      {"example.com", "mail.example.com", false, true},
      {"a.example.com", "b.example.com", false, true},
      {"mail.example.com", "example.com", false, true},
      {"example.co.uk", "co.uk", false, false},
      {"victim.github.io", "attacker.github.io", false, false},
      {"example.com", "example.net", false, false},
      {"example.com", "", false, false},
  }));
  CAPTURE(from, auth, strict);
  CHECK(policy::domains_aligned(from, auth, strict) == aligned);
}

TEST_CASE("unit: DMARC verdict as an Authentication-Results entry", "[policy][unit]") {
  DmarcVerdict v;
  v.result = Result::kFail;
  v.action = Action::kQuarantine;
  v.policy = 'r';
  const auto entry = policy::dmarc_auth_result(v, "Example.com");
  CHECK(entry.method == "dmarc");
  CHECK(entry.result == "fail");
  CHECK(entry.comment == "p=reject dis=quarantine");
  CHECK(entry.properties ==
        std::vector<std::pair<std::string, std::string>>{{"header.from", "example.com"}});
  CHECK(policy::authentication_results("mx", {policy::dmarc_auth_result({}, "example.com")}) ==
        "Authentication-Results: mx; dmarc=none header.from=example.com\r\n");
}
