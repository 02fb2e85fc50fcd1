#include "policy/dkim_verifier.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dkim_test_support.h"
#include "dns/fake_resolver.h"
#include "dns/post.h"
#include "policy/dkim_lib.h"
#include "policy/dkim_signer.h"

namespace {

using dkim_test::dkimpy_file;
using dkim_test::dkimpy_record;
using dkim_test::kMessage;
using dkim_test::with_crlf;
using policy::DkimKey;
using policy::DkimResult;
using policy::DkimSigner;
using policy::DkimVerifier;
using Outcome = DkimResult::Outcome;
using Fault = dns::FakeResolver::Fault;

struct Dns {
  dns::ManualPoster poster;
  dns::FakeResolver resolver{poster};
};

// Runs one verification to its end; the results must not arrive inside verify().
std::vector<DkimResult> run(Dns& dns, std::string message,
                            policy::DkimVerifierOptions options = {}) {
  auto verifier = DkimVerifier::create(dns.resolver, dns.poster, options);
  REQUIRE(verifier.is_ok());
  int calls = 0;
  std::vector<DkimResult> results;
  verifier->verify(std::move(message), [&](std::vector<DkimResult> r) {
    ++calls;
    results = std::move(r);
  });
  REQUIRE(calls == 0);
  dns.poster.run_pending();
  REQUIRE(calls == 1);
  return results;
}

std::string replace(std::string text, std::string_view from, std::string_view to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// example.com signs with the dkimpy 2048-bit test key, selector "test".
const char* const kRsaKeyName = "test._domainkey.example.com";

DkimKey rsa_key() {
  return DkimKey{"example.com", "test", "rsa-sha256", dkimpy_file("2048_testkey.key")};
}

std::string rsa_record() {
  return dkimpy_record("2048_testkey_wo_markers.pub.txt");
}

std::string signed_message(const std::vector<DkimKey>& keys,
                           const std::string& message = kMessage) {
  auto signer = DkimSigner::create(keys);
  REQUIRE(signer.is_ok());
  auto fields = signer->sign(message, "example.com");
  REQUIRE(fields.is_ok());
  return *fields + message;
}

void check_one(const std::vector<DkimResult>& results, Outcome outcome, std::string_view reason) {
  REQUIRE(results.size() == 1);
  CAPTURE(results[0].reason);
  CHECK(results[0].result == outcome);
  CHECK(results[0].reason == reason);
}

TEST_CASE("unit: a message signed by DkimSigner verifies, and tampering is caught",
          "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  const std::string message = signed_message({rsa_key()});

  SECTION("as signed: pass") {
    const auto results = run(dns, message);
    check_one(results, Outcome::kPass, "");
    CHECK(results[0].domain == "example.com");
    CHECK(results[0].selector == "test");
    CHECK(results[0].algorithm == "rsa-sha256");
    CHECK(dns.resolver.queries() == std::vector<std::string>{"TXT test._domainkey.example.com"});
  }
  SECTION("relaxed canonicalisation survives refolding and trace fields added on the way") {
    std::string relayed =
        replace(message, "Subject: Quarterly figures", "Subject:   Quarterly\r\n\t figures  ");
    relayed = "Received: from mx.example.net by mx2.example.net\r\n" + relayed;
    check_one(run(dns, relayed), Outcome::kPass, "");
  }
  SECTION("a changed body fails on the body hash") {
    check_one(run(dns, replace(message, "the figures are attached", "the figures are wrong")),
              Outcome::kFail, "body hash mismatch");
  }
  SECTION("a line added to the body fails too (no l=)") {
    check_one(run(dns, message + "P.S. click here\r\n"), Outcome::kFail, "body hash mismatch");
  }
  SECTION("a changed signed header field fails the signature") {
    check_one(run(dns, replace(message, "Subject: Quarterly figures", "Subject: Pay now")),
              Outcome::kFail, "signature verification failed");
  }
  SECTION("a second From added on the way fails (From is oversigned)") {
    check_one(
        run(dns, replace(message, "From: Alice", "From: Mallory <m@evil.example>\r\nFrom: Alice")),
        Outcome::kFail, "signature verification failed");
  }
  SECTION("a key that is not the signer's fails the signature") {
    Dns other;
    other.resolver.add_txt(kRsaKeyName, dkimpy_record("2048_testkey_PKCS8.key.pub.txt"));
    check_one(run(other, message), Outcome::kFail, "signature verification failed");
  }
}

TEST_CASE("unit: an Ed25519 signature beside the RSA one verifies too", "[policy][unit]") {
  auto ed = policy::generate_key(policy::kDkimEd25519Sha256);
  REQUIRE(ed.is_ok());
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  dns.resolver.add_txt("ed._domainkey.example.com",
                       policy::dns_txt_record(policy::kDkimEd25519Sha256, ed->second));
  const std::string message =
      signed_message({rsa_key(), DkimKey{"example.com", "ed", "ed25519-sha256", ed->first}});

  auto results = run(dns, message);
  REQUIRE(results.size() == 2);
  CHECK(results[0].algorithm == "rsa-sha256");
  CHECK(results[0].result == Outcome::kPass);
  CHECK(results[1].algorithm == "ed25519-sha256");
  CHECK(results[1].selector == "ed");
  CHECK(results[1].result == Outcome::kPass);

  results = run(dns, replace(message, "figures are", "figures were"));
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CHECK(r.result == Outcome::kFail);
    CHECK(r.reason == "body hash mismatch");
  }
}

// RFC 8463 Appendix A.2: the Ed25519 key of the example, the public half of RFC 8032 §7.1's
// test key (dkimpy-data/rfc8032_7_1.key holds the private half).
const char* const kRfc8463Brisbane =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

TEST_CASE("unit: the RFC 8463 dual-signed example verifies, both signatures", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt("brisbane._domainkey.football.example.com", kRfc8463Brisbane);
  dns.resolver.add_txt("test._domainkey.football.example.com", dkimpy_record("test.txt"));
  const std::string message = with_crlf(dkimpy_file("rfc6376.signed.msg"));

  SECTION("as published") {
    const auto results = run(dns, message);
    REQUIRE(results.size() == 2);
    CAPTURE(results[0].reason, results[1].reason);
    CHECK(results[0].domain == "football.example.com");
    CHECK(results[0].selector == "brisbane");
    CHECK(results[0].algorithm == "ed25519-sha256");
    CHECK(results[0].result == Outcome::kPass);
    CHECK(results[1].selector == "test");
    CHECK(results[1].algorithm == "rsa-sha256");
    CHECK(results[1].result == Outcome::kPass);
  }
  SECTION("with a bare-LF copy (tolerated as CRLF)") {
    const auto results = run(dns, dkimpy_file("rfc6376.signed.msg"));
    REQUIRE(results.size() == 2);
    CAPTURE(results[0].reason, results[1].reason);
    CHECK(results[0].result == Outcome::kPass);
    CHECK(results[1].result == Outcome::kPass);
  }
  SECTION("another Ed25519 key at the selector fails that signature only") {
    Dns wrong;
    wrong.resolver.add_txt("brisbane._domainkey.football.example.com",
                           dkimpy_record("ed25519test.dns"));
    wrong.resolver.add_txt("test._domainkey.football.example.com", dkimpy_record("test.txt"));
    const auto results = run(wrong, message);
    REQUIRE(results.size() == 2);
    CHECK(results[0].result == Outcome::kFail);
    CHECK(results[0].reason == "signature verification failed");
    CHECK(results[1].result == Outcome::kPass);
  }
  SECTION("one key missing: the other signature is still evaluated") {
    Dns half;
    half.resolver.add_txt("test._domainkey.football.example.com", dkimpy_record("test.txt"));
    const auto results = run(half, message);
    REQUIRE(results.size() == 2);
    CHECK(results[0].result == Outcome::kPermError);
    CHECK(results[0].reason == "no key");
    CHECK(results[1].result == Outcome::kPass);
  }
  SECTION("simple canonicalisation: re-folding a signed field fails both") {
    const auto results =
        run(dns, replace(message, "Subject: Is dinner ready?", "Subject: Is dinner\r\n ready?"));
    REQUIRE(results.size() == 2);
    CHECK(results[0].result == Outcome::kFail);
    CHECK(results[1].result == Outcome::kFail);
  }
}

TEST_CASE("unit: a message signed with bare LF line ends verifies in its CRLF form",
          "[policy][unit]") {
  std::string lf_message;
  for (char c : kMessage)
    if (c != '\r') lf_message += c;
  auto signer = DkimSigner::create({rsa_key()});
  REQUIRE(signer.is_ok());
  auto fields = signer->sign(lf_message, "example.com");
  REQUIRE(fields.is_ok());
  CHECK(fields->find("\r\n") != std::string::npos);
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  check_one(run(dns, *fields + kMessage), Outcome::kPass, "");
}

// An rsa-sha1 signature, made with OpenDKIM directly since DkimSigner never makes one.
std::string sha1_signed(const std::string& message) {
  namespace di = policy::dkim_internal;
  auto lib = di::make_lib(DKIM_LIBFLAGS_FIXCRLF);
  REQUIRE(lib);
  std::string pem = dkimpy_file("2048_testkey.key");
  DKIM_STAT status = DKIM_STAT_OK;
  di::HandlePtr dkim(
      dkim_sign(lib.get(), di::kHandleId, nullptr, reinterpret_cast<dkim_sigkey_t>(pem.data()),
                reinterpret_cast<const unsigned char*>("test"),
                reinterpret_cast<const unsigned char*>("example.com"), DKIM_CANON_RELAXED,
                DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA1, -1, &status));
  REQUIRE(dkim);
  REQUIRE(di::feed_message(dkim.get(), message) == DKIM_STAT_OK);
  REQUIRE(dkim_eom(dkim.get(), nullptr) == DKIM_STAT_OK);
  unsigned char* value = nullptr;
  size_t len = 0;
  REQUIRE(dkim_getsighdr_d(dkim.get(), 16, &value, &len) == DKIM_STAT_OK);
  return "DKIM-Signature: " + std::string(reinterpret_cast<char*>(value), len) + "\r\n" + message;
}

TEST_CASE("unit: rsa-sha1 signatures are not accepted (RFC 8301)", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  const auto results = run(dns, sha1_signed(kMessage));
  REQUIRE(results.size() == 1);
  CHECK(results[0].algorithm == "rsa-sha1");
  CHECK(results[0].result == Outcome::kPermError);
  CHECK_THAT(results[0].reason, Catch::Contains("RFC 8301"));
}

TEST_CASE("unit: a message without a signature is none", "[policy][unit]") {
  Dns dns;
  const auto results = run(dns, kMessage);
  REQUIRE(results.size() == 1);
  CHECK(results[0].result == Outcome::kNone);
  CHECK(results[0].domain.empty());
  CHECK(dns.resolver.queries().empty());
}

TEST_CASE("unit: key lookup failures give permerror or temperror as RFC 6376 §6.1.2 says",
          "[policy][unit]") {
  const std::string message = signed_message({rsa_key()});
  Dns dns;
  SECTION("NXDOMAIN: no key") {
    dns.resolver.set_fault(kRsaKeyName, Fault::kNxdomain);
    check_one(run(dns, message), Outcome::kPermError, "no key");
  }
  SECTION("no TXT record at a name that exists: no key") {
    dns.resolver.add_a(kRsaKeyName, "192.0.2.1");
    check_one(run(dns, message), Outcome::kPermError, "no key");
  }
  SECTION("SERVFAIL: temperror") {
    dns.resolver.set_fault(kRsaKeyName, Fault::kServfail);
    const auto results = run(dns, message);
    REQUIRE(results.size() == 1);
    CHECK(results[0].result == Outcome::kTempError);
    CHECK_THAT(results[0].reason, Catch::StartsWith("key lookup failed"));
  }
  SECTION("timeout: temperror") {
    dns.resolver.set_fault(kRsaKeyName, Fault::kTimeout);
    const auto results = run(dns, message);
    REQUIRE(results.size() == 1);
    CHECK(results[0].result == Outcome::kTempError);
  }
  SECTION("an empty p= means the key was revoked") {
    dns.resolver.add_txt(kRsaKeyName, "v=DKIM1; k=rsa; p=");
    check_one(run(dns, message), Outcome::kPermError, "key revoked");
  }
  SECTION("a record that is not a key record") {
    dns.resolver.add_txt(kRsaKeyName, "v=spf1 -all");
    const auto results = run(dns, message);
    REQUIRE(results.size() == 1);
    CHECK(results[0].result == Outcome::kPermError);
  }
  SECTION("among several TXT records, the key record is used") {
    dns.resolver.add_txt(kRsaKeyName, "google-site-verification=abc");
    dns.resolver.add_txt(kRsaKeyName, rsa_record());
    check_one(run(dns, message), Outcome::kPass, "");
  }
  SECTION("a key for another algorithm") {
    auto ed = policy::generate_key(policy::kDkimEd25519Sha256);
    REQUIRE(ed.is_ok());
    dns.resolver.add_txt(kRsaKeyName,
                         policy::dns_txt_record(policy::kDkimEd25519Sha256, ed->second));
    const auto results = run(dns, message);
    REQUIRE(results.size() == 1);
    CHECK(results[0].result != Outcome::kPass);
  }
}

TEST_CASE("unit: malformed signatures are permerror, not skipped", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  const std::string good = signed_message({rsa_key()});
  const auto [name, broken] = GENERATE_REF(table<std::string, std::string>({
      {"no b=", "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=test; h=from; bh=AAAA\r\n"},
      {"unknown version",
       "DKIM-Signature: v=9; a=rsa-sha256; d=example.com; s=test; h=from; "
       "bh=AAAA; b=AAAA\r\n"},
      {"unknown algorithm",
       "DKIM-Signature: v=1; a=rsa-md5; d=example.com; s=test; h=from; "
       "bh=AAAA; b=AAAA\r\n"},
      {"h= without from",
       "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=test; h=subject; "
       "bh=AAAA; b=AAAA\r\n"},
      {"not a tag list", "DKIM-Signature: this is not a signature\r\n"},
  }));
  CAPTURE(name);
  const auto results = run(dns, broken + good);
  REQUIRE(results.size() == 2);
  CAPTURE(results[0].reason);
  CHECK(results[0].result == Outcome::kPermError);
  CHECK_FALSE(results[0].reason.empty());
  CHECK(results[1].result == Outcome::kPass);
}

TEST_CASE("unit: the number of key lookups per message is bounded", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  dns.resolver.add_txt("second._domainkey.example.com", rsa_record());
  const std::string message = signed_message(
      {rsa_key(), DkimKey{"example.com", "second", "rsa-sha256", dkimpy_file("2048_testkey.key")}});
  const auto results = run(dns, message, {.max_key_lookups = 1});
  REQUIRE(results.size() == 2);
  CHECK(results[0].result == Outcome::kPass);
  CHECK(results[1].result == Outcome::kNeutral);
  CHECK(dns.resolver.queries().size() == 1);
}

TEST_CASE("unit: a verification in flight outlives its verifier", "[policy][unit]") {
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  std::vector<DkimResult> results;
  {
    auto verifier = DkimVerifier::create(dns.resolver, dns.poster);
    REQUIRE(verifier.is_ok());
    verifier->verify(signed_message({rsa_key()}),
                     [&](std::vector<DkimResult> r) { results = std::move(r); });
  }
  dns.poster.run_pending();
  check_one(results, Outcome::kPass, "");
}

TEST_CASE("unit: one signer signs from several threads at once", "[policy][unit]") {
  auto signer = DkimSigner::create({rsa_key()});
  REQUIRE(signer.is_ok());
  constexpr int kThreads = 4;
  constexpr int kEach = 10;
  std::vector<std::vector<std::string>> messages(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string body =
            kMessage + "thread " + std::to_string(t) + " message " + std::to_string(i) + "\r\n";
        auto fields = signer->sign(body, "example.com");
        messages[t].push_back(fields.is_ok() ? *fields + body : "");
      }
    });
  }
  for (auto& thread : threads) thread.join();
  Dns dns;
  dns.resolver.add_txt(kRsaKeyName, rsa_record());
  for (const auto& per_thread : messages) {
    REQUIRE(per_thread.size() == kEach);
    for (const std::string& message : per_thread) check_one(run(dns, message), Outcome::kPass, "");
  }
}

TEST_CASE("unit: outcome names are RFC 8601's", "[policy][unit]") {
  CHECK(std::string(policy::outcome_name(Outcome::kPass)) == "pass");
  CHECK(std::string(policy::outcome_name(Outcome::kFail)) == "fail");
  CHECK(std::string(policy::outcome_name(Outcome::kNeutral)) == "neutral");
  CHECK(std::string(policy::outcome_name(Outcome::kTempError)) == "temperror");
  CHECK(std::string(policy::outcome_name(Outcome::kPermError)) == "permerror");
  CHECK(std::string(policy::outcome_name(Outcome::kNone)) == "none");
}

}  // namespace
