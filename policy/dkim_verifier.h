#pragma once
// DkimVerifier: checks every DKIM signature of an incoming message (RFC 6376 §6) with
// OpenDKIM, fetching the public keys through dns::Resolver so that no lookup blocks the loop.
//
// OpenDKIM's own key lookup is a blocking DNS query, and its key-lookup hook is synchronous.
// So verify() works in two passes. First OpenDKIM reads only the header section (with
// DKIM_LIBFLAGS_DELAYSIGPROC it looks up nothing yet), which names the signatures and so the
// SELECTOR._domainkey.DOMAIN TXT records to fetch; the resolver is asked for all of them at
// once. When the last answer is in, OpenDKIM runs over the whole message with a key-lookup
// hook that answers from those results. Both passes parse the same way, so the keys fetched
// are exactly the keys asked for.
//
// One DkimResult per DKIM-Signature field, top to bottom; a message with none gets one result
// kNone, and a header section OpenDKIM cannot parse one kPermError. Outcomes (RFC 8601
// §2.7.1 names; RFC 6376 §6.1 and RFC 8301 for the choices):
//   kPass       signature and body hash verified
//   kFail       "body hash mismatch" (the body changed), or "signature verification
//               failed" (a signed header field changed, or the key does not match)
//   kPermError  "no key" (NXDOMAIN, or no TXT record: RFC 6376 §6.1.2 PERMFAIL), "key
//               revoked" (empty p=), a malformed signature or key record, a key too small
//               for RFC 8301 (RSA under 1024 bits), rsa-sha1 (RFC 8301 §3.1), an expired
//               signature or one from the future
//   kTempError  the key lookup failed for now (SERVFAIL, timeout): try again later
//   kNeutral    not evaluated: more signatures than options.max_key_lookups allows
//   kNone       the message is not signed
//
// Threading and lifetime: one verifier per loop thread, used on that thread (as its
// Resolver). `done` is called exactly once, on that thread, never inside verify(). A verify()
// in flight keeps what it needs alive on its own, so the verifier may be destroyed before
// `done` runs; destroying the resolver drops the lookups, and then `done` is never called.
// The OpenDKIM work (hashing the message, one RSA or Ed25519 verification per signature)
// runs on the loop thread when the last key arrives.
//
// Limits: the message is passed whole with CRLF line ends (as queued; bare LF is tolerated);
// at most options.max_key_lookups distinct keys are fetched per message; a TXT RRset with
// several records uses the first that has a p= tag; key records longer than OpenDKIM's
// 1024-byte buffer are a permerror; no ATPS, no DNSSEC status.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "dns/resolver.h"

struct dkim_lib;  // OpenDKIM's DKIM_LIB

namespace dns {
class Poster;
}  // namespace dns

namespace policy {

struct DkimResult {
  enum class Outcome { kPass, kFail, kNeutral, kTempError, kPermError, kNone };

  std::string domain;     // d=, lower case ("" when absent or unsigned)
  std::string selector;   // s=
  std::string algorithm;  // a=, e.g. "rsa-sha256"
  Outcome result = Outcome::kNone;
  std::string reason;  // for the Authentication-Results comment and the log
};

// "pass", "fail", "neutral", "temperror", "permerror", "none" (RFC 8601 §2.7.1).
const char* outcome_name(DkimResult::Outcome outcome);

struct DkimVerifierOptions {
  // Distinct SELECTOR._domainkey.DOMAIN names fetched for one message; signatures past the
  // limit are kNeutral. Bounds the DNS work a single message can cause.
  size_t max_key_lookups = 8;
};

class DkimVerifier {
 public:
  using Done = std::function<void(std::vector<DkimResult>)>;

  // Status::temporary if OpenDKIM cannot start. `resolver` and `poster` must outlive the
  // verifier; `poster` runs `done` for messages that need no lookup.
  static core::Result<DkimVerifier> create(dns::Resolver& resolver, dns::Poster& poster,
                                           DkimVerifierOptions options = {});

  void verify(std::string message, Done done);

 private:
  struct Job;

  DkimVerifier(std::shared_ptr<dkim_lib> lib, dns::Resolver& resolver, dns::Poster& poster,
               DkimVerifierOptions options)
      : lib_(std::move(lib)), resolver_(&resolver), poster_(&poster), options_(options) {}

  std::shared_ptr<dkim_lib> lib_;
  dns::Resolver* resolver_;
  dns::Poster* poster_;
  DkimVerifierOptions options_;
};

}  // namespace policy
