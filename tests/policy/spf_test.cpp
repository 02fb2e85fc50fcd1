#include "policy/spf.h"

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "dns/fake_resolver.h"
#include "dns/post.h"
#include "policy/spf_macro.h"
#include "policy/spf_record.h"

namespace policy {
namespace {

using namespace std::string_literals;

core::IpAddress ip(const char* text) {
  return core::IpAddress::parse(text).value();
}

// RFC 7208 §7.4: <sender> strong-bad@email.example.com, client 192.0.2.3 or 2001:db8::cb01.
MacroValues rfc_values(const char* client) {
  MacroValues v;
  v.sender = "strong-bad@email.example.com";
  v.local_part = "strong-bad";
  v.sender_domain = "email.example.com";
  v.domain = "email.example.com";
  v.ip = ip(client);
  v.helo = "mx.example.org";
  v.receiver = "mx.example.net";
  v.timestamp = 1234567890;
  return v;
}

std::string expand(std::string_view text, const MacroValues& v,
                   MacroContext where = MacroContext::kDomain) {
  core::Result<std::string> r = expand_macros(text, v, where);
  INFO(text << ": " << r.status().to_string());
  REQUIRE(r);
  return *r;
}

TEST_CASE("unit: SPF macros expand as the RFC 7208 §7.4 examples", "[policy][unit]") {
  struct Case {
    const char* macro;
    const char* expansion;
  };
  const MacroValues v4 = rfc_values("192.0.2.3");
  auto c = GENERATE(values<Case>({
      {"%{s}", "strong-bad@email.example.com"},
      {"%{o}", "email.example.com"},
      {"%{d}", "email.example.com"},
      {"%{d4}", "email.example.com"},
      {"%{d3}", "email.example.com"},
      {"%{d2}", "example.com"},
      {"%{d1}", "com"},
      {"%{dr}", "com.example.email"},
      {"%{d2r}", "example.email"},
      {"%{l}", "strong-bad"},
      {"%{l-}", "strong.bad"},
      {"%{lr}", "strong-bad"},
      {"%{lr-}", "bad.strong"},
      {"%{l1r-}", "strong"},
      {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
      {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
      {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
      {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
      {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
  }));
  CHECK(expand(c.macro, v4) == c.expansion);

  const MacroValues v6 = rfc_values("2001:db8::cb01");
  CHECK(expand("%{ir}.%{v}._spf.%{d2}", v6) ==
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("unit: SPF macro escapes, letters and transformers", "[policy][unit]") {
  MacroValues v = rfc_values("192.0.2.3");
  v.local_part = "~jack&jill=up-a_b3.c";
  v.validated_name = "mx.example.com";

  SECTION("%%, %_ and %- are a percent, a space and a URL-encoded space") {
    CHECK(expand("a%%b%_c%-d", v) == "a%b c%20d");
  }
  SECTION("upper-case letters are URL-escaped outside the unreserved set") {
    CHECK(expand("%{L}", v) == "~jack%26jill%3Dup-a_b3.c");
    CHECK(expand("%{l}", v) == "~jack&jill=up-a_b3.c");
  }
  SECTION("h, p, v, and the explanation-only c, r, t") {
    CHECK(expand("%{h}", v) == "mx.example.org");
    CHECK(expand("%{p}", v) == "mx.example.com");
    CHECK(expand("%{v}", v) == "in-addr");
    CHECK(expand("%{c} %{r} %{t}", v, MacroContext::kExplanation) ==
          "192.0.2.3 mx.example.net 1234567890");
    CHECK(expand("%{c}", rfc_values("2001:db8::cb01"), MacroContext::kExplanation) ==
          "2001:db8::cb01");
  }
  SECTION("several delimiters split at once; parts rejoin with dots") {
    v.local_part = "foo-bar+zip+quux";
    CHECK(expand("%{l2r+-}", v) == "bar.foo");
    CHECK(expand("%{l+-}", v) == "foo.bar.zip.quux");
    CHECK(expand("%{l200}", v) == "foo-bar+zip+quux");
  }
  SECTION("syntax errors") {
    auto bad = GENERATE(as<std::string>{}, "%", "foo%", "%(ir)", "%{", "%{x}", "%{d0}", "%{d2x}",
                        "%{ir}.%{a}", "%{c}", "%{r}", "%{t}", "a b", "caf\xC3\xA9");
    INFO(bad);
    CHECK(check_macro_string(bad, MacroContext::kDomain).kind() == core::Status::Kind::kInvalid);
    CHECK_FALSE(expand_macros(bad, v, MacroContext::kDomain));
  }
  SECTION("explanation text may hold spaces and c, r, t, but not other errors") {
    CHECK(check_macro_string("Ask %{r} about %{c}", MacroContext::kExplanation));
    CHECK_FALSE(check_macro_string("The %{x}-files.", MacroContext::kExplanation));
  }
  SECTION("which letters a string uses") {
    CHECK(uses_macro_letter("%{P}.ok.example.com", 'p'));
    CHECK_FALSE(uses_macro_letter("%{d}.p.example.com", 'p'));
  }
}

TEST_CASE("unit: SPF domain-specs must end in a top label or a macro", "[policy][unit]") {
  auto good = GENERATE(as<std::string>{}, "example.com", "example.com.", "foo.example.xn--zckzah",
                       "%{d}", "%{i}.%{d2}", "foo:bar/baz.example.com", "%{H}", "a.123-4",
                       "macro%%percent%_space%-url-space.example.com", "x.%-");
  INFO(good);
  CHECK(check_domain_spec(good));

  auto bad = GENERATE(as<std::string>{}, "", "museum", "museum.", "abc.123", "111.222.33.44",
                      "example.-com", "example.com-", "example.com:8080", "foo-bar",
                      "mail.example.com/24", "%{r}.example.com", "-all");
  INFO(bad);
  CHECK_FALSE(check_domain_spec(bad));
}

TEST_CASE("unit: SPF query names lose the trailing dot and are cut to 253", "[policy][unit]") {
  CHECK(query_name("example.com.") == "example.com");
  std::string longer;
  for (int i = 0; i < 10; ++i) longer += "label-number-" + std::to_string(i) + "-abcdefghij.";
  longer += "example.com";
  const std::string name = query_name(longer);
  CHECK(name.size() <= 253);
  CHECK(name.ends_with(".example.com"));
  CHECK(longer.ends_with(name));
  CHECK(longer[longer.size() - name.size() - 1] == '.');  // whole labels were removed
  CHECK(reverse_name(ip("192.0.2.3")) == "3.2.0.192.in-addr.arpa");
  CHECK(reverse_name(ip("2001:db8::1")) ==
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}

TEST_CASE("unit: SPF records parse into mechanisms and modifiers", "[policy][unit]") {
  SECTION("only v=spf1 followed by a space or the end is an SPF record") {
    CHECK(is_spf_record("v=spf1"));
    CHECK(is_spf_record("V=SpF1 -all"));
    CHECK_FALSE(is_spf_record("v=spf10"));
    CHECK_FALSE(is_spf_record("v=spf1mx"));
    CHECK_FALSE(is_spf_record("spf2.0/pra -all"));
  }
  SECTION("every mechanism with its qualifier, domain and CIDR lengths") {
    core::Result<SpfRecord> r = parse_spf_record(
        "v=spf1  +a -mx:example.com/24//64 ~ptr:example.org ?include:_spf.example.net "
        "IP4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{ir}.bl.example.com a//0 "
        "redirect=_spf.example.com exp=explain.%{d} moo.cow=x -all ");
    REQUIRE(r);
    const auto& m = r->mechanisms;
    REQUIRE(m.size() == 9);
    CHECK(m[0].kind == SpfMechanismKind::kA);
    CHECK(m[0].qualifier == SpfQualifier::kPass);
    CHECK(m[0].domain_spec.empty());
    CHECK(m[1].kind == SpfMechanismKind::kMx);
    CHECK(m[1].qualifier == SpfQualifier::kFail);
    CHECK(m[1].domain_spec == "example.com");
    CHECK(m[1].cidr4 == 24);
    CHECK(m[1].cidr6 == 64);
    CHECK(m[2].kind == SpfMechanismKind::kPtr);
    CHECK(m[2].qualifier == SpfQualifier::kSoftFail);
    CHECK(m[3].kind == SpfMechanismKind::kInclude);
    CHECK(m[3].qualifier == SpfQualifier::kNeutral);
    CHECK(m[4].kind == SpfMechanismKind::kIp4);
    CHECK(m[4].cidr4 == 24);
    CHECK(m[4].network[0] == 192);
    CHECK(m[5].kind == SpfMechanismKind::kIp6);
    CHECK(m[5].cidr6 == 32);
    CHECK(m[6].kind == SpfMechanismKind::kExists);
    CHECK(m[7].cidr4 == 32);
    CHECK(m[7].cidr6 == 0);
    CHECK(m[8].text == "-all");
    CHECK(r->redirect == "_spf.example.com");
    CHECK(r->exp == "explain.%{d}");
  }
  SECTION("a domain-spec may hold ':' and '/'; the CIDR is read from the right") {
    core::Result<SpfRecord> r =
        parse_spf_record("v=spf1 a:foo:bar/baz.example.com mx:x.example/26");
    REQUIRE(r);
    CHECK(r->mechanisms[0].domain_spec == "foo:bar/baz.example.com");
    CHECK(r->mechanisms[0].cidr4 == 32);
    CHECK(r->mechanisms[1].domain_spec == "x.example");
    CHECK(r->mechanisms[1].cidr4 == 26);
  }
  SECTION("syntax errors anywhere are errors") {
    auto bad = GENERATE(
        as<std::string>{},
        "v=spf1 ip4:1.2.3.4 -all moo",  // unknown mechanism after a match
        "v=spf1 -all.", "v=spf1 -all:foo", "v=spf1 -all/8", "v=spf1 -",
        "v=spf1 redirect:example.com", "v=spf1 1up=foo", "v=spf1 =all",
        "v=spf1 moo.cow/far_out=man:dog/cat", "v=spf1 foo=%abc", "v=spf1 exp=", "v=spf1 exp=-all",
        "v=spf1 redirect=", "v=spf1 exp=a.example.com exp=b.example.com",
        "v=spf1 redirect=a.example.com redirect=a.example.com", "v=spf1 include",
        "v=spf1 include:", "v=spf1 include:a.example.com/24", "v=spf1 exists",
        "v=spf1 exists:a.example.com/24", "v=spf1 ptr/0", "v=spf1 ptr:", "v=spf1 a:", "v=spf1 a/33",
        "v=spf1 a//129", "v=spf1 a/24/64", "v=spf1 a/032", "v=spf1 a:museum", "v=spf1 a:abc.123",
        "v=spf1 ip4", "v=spf1 ip4:1.2.3", "v=spf1 ip4:1.2.3.4:8080", "v=spf1 ip4:1.2.3.4//32",
        "v=spf1 ip4:1.2.3.4/33", "v=spf1 ip4:01.2.3.4", "v=spf1 ip4:1.2.3.4/032", "v=spf1 ip6",
        "v=spf1 ip6::CAFE::BABE", "v=spf1 ip6:::1/129", "v=spf1 ip6:::1//33",
        "v=spf1 a:ctrl.example.com\rptr", "v=spf1 a:foo.example.com\0x"s,
        "v=spf1 \x80"
        "a",
        "v=spf1 exists:%{r}.example.com", "v=spf1 -exists:%(ir).sbl.example.com", "v=spf10");
    INFO(bad);
    core::Result<SpfRecord> r = parse_spf_record(bad);
    CHECK(r.status().kind() == core::Status::Kind::kInvalid);
  }
  SECTION("unknown modifiers are checked, then ignored") {
    core::Result<SpfRecord> r = parse_spf_record("v=spf1 default=+ moo.cow-far_out=man:dog/cat");
    REQUIRE(r);
    CHECK(r->mechanisms.empty());
    CHECK_FALSE(r->redirect);
  }
}

// A FakeResolver on a ManualPoster, and one check at a time.
struct Harness {
  dns::ManualPoster poster;
  dns::FakeResolver dns{poster};
  core::FakeClock clock;
  SpfOptions options;

  Harness() { options.clock = &clock; }

  SpfVerdict check(const SpfRequest& request) {
    std::optional<SpfVerdict> verdict;
    check_spf(
        dns, poster, request, [&](SpfVerdict v) { verdict = std::move(v); }, options);
    CHECK_FALSE(verdict);
    poster.run_pending();
    REQUIRE(verdict);
    return *verdict;
  }
  SpfVerdict check(const char* client, const char* mail_from, const char* helo = "mx.test") {
    return check(SpfRequest{ip(client), helo, mail_from});
  }
};

TEST_CASE("unit: SPF evaluates a record and reports what decided", "[policy][unit]") {
  Harness h;
  h.dns.add_txt("example.test", "not spf");
  h.dns.add_txt("example.test", "v=spf1 ip4:192.0.2.0/24 a:mail.example.test ~all");
  h.dns.add_a("mail.example.test", "198.51.100.7");

  SpfVerdict v = h.check("192.0.2.9", "alice@example.test");
  CHECK(v.result == SpfResult::kPass);
  CHECK(v.mechanism == "ip4:192.0.2.0/24");
  CHECK(v.domain == "example.test");

  v = h.check("198.51.100.7", "alice@example.test");
  CHECK(v.result == SpfResult::kPass);
  CHECK(v.mechanism == "a:mail.example.test");

  v = h.check("203.0.113.1", "alice@example.test");
  CHECK(v.result == SpfResult::kSoftFail);
  CHECK(v.mechanism == "~all");
  CHECK(spf_result_name(v.result) == std::string("softfail"));
}

TEST_CASE("unit: SPF record selection", "[policy][unit]") {
  Harness h;
  h.dns.add_txt("none.test", "v=spf10 -all");
  h.dns.add_txt("two.test", "v=spf1 -all");
  h.dns.add_txt("two.test", "V=SPF1 +all");
  h.dns.add_txt("bad.test", "v=spf1 -all moo");
  h.dns.add_a("noname.test", "192.0.2.1");
  h.dns.set_fault("down.test", dns::FakeResolver::Fault::kServfail);

  CHECK(h.check("192.0.2.1", "a@none.test").result == SpfResult::kNone);
  CHECK(h.check("192.0.2.1", "a@noname.test").result == SpfResult::kNone);    // NODATA
  CHECK(h.check("192.0.2.1", "a@nxdomain.test").result == SpfResult::kNone);  // NXDOMAIN
  CHECK(h.check("192.0.2.1", "a@two.test").result == SpfResult::kPermError);
  SpfVerdict v = h.check("192.0.2.1", "a@bad.test");
  CHECK(v.result == SpfResult::kPermError);
  CHECK_THAT(v.problem, Catch::Contains("moo"));
  v = h.check("192.0.2.1", "a@down.test");
  CHECK(v.result == SpfResult::kTempError);
  CHECK_THAT(v.problem, Catch::Contains("SERVFAIL"));
}

TEST_CASE("unit: SPF answers none for a malformed domain without DNS, still posted",
          "[policy][unit]") {
  Harness h;
  auto sender = GENERATE(as<std::string>{}, "a@single", "a@[192.0.2.1]", "a@x..test",
                         "a@" + std::string(64, 'x') + ".test");
  INFO(sender);
  SpfVerdict v = h.check(SpfRequest{ip("192.0.2.1"), "mx.test", sender});
  CHECK(v.result == SpfResult::kNone);
  CHECK(h.dns.queries().empty());
}

TEST_CASE("unit: SPF checks the null sender as postmaster@HELO, and HELO alone", "[policy][unit]") {
  Harness h;
  h.dns.add_txt("helo.test", "v=spf1 exists:%{l}.%{o}.%{h}.x.test -all");
  h.dns.add_a("postmaster.helo.test.helo.test.x.test", "127.0.0.2");
  h.dns.add_txt("from.test", "v=spf1 -all");

  SpfVerdict v = h.check("192.0.2.1", "", "helo.test");
  CHECK(v.result == SpfResult::kPass);
  CHECK(v.domain == "helo.test");

  const SpfRequest request{ip("192.0.2.1"), "helo.test", "someone@from.test"};
  CHECK(h.check(request).result == SpfResult::kFail);
  std::optional<SpfVerdict> helo;
  check_host(
      h.dns, h.poster, helo_identity(request), [&](const SpfVerdict& v) { helo = v; }, h.options);
  h.poster.run_pending();
  REQUIRE(helo);
  CHECK(helo->result == SpfResult::kPass);
}

TEST_CASE("unit: SPF include and redirect", "[policy][unit]") {
  Harness h;
  h.dns.add_txt("main.test", "v=spf1 include:inc.test -all exp=why.test");
  h.dns.add_txt("inc.test", "v=spf1 ip4:192.0.2.1 -all exp=other.test");
  h.dns.add_txt("why.test", "%{i} is not allowed to send for %{d}");
  h.dns.add_txt("other.test", "never shown");
  h.dns.add_txt("redir.test", "v=spf1 exp=why.test redirect=main.test");
  h.dns.add_txt("noinc.test", "v=spf1 include:nothing.test -all");
  h.dns.add_txt("loop.test", "v=spf1 include:loop.test -all");

  CHECK(h.check("192.0.2.1", "a@main.test").result == SpfResult::kPass);
  SpfVerdict v = h.check("192.0.2.2", "a@main.test");
  CHECK(v.result == SpfResult::kFail);
  CHECK(v.explanation == "192.0.2.2 is not allowed to send for main.test");

  // redirect: main.test's record decides, with its own exp= and <domain>.
  v = h.check("192.0.2.2", "a@redir.test");
  CHECK(v.result == SpfResult::kFail);
  CHECK(v.explanation == "192.0.2.2 is not allowed to send for main.test");
  CHECK(v.domain == "redir.test");

  v = h.check("192.0.2.2", "a@noinc.test");
  CHECK(v.result == SpfResult::kPermError);
  CHECK_THAT(v.problem, Catch::Contains("include:nothing.test"));

  const size_t before = h.dns.queries().size();
  v = h.check("192.0.2.2", "a@loop.test");
  CHECK(v.result == SpfResult::kPermError);
  CHECK(h.dns.queries().size() - before == 11);  // the record and 10 includes of it
}

TEST_CASE("unit: SPF limits of RFC 7208 §4.6.4", "[policy][unit]") {
  Harness h;
  h.dns.add_a("other.test", "198.51.100.1");
  std::string ten = "v=spf1";
  for (int i = 0; i < 10; ++i) ten += " a:other.test";
  h.dns.add_txt("ten.test", ten + " ip4:192.0.2.1 -all");
  h.dns.add_txt("eleven.test", ten + " a:other.test ip4:192.0.2.1 -all");
  h.dns.add_txt("void2.test", "v=spf1 a:no1.test mx:no2.test ip4:192.0.2.1 -all");
  h.dns.add_txt("void3.test", "v=spf1 a:no1.test mx:no2.test exists:no3.test ip4:192.0.2.1");
  for (int i = 0; i < 11; ++i) h.dns.add_mx("mx11.test", i, "other.test");
  h.dns.add_txt("mx11.test", "v=spf1 mx ip4:192.0.2.1");
  for (int i = 0; i < 10; ++i) h.dns.add_mx("mx10.test", i, "other.test");
  h.dns.add_txt("mx10.test", "v=spf1 mx ip4:192.0.2.1");

  SECTION("10 DNS-querying terms pass, the 11th is a permerror") {
    CHECK(h.check("192.0.2.1", "a@ten.test").result == SpfResult::kPass);
    SpfVerdict v = h.check("192.0.2.1", "a@eleven.test");
    CHECK(v.result == SpfResult::kPermError);
    CHECK_THAT(v.problem, Catch::Contains("more than 10"));
  }
  SECTION("2 void lookups pass, the 3rd is a permerror") {
    CHECK(h.check("192.0.2.1", "a@void2.test").result == SpfResult::kPass);
    SpfVerdict v = h.check("192.0.2.1", "a@void3.test");
    CHECK(v.result == SpfResult::kPermError);
    CHECK_THAT(v.problem, Catch::Contains("void"));
  }
  SECTION("more than 10 MX records is a permerror") {
    CHECK(h.check("192.0.2.1", "a@mx10.test").result == SpfResult::kPass);
    CHECK(h.check("192.0.2.1", "a@mx11.test").result == SpfResult::kPermError);
  }
  SECTION("the limits are options") {
    h.options.max_dns_terms = 11;
    CHECK(h.check("192.0.2.1", "a@eleven.test").result == SpfResult::kPass);
    h.options.max_void_lookups = 3;
    CHECK(h.check("192.0.2.1", "a@void3.test").result == SpfResult::kPass);
  }
  SECTION("a global bound on DNS queries") {
    h.options.max_queries = 5;
    SpfVerdict v = h.check("192.0.2.1", "a@ten.test");
    CHECK(v.result == SpfResult::kPermError);
    CHECK_THAT(v.problem, Catch::Contains("5 DNS queries"));
    CHECK(h.dns.queries().size() == 5);
  }
  SECTION("a time bound, measured as answers arrive: temperror") {
    h.options.max_elapsed_ms = 1000;
    std::optional<SpfVerdict> verdict;
    check_spf(
        h.dns, h.poster, SpfRequest{ip("192.0.2.1"), "mx.test", "a@ten.test"},
        [&](const SpfVerdict& v) { verdict = v; }, h.options);
    h.clock.advance_ms(1001);
    h.poster.run_pending();
    REQUIRE(verdict);
    CHECK(verdict->result == SpfResult::kTempError);
    CHECK_THAT(verdict->problem, Catch::Contains("time limit"));
  }
}

TEST_CASE("unit: SPF ptr and %{p} use validated names, at most 10", "[policy][unit]") {
  Harness h;
  h.dns.add_txt("ptr.test", "v=spf1 ptr -all exp=why.ptr.test");
  h.dns.add_txt("why.ptr.test", "from %{p}");
  // 192.0.2.1 names a.ptr.test (which maps back) and b.ptr.test (which does not).
  h.dns.add_ptr("1.2.0.192.in-addr.arpa", "b.ptr.test");
  h.dns.add_ptr("1.2.0.192.in-addr.arpa", "A.Ptr.Test.");
  h.dns.add_a("a.ptr.test", "192.0.2.1");
  h.dns.add_a("b.ptr.test", "192.0.2.99");
  h.dns.add_a("b.ptr.test", "192.0.2.99");
  // 192.0.2.2 names b.ptr.test only: not validated.
  h.dns.add_ptr("2.2.0.192.in-addr.arpa", "b.ptr.test");
  // 192.0.2.3 has 10 other names before the one that would match.
  for (int i = 0; i < 10; ++i) {
    const std::string name = "n" + std::to_string(i) + ".other.test";
    h.dns.add_ptr("3.2.0.192.in-addr.arpa", name);
    h.dns.add_a(name, "192.0.2.3");
  }
  h.dns.add_ptr("3.2.0.192.in-addr.arpa", "c.ptr.test");
  h.dns.add_a("c.ptr.test", "192.0.2.3");
  h.dns.set_fault("4.2.0.192.in-addr.arpa", dns::FakeResolver::Fault::kServfail);

  CHECK(h.check("192.0.2.1", "x@ptr.test").result == SpfResult::kPass);
  SpfVerdict v = h.check("192.0.2.2", "x@ptr.test");
  CHECK(v.result == SpfResult::kFail);
  CHECK(v.explanation == "from unknown");
  CHECK(h.check("192.0.2.3", "x@ptr.test").result == SpfResult::kFail);
  // A DNS error on the PTR lookup makes ptr not match; it is not a temperror (§5.5).
  CHECK(h.check("192.0.2.4", "x@ptr.test").result == SpfResult::kFail);

  h.dns.add_txt("exp.test", "v=spf1 -all exp=why.ptr.test");
  v = h.check("192.0.2.1", "x@exp.test");
  CHECK(v.explanation == "from a.ptr.test");
}

TEST_CASE("unit: SPF DNS errors are temperror, except for the explanation", "[policy][unit]") {
  Harness h;
  h.dns.set_fault("down.test", dns::FakeResolver::Fault::kTimeout);
  h.dns.add_txt("a.test", "v=spf1 a:down.test -all");
  h.dns.add_txt("mx.test", "v=spf1 mx:mxdown.test -all");
  h.dns.add_mx("mxdown.test", 10, "down.test");
  h.dns.add_txt("exists.test", "v=spf1 exists:down.test -all");
  h.dns.add_txt("inc.test", "v=spf1 include:down.test -all");
  h.dns.add_txt("exp.test", "v=spf1 -all exp=down.test");
  h.dns.add_txt("exp2.test", "v=spf1 -all exp=two.test");
  h.dns.add_txt("two.test", "one");
  h.dns.add_txt("two.test", "two");

  for (const char* domain : {"a.test", "mx.test", "exists.test", "inc.test"}) {
    INFO(domain);
    SpfVerdict v = h.check("192.0.2.1", (std::string("x@") + domain).c_str());
    CHECK(v.result == SpfResult::kTempError);
    CHECK_THAT(v.problem, Catch::Contains("timeout"));
  }
  // An explanation must be US-ASCII (§6.2), whatever a macro brings in.
  h.dns.add_txt("utf8.test", "v=spf1 -all exp=why.utf8.test");
  h.dns.add_txt("why.utf8.test", "%{l} may not send");
  CHECK(h.check("192.0.2.1", "cafe@utf8.test").explanation == "cafe may not send");
  SpfVerdict utf8 = h.check("192.0.2.1", "caf\xC3\xA9@utf8.test");
  CHECK(utf8.result == SpfResult::kFail);
  CHECK(utf8.explanation.empty());

  for (const char* domain : {"exp.test", "exp2.test"}) {
    INFO(domain);
    SpfVerdict v = h.check("192.0.2.1", (std::string("x@") + domain).c_str());
    CHECK(v.result == SpfResult::kFail);
    CHECK(v.explanation.empty());
  }
}

TEST_CASE("unit: SPF dual CIDR and address families", "[policy][unit]") {
  Harness h;
  h.dns.add_txt("dual.test", "v=spf1 a:host.test/24//64 -all");
  h.dns.add_a("host.test", "192.0.2.200");
  h.dns.add_aaaa("host.test", "2001:db8:1::1");
  h.dns.add_txt("v6.test", "v=spf1 ip6:2001:db8::/32 ip4:192.0.2.0/24 -all");

  CHECK(h.check("192.0.2.7", "x@dual.test").result == SpfResult::kPass);
  CHECK(h.check("192.0.3.7", "x@dual.test").result == SpfResult::kFail);
  CHECK(h.check("2001:db8:1::ffff", "x@dual.test").result == SpfResult::kPass);
  CHECK(h.check("2001:db8:2::1", "x@dual.test").result == SpfResult::kFail);
  CHECK(h.check("2001:db8:5::1", "x@v6.test").result == SpfResult::kPass);
  // An IPv4-mapped IPv6 client is IPv4 (§5): ip6 does not match it, ip4 does.
  CHECK(h.check("::ffff:192.0.2.1", "x@v6.test").result == SpfResult::kPass);
  CHECK(h.check("::ffff:198.51.100.1", "x@v6.test").result == SpfResult::kFail);
}

}  // namespace
}  // namespace policy
