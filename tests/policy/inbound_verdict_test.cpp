#include "policy/inbound_verdict.h"

#include <catch2/catch.hpp>

using policy::CheckMode;
using policy::DkimResult;
using policy::DmarcVerdict;
using policy::InboundDecision;
using policy::InboundResults;
using policy::SpfResult;
using policy::SpfVerdict;

namespace {

SpfVerdict spf(SpfResult r, std::string domain) {
  SpfVerdict v;
  v.result = r;
  v.domain = std::move(domain);
  return v;
}

DmarcVerdict dmarc_fail(DmarcVerdict::Action action) {
  DmarcVerdict v;
  v.result = DmarcVerdict::Result::kFail;
  v.action = action;
  v.policy = action == DmarcVerdict::Action::kReject ? 'r' : 'q';
  v.policy_domain = "example.com";
  v.reason = "DMARC fail for From domain example.com (p=reject at _dmarc.example.com): none aligned";
  return v;
}

// The field unfolded (RFC 5322 §2.2.3), so checks need not know where it was folded.
std::string field(const InboundDecision& d) {
  std::string f = policy::authentication_results("mx.porter.test", d.entries);
  for (size_t at; (at = f.find("\r\n\t")) != std::string::npos;) f.replace(at, 3, " ");
  return f;
}

}  // namespace

TEST_CASE("inbound: SPF fail refuses MAIL only when enforced", "[policy][unit]") {
  const SpfVerdict fail = spf(SpfResult::kFail, "example.com");
  auto refusal = policy::spf_refusal(fail, CheckMode::kEnforce);
  REQUIRE(refusal);
  CHECK(refusal->code == 550);
  CHECK(refusal->enhanced == "5.7.23");
  CHECK_THAT(refusal->text, Catch::Contains("example.com"));
  CHECK_FALSE(policy::spf_refusal(fail, CheckMode::kReport));
  const auto other = GENERATE(SpfResult::kSoftFail, SpfResult::kTempError, SpfResult::kPermError,
                              SpfResult::kNone, SpfResult::kNeutral, SpfResult::kPass);
  CHECK_FALSE(policy::spf_refusal(spf(other, "example.com"), CheckMode::kEnforce));
}

TEST_CASE("inbound: the explanation of the sender's domain is quoted", "[policy][unit]") {
  SpfVerdict fail = spf(SpfResult::kFail, "example.com");
  fail.explanation = "see https://example.com/spf";
  CHECK_THAT(policy::spf_refusal(fail, CheckMode::kEnforce)->text,
             Catch::Contains("see https://example.com/spf"));
}

TEST_CASE("inbound: DMARC action by mode", "[policy][unit]") {
  InboundResults r;
  r.mail_from = "a@example.com";
  r.from_domain = "example.com";
  SECTION("reject, enforced") {
    r.dmarc = dmarc_fail(DmarcVerdict::Action::kReject);
    const auto d = policy::judge_inbound(r, CheckMode::kEnforce);
    CHECK(d.action == InboundDecision::Action::kReject);
    CHECK(d.refusal.code == 550);
    CHECK(d.refusal.enhanced == "5.7.1");
    CHECK_THAT(d.refusal.text, Catch::Contains("DMARC fail for From domain example.com"));
  }
  SECTION("quarantine, enforced") {
    r.dmarc = dmarc_fail(DmarcVerdict::Action::kQuarantine);
    CHECK(policy::judge_inbound(r, CheckMode::kEnforce).action ==
          InboundDecision::Action::kQuarantine);
  }
  SECTION("report only never acts") {
    r.dmarc = dmarc_fail(DmarcVerdict::Action::kReject);
    const auto d = policy::judge_inbound(r, CheckMode::kReport);
    CHECK(d.action == InboundDecision::Action::kAccept);
    CHECK_THAT(field(d), Catch::Contains("dmarc=fail (p=reject dis=reject) header.from=example.com"));
  }
  SECTION("temperror never acts") {
    DmarcVerdict v = dmarc_fail(DmarcVerdict::Action::kReject);
    v.result = DmarcVerdict::Result::kTempError;
    v.action = DmarcVerdict::Action::kNone;
    r.dmarc = v;
    CHECK(policy::judge_inbound(r, CheckMode::kEnforce).action == InboundDecision::Action::kAccept);
  }
}

TEST_CASE("inbound: one Authentication-Results entry per result", "[policy][unit]") {
  InboundResults r;
  r.mail_from = "a@example.com";
  r.helo = "mail.example.com";
  r.spf_mail_from = spf(SpfResult::kPass, "example.com");
  r.spf_helo = spf(SpfResult::kNeutral, "mail.example.com");
  DkimResult good{"example.com", "s1", "rsa-sha256", DkimResult::Outcome::kPass, ""};
  DkimResult bad{"other.org", "s2", "ed25519-sha256", DkimResult::Outcome::kFail,
                 "body hash mismatch"};
  r.dkim = std::vector<DkimResult>{good, bad};
  r.from_domain = "example.com";
  DmarcVerdict pass;
  pass.result = DmarcVerdict::Result::kPass;
  pass.policy = 'r';
  r.dmarc = pass;
  const auto d = policy::judge_inbound(r, CheckMode::kEnforce);
  CHECK(d.action == InboundDecision::Action::kAccept);
  const std::string f = field(d);
  CHECK_THAT(f, Catch::StartsWith("Authentication-Results: mx.porter.test;"));
  CHECK_THAT(f, Catch::Contains("spf=pass smtp.mailfrom=a@example.com"));
  CHECK_THAT(f, Catch::Contains("spf=neutral smtp.helo=mail.example.com"));
  CHECK_THAT(f, Catch::Contains("dkim=pass header.d=example.com header.s=s1 header.a=rsa-sha256"));
  CHECK_THAT(f, Catch::Contains("dkim=fail reason=\"body hash mismatch\" header.d=other.org"));
  CHECK_THAT(f, Catch::Contains("dmarc=pass"));

  SECTION("DMARC sees the SPF domain and every signing domain") {
    const auto in = policy::dmarc_input(r);
    CHECK(in.from_domain == "example.com");
    CHECK(in.spf_domain == "example.com");
    CHECK(in.spf == policy::AuthOutcome::kPass);
    REQUIRE(in.dkim.size() == 2);
    CHECK(in.dkim[1] == std::make_pair(std::string("other.org"), policy::AuthOutcome::kFail));
  }
}

TEST_CASE("inbound: the null sender is recorded as postmaster@HELO", "[policy][unit]") {
  InboundResults r;
  r.helo = "mail.example.com";
  r.spf_mail_from = spf(SpfResult::kPass, "mail.example.com");
  CHECK_THAT(field(policy::judge_inbound(r, CheckMode::kEnforce)),
             Catch::Contains("smtp.mailfrom=postmaster@mail.example.com"));
}

TEST_CASE("inbound: checks that are off write nothing", "[policy][unit]") {
  InboundResults r;
  CHECK(field(policy::judge_inbound(r, CheckMode::kOff)) ==
        "Authentication-Results: mx.porter.test; none\r\n");
}
