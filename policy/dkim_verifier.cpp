#include "policy/dkim_verifier.h"

#include <cstring>
#include <map>
#include <string_view>
#include <utility>

#include "core/address.h"
#include "dns/post.h"
#include "policy/dkim_key.h"
#include "policy/dkim_lib.h"

namespace policy {
namespace {

using Outcome = DkimResult::Outcome;

// What verify() learnt about one SELECTOR._domainkey.DOMAIN name before OpenDKIM runs.
struct KeyAnswer {
  enum class State {
    kPending,
    kFound,        // record holds the TXT text
    kNoKey,        // NXDOMAIN or no TXT record
    kTempError,    // error holds the resolver's message
    kInvalidName,  // d= and s= do not make a name that can be queried
    kSkipped,      // past options.max_key_lookups
    kTooLong,      // longer than OpenDKIM's buffer (set by the key-lookup hook)
  };
  State state = State::kPending;
  std::string record;
  std::string error;
};
using KeyAnswers = std::map<std::string, KeyAnswer>;

// The KeyAnswers key; names that are not valid DNS names are kept too (as kInvalidName).
std::string key_name(std::string_view selector, std::string_view domain) {
  auto name = dkim_key_name(selector, domain);
  if (name) return std::move(name).value();
  return core::to_lower_ascii(std::string(selector) + "._domainkey." + std::string(domain));
}

std::string text_of(const unsigned char* s) {
  return s != nullptr ? std::string(reinterpret_cast<const char*>(s)) : std::string();
}

// A result naming the signature (d=, s=, a=) and nothing more yet.
DkimResult identify(DKIM_SIGINFO* sig) {
  DkimResult r;
  r.domain = core::to_lower_ascii(text_of(dkim_sig_getdomain(sig)));
  r.selector = text_of(dkim_sig_getselector(sig));
  r.algorithm =
      text_of(dkim_sig_gettagvalue(sig, false, reinterpret_cast<u_char*>(const_cast<char*>("a"))));
  return r;
}

std::string sig_key_name(DKIM_SIGINFO* sig) {
  return key_name(text_of(dkim_sig_getselector(sig)), text_of(dkim_sig_getdomain(sig)));
}

// OpenDKIM's key-lookup hook: answers from what the resolver said. NOTFOUND becomes the
// signature's "no key" error; TRYAGAIN and ERROR leave the signature unevaluated, and
// classify() reports it from the KeyAnswer.
DKIM_CBSTAT lookup_key(DKIM* dkim, DKIM_SIGINFO* sig, unsigned char* buf, size_t buflen) {
  try {
    auto* keys = static_cast<KeyAnswers*>(dkim_get_user_context(dkim));
    if (keys == nullptr) return DKIM_CBSTAT_ERROR;
    const auto it = keys->find(sig_key_name(sig));
    if (it == keys->end()) return DKIM_CBSTAT_ERROR;
    KeyAnswer& key = it->second;
    switch (key.state) {
      case KeyAnswer::State::kFound:
        if (key.record.size() >= buflen) {
          key.state = KeyAnswer::State::kTooLong;
          return DKIM_CBSTAT_ERROR;
        }
        std::memcpy(buf, key.record.c_str(), key.record.size() + 1);
        return DKIM_CBSTAT_CONTINUE;
      case KeyAnswer::State::kNoKey:
      case KeyAnswer::State::kInvalidName:
        return DKIM_CBSTAT_NOTFOUND;
      case KeyAnswer::State::kTempError:
        return DKIM_CBSTAT_TRYAGAIN;
      default:
        return DKIM_CBSTAT_ERROR;
    }
  } catch (...) {  // nothing may unwind through OpenDKIM's C frames
    return DKIM_CBSTAT_ERROR;
  }
}

DkimResult::Outcome outcome_for(const KeyAnswer& key, std::string* reason) {
  switch (key.state) {
    case KeyAnswer::State::kNoKey:
      *reason = "no key";
      return Outcome::kPermError;
    case KeyAnswer::State::kInvalidName:
      *reason = "no key (d= and s= make no valid DNS name)";
      return Outcome::kPermError;
    case KeyAnswer::State::kTooLong:
      *reason = "key record too long (" + std::to_string(key.record.size()) + " bytes)";
      return Outcome::kPermError;
    case KeyAnswer::State::kTempError:
      *reason = "key lookup failed: " + key.error;
      return Outcome::kTempError;
    case KeyAnswer::State::kSkipped:
      *reason = "not evaluated: too many signatures";
      return Outcome::kNeutral;
    default:
      return Outcome::kNone;  // the key was found: OpenDKIM's verdict decides
  }
}

std::string sigerror_text(int error) {
  const char* text = dkim_sig_geterrorstr(error);
  return text != nullptr ? text : "signature error " + std::to_string(error);
}

DkimResult classify(DKIM_SIGINFO* sig, const KeyAnswers& keys) {
  DkimResult r = identify(sig);
  const unsigned flags = dkim_sig_getflags(sig);
  const int error = dkim_sig_geterror(sig);
  const bool processed = (flags & DKIM_SIGFLAG_PROCESSED) != 0;
  auto give = [&r](Outcome outcome, std::string reason) {
    r.result = outcome;
    r.reason = std::move(reason);
    return r;
  };

  // Errors found while parsing the signature itself (RFC 6376 §6.1.1).
  if (!processed && error != DKIM_SIGERROR_UNKNOWN && error != DKIM_SIGERROR_OK)
    return give(Outcome::kPermError, sigerror_text(error));
  if (const auto it = keys.find(key_name(r.selector, r.domain)); it != keys.end()) {
    std::string reason;
    const Outcome outcome = outcome_for(it->second, &reason);
    if (outcome != Outcome::kNone) return give(outcome, std::move(reason));
  }
  if (processed && error == DKIM_SIGERROR_OK && (flags & DKIM_SIGFLAG_PASSED) != 0 &&
      dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
    dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
    if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK && alg == DKIM_SIGN_RSASHA1)
      return give(Outcome::kPermError, "rsa-sha1 is not accepted (RFC 8301)");
    return give(Outcome::kPass, "");
  }
  switch (error) {
    case DKIM_SIGERROR_BADSIG:
      return give(Outcome::kFail, dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH
                                      ? "body hash mismatch"
                                      : "signature verification failed");
    case DKIM_SIGERROR_NOKEY:
      return give(Outcome::kPermError, "no key");
    case DKIM_SIGERROR_KEYREVOKED:
      return give(Outcome::kPermError, "key revoked");
    case DKIM_SIGERROR_KEYFAIL:
      return give(Outcome::kTempError, "key lookup failed");
    case DKIM_SIGERROR_UNKNOWN:
      return give(Outcome::kTempError, "not evaluated");
    default:
      return give(Outcome::kPermError, sigerror_text(error));
  }
}

}  // namespace

const char* outcome_name(DkimResult::Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass:
      return "pass";
    case Outcome::kFail:
      return "fail";
    case Outcome::kNeutral:
      return "neutral";
    case Outcome::kTempError:
      return "temperror";
    case Outcome::kPermError:
      return "permerror";
    case Outcome::kNone:
      return "none";
  }
  return "?";
}

// One verify() call: owns the message, the key answers and a share of the library, so that
// it outlives the verifier if the resolver answers after the verifier is gone.
struct DkimVerifier::Job {
  std::shared_ptr<DKIM_LIB> lib;
  std::string message;
  Done done;
  std::vector<DkimResult> signatures;  // as OpenDKIM's first reading names them
  std::vector<DkimResult> settled;     // the results, when known before any lookup
  KeyAnswers keys;
  size_t pending = 0;

  size_t read_signatures(size_t max_lookups);
  void on_answer(const std::string& name, core::Result<dns::TxtAnswer> answer);
  void finish();
  std::vector<DkimResult> run();
  std::vector<DkimResult> all(Outcome outcome, const std::string& reason) const;
};

// OpenDKIM reads the header section a first time, so that the keys fetched are exactly those
// its verification will ask for (with DELAYSIGPROC it asks for none yet). Returns how many
// keys are to be fetched.
size_t DkimVerifier::Job::read_signatures(size_t max_lookups) {
  auto settle = [this](Outcome outcome, std::string reason) {
    DkimResult r;
    r.result = outcome;
    r.reason = std::move(reason);
    settled.push_back(std::move(r));
    return 0;
  };
  DKIM_STAT status = DKIM_STAT_OK;
  dkim_internal::HandlePtr dkim(dkim_verify(lib.get(), dkim_internal::kHandleId, nullptr, &status));
  if (!dkim) return settle(Outcome::kTempError, dkim_internal::describe(nullptr, status));
  status = dkim_internal::feed_header_section(dkim.get(), message);
  if (status == DKIM_STAT_NOSIG) return settle(Outcome::kNone, "no signature");
  DKIM_SIGINFO** list = nullptr;
  int count = 0;
  if (dkim_getsiglist(dkim.get(), &list, &count) != DKIM_STAT_OK || count == 0)
    return settle(Outcome::kPermError, dkim_internal::describe(dkim.get(), status));

  size_t lookups = 0;
  for (int i = 0; i < count; ++i) {
    DkimResult sig = identify(list[i]);
    const int error = dkim_sig_geterror(list[i]);
    const bool readable = error == DKIM_SIGERROR_UNKNOWN || error == DKIM_SIGERROR_OK;
    if (readable && !sig.domain.empty() && !sig.selector.empty()) {
      const std::string name = key_name(sig.selector, sig.domain);
      if (!keys.contains(name)) {
        KeyAnswer& key = keys[name];
        if (!dkim_key_name(sig.selector, sig.domain))
          key.state = KeyAnswer::State::kInvalidName;
        else if (lookups == max_lookups)
          key.state = KeyAnswer::State::kSkipped;
        else
          ++lookups;
      }
    }
    signatures.push_back(std::move(sig));
  }
  return lookups;
}

void DkimVerifier::Job::on_answer(const std::string& name, core::Result<dns::TxtAnswer> answer) {
  KeyAnswer& key = keys[name];
  if (answer && !answer->records.empty()) {
    key.state = KeyAnswer::State::kFound;
    key.record = answer->records.front();
    for (const std::string& record : answer->records) {
      if (record.find("p=") != std::string::npos) {
        key.record = record;
        break;
      }
    }
  } else if (answer || answer.status().kind() == core::Status::Kind::kNotFound) {
    key.state = KeyAnswer::State::kNoKey;
  } else if (answer.status().kind() == core::Status::Kind::kInvalid) {
    key.state = KeyAnswer::State::kInvalidName;
  } else {
    key.state = KeyAnswer::State::kTempError;
    key.error = answer.status().message();
  }
  if (--pending == 0) finish();
}

void DkimVerifier::Job::finish() {
  std::vector<DkimResult> results = settled.empty() ? run() : std::move(settled);
  Done call = std::move(done);
  call(std::move(results));
}

std::vector<DkimResult> DkimVerifier::Job::all(Outcome outcome, const std::string& reason) const {
  std::vector<DkimResult> results = signatures;
  for (DkimResult& r : results) {
    r.result = outcome;
    r.reason = reason;
  }
  return results;
}

std::vector<DkimResult> DkimVerifier::Job::run() {
  DKIM_STAT status = DKIM_STAT_OK;
  dkim_internal::HandlePtr dkim(dkim_verify(lib.get(), dkim_internal::kHandleId, nullptr, &status));
  if (!dkim) return all(Outcome::kTempError, dkim_internal::describe(nullptr, status));
  dkim_set_user_context(dkim.get(), &keys);
  status = dkim_internal::feed_message(dkim.get(), message);
  // dkim_eom()'s status sums up one chosen signature; each one's verdict is in the list.
  if (status == DKIM_STAT_OK) status = dkim_eom(dkim.get(), nullptr);
  DKIM_SIGINFO** list = nullptr;
  int count = 0;
  if (dkim_getsiglist(dkim.get(), &list, &count) != DKIM_STAT_OK ||
      static_cast<size_t>(count) != signatures.size()) {
    const bool transient = status == DKIM_STAT_NORESOURCE || status == DKIM_STAT_INTERNAL;
    return all(transient ? Outcome::kTempError : Outcome::kPermError,
               dkim_internal::describe(dkim.get(), status));
  }
  std::vector<DkimResult> results;
  results.reserve(signatures.size());
  for (int i = 0; i < count; ++i) results.push_back(classify(list[i], keys));
  return results;
}

core::Result<DkimVerifier> DkimVerifier::create(dns::Resolver& resolver, dns::Poster& poster,
                                                DkimVerifierOptions options) {
  // BADSIGHANDLES: a malformed signature is reported (permerror) rather than skipped or
  // failing the whole message. DELAYSIGPROC: keys are looked up in dkim_eom(), which goes on
  // to the next signature when one cannot be evaluated (dkim_eoh() would stop at it).
  // FIXCRLF: tolerate bare LF.
  auto lib = dkim_internal::make_lib(DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_DELAYSIGPROC |
                                     DKIM_LIBFLAGS_FIXCRLF);
  if (!lib) return core::Status::temporary("dkim: OpenDKIM could not start");
  if (dkim_set_key_lookup(lib.get(), lookup_key) != DKIM_STAT_OK)
    return core::Status::temporary("dkim: cannot install the key lookup hook");
  return DkimVerifier(std::move(lib), resolver, poster, options);
}

void DkimVerifier::verify(std::string message, Done done) {
  auto job = std::make_shared<Job>();
  job->lib = lib_;
  job->message = std::move(message);
  job->done = std::move(done);
  job->pending = job->read_signatures(options_.max_key_lookups);
  if (job->pending == 0) {
    poster_->post([job] { job->finish(); });
    return;
  }
  for (const auto& [name, key] : job->keys) {
    if (key.state != KeyAnswer::State::kPending) continue;
    resolver_->query_txt(name, [job, name](core::Result<dns::TxtAnswer> answer) {
      job->on_answer(name, std::move(answer));
    });
  }
}

}  // namespace policy
