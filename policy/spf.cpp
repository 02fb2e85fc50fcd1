#include "policy/spf.h"

#include <arpa/inet.h>

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "core/address.h"
#include "policy/spf_macro.h"
#include "policy/spf_record.h"

namespace policy {
namespace {

using Names = std::vector<std::string>;

constexpr size_t kMaxName = 253;
constexpr size_t kMaxLabel = 63;

// The exp= of the record that decided, and the <domain> its macros expand with.
struct ExpSource {
  std::string spec;
  std::string domain;
};

// What one check_host() level (a record and its redirects) concluded.
struct Outcome {
  SpfResult result = SpfResult::kNeutral;
  std::string mechanism;
  std::string problem;
  std::optional<ExpSource> exp;
};
using OutcomeFn = std::function<void(Outcome)>;

Outcome error(SpfResult result, std::string problem) {
  return Outcome{result, {}, std::move(problem), std::nullopt};
}

// What one mechanism did to its record's evaluation: nothing, decide it, or end it in error.
struct Step {
  enum class Kind { kNoMatch, kMatch, kStop } kind = Kind::kNoMatch;
  Outcome stop;
};
using StepFn = std::function<void(Step)>;

Step no_match() {
  return Step{};
}
Step match() {
  return Step{Step::Kind::kMatch, {}};
}
Step stop(Outcome outcome) {
  return Step{Step::Kind::kStop, std::move(outcome)};
}

SpfResult result_of(SpfQualifier q) {
  switch (q) {
    case SpfQualifier::kPass:
      return SpfResult::kPass;
    case SpfQualifier::kFail:
      return SpfResult::kFail;
    case SpfQualifier::kSoftFail:
      return SpfResult::kSoftFail;
    case SpfQualifier::kNeutral:
      return SpfResult::kNeutral;
  }
  return SpfResult::kNeutral;
}

// A name DNS can carry: labels of 1 to 63 octets, 253 in all (RFC 1035 §2.3.4).
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) return false;
  for (;;) {
    const size_t dot = name.find('.');
    const size_t length = dot == std::string_view::npos ? name.size() : dot;
    if (length == 0 || length > kMaxLabel) return false;
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

// §4.3: a malformed <domain>, or one that is not multi-label, gives "none" without a lookup.
bool is_checkable_domain(std::string_view domain) {
  if (domain.empty() || domain.front() == '[' || domain.find('.') == std::string_view::npos) {
    return false;
  }
  for (char c : domain) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F) {
      return false;
    }
  }
  return is_dns_name(domain);
}

// §6.2: the explanation goes into an SMTP reply, so it must be US-ASCII; a macro may have
// brought in other bytes (an SMTPUTF8 local part, an odd HELO).
bool is_printable_ascii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) return false;
  }
  return true;
}

std::string strip_dot(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  return std::string(name);
}

bool in_network(const std::array<uint8_t, 16>& address, const std::array<uint8_t, 16>& network,
                int bits) {
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const auto mask = static_cast<uint8_t>(bits >= 8 ? 0xFF : 0xFF << (8 - bits));
    if ((address[i] & mask) != (network[i] & mask)) return false;
  }
  return true;
}

// Whether one address of an A or AAAA answer (text form) is in ip's network of `bits`.
bool address_matches(const core::IpAddress& ip, const std::string& text, int bits) {
  std::array<uint8_t, 16> address{};
  if (inet_pton(ip.is_v4() ? AF_INET : AF_INET6, text.c_str(), address.data()) != 1) return false;
  return in_network(ip.bytes(), address, bits);
}

// §7.3 for %{p}: <domain> itself if it validated, else a subdomain of it, else any.
std::string choose_validated(const Names& names, const std::string& domain) {
  const std::string d = core::to_lower_ascii(domain);
  for (const std::string& n : names) {
    if (n == d) return n;
  }
  for (const std::string& n : names) {
    if (n.ends_with("." + d)) return n;
  }
  return names.empty() ? "unknown" : names.front();
}

const core::Clock& system_clock() {
  static const core::SystemClock clock;
  return clock;
}

// One check_host() evaluation. Every asynchronous step holds a shared_ptr to it, so it lives
// until its last DNS answer arrives (or the resolver drops the callbacks).
class Evaluation : public std::enable_shared_from_this<Evaluation> {
 public:
  Evaluation(dns::Resolver& resolver, dns::Poster& poster, const SpfHostQuery& query,
             SpfCallback done, const SpfOptions& options)
      : resolver_(resolver),
        poster_(poster),
        options_(options),
        clock_(options.clock ? *options.clock : system_clock()),
        start_ms_(clock_.now_ms()),
        ip_(query.ip),
        domain_(strip_dot(query.domain)),
        done_(std::move(done)) {
    const size_t at = query.sender.rfind('@');
    values_.local_part = at == std::string::npos ? "" : query.sender.substr(0, at);
    values_.sender_domain = at == std::string::npos ? query.sender : query.sender.substr(at + 1);
    if (values_.local_part.empty()) values_.local_part = "postmaster";
    if (values_.sender_domain.empty()) values_.sender_domain = domain_;
    values_.sender = values_.local_part + "@" + values_.sender_domain;
    values_.ip = query.ip;
    values_.helo = query.helo;
    values_.receiver = query.receiver;
    values_.timestamp = start_ms_ / 1000;
  }

  void start() {
    check_host(domain_, [this](Outcome o) {
      if (o.result == SpfResult::kFail && o.exp) {
        explain(std::move(o));
      } else {
        deliver(std::move(o), {});
      }
    });
  }

 private:
  // A record under evaluation.
  struct Frame {
    std::string domain;
    SpfRecord record;
    size_t next = 0;
    OutcomeFn then;
  };
  using FramePtr = std::shared_ptr<Frame>;
  // Per name, whether its addresses hold the client's within the prefix, or failed.
  struct AddressCheck {
    enum class Kind { kNoMatch, kMatch, kError } kind = Kind::kNoMatch;
    std::string problem;
  };
  using AddressChecksFn = std::function<void(std::vector<AddressCheck>)>;

  template <typename T>
  using Ask = void (dns::Resolver::*)(const std::string&, dns::AnswerCallback<T>);
  template <typename T>
  using AnswerFn = std::function<void(core::Result<dns::Answer<T>>)>;

  // Every query goes through here: the global bounds are checked on the way out and back.
  template <typename T>
  void ask(Ask<T> method, const std::string& name, AnswerFn<T> fn) {
    if (finished_) return;
    if (++queries_ > options_.max_queries) {
      abort(SpfResult::kPermError,
            "more than " + std::to_string(options_.max_queries) + " DNS queries");
      return;
    }
    (resolver_.*method)(
        name, [self = shared_from_this(), fn = std::move(fn)](core::Result<dns::Answer<T>> result) {
          if (self->finished_) return;
          if (self->clock_.now_ms() - self->start_ms_ > self->options_.max_elapsed_ms) {
            self->abort(
                SpfResult::kTempError,
                "time limit of " + std::to_string(self->options_.max_elapsed_ms) + " ms exceeded");
            return;
          }
          fn(std::move(result));
        });
  }

  // A global bound was hit. Once the result is decided (only the explanation is missing) it
  // stands, without explanation.
  void abort(SpfResult result, std::string problem) {
    if (decided_) {
      deliver(std::move(*decided_), {});
    } else {
      deliver(error(result, std::move(problem)), {});
    }
  }

  void deliver(Outcome o, std::string explanation) {
    if (finished_) return;
    finished_ = true;
    SpfVerdict v{o.result, std::move(explanation), std::move(o.mechanism), domain_,
                 std::move(o.problem)};
    poster_.post([done = std::move(done_), v = std::move(v)]() mutable { done(std::move(v)); });
  }

  // §4.3-§4.5: the record of `domain`, then its evaluation.
  void check_host(const std::string& domain, OutcomeFn then) {
    if (!is_checkable_domain(domain)) {
      then(error(SpfResult::kNone, "\"" + domain + "\" is not a domain SPF can check"));
      return;
    }
    ask<std::string>(
        &dns::Resolver::query_txt, domain,
        [this, domain, then = std::move(then)](core::Result<dns::TxtAnswer> r) mutable {
          on_txt(domain, std::move(r), std::move(then));
        });
  }

  void on_txt(const std::string& domain, core::Result<dns::TxtAnswer> r, OutcomeFn then) {
    if (!r) {
      if (r.status().kind() == core::Status::Kind::kNotFound ||
          r.status().kind() == core::Status::Kind::kInvalid) {
        then(error(SpfResult::kNone,
                   "no SPF record at " + domain + " (" + r.status().message() + ")"));
      } else {
        then(error(SpfResult::kTempError, r.status().message()));
      }
      return;
    }
    const std::string* found = nullptr;
    size_t count = 0;
    for (const std::string& txt : r->records) {
      if (is_spf_record(txt)) {
        found = &txt;
        ++count;
      }
    }
    if (count == 0) {
      then(error(SpfResult::kNone, "no SPF record at " + domain));
      return;
    }
    if (count > 1) {
      then(error(SpfResult::kPermError, std::to_string(count) + " SPF records at " + domain));
      return;
    }
    core::Result<SpfRecord> record = parse_spf_record(*found);
    if (!record) {
      then(error(SpfResult::kPermError, domain + ": " + record.status().message()));
      return;
    }
    run(std::make_shared<Frame>(Frame{domain, std::move(record).value(), 0, std::move(then)}));
  }

  // Mechanisms from f->next on, until one needs DNS (it resumes here) or decides.
  void run(const FramePtr& f) {
    while (f->next < f->record.mechanisms.size()) {
      const size_t index = f->next++;
      const SpfMechanism& m = f->record.mechanisms[index];
      switch (m.kind) {
        case SpfMechanismKind::kAll:
          return decide(f, m);
        case SpfMechanismKind::kIp4:
          if (ip_.is_v4() && in_network(ip_.bytes(), m.network, m.cidr4)) return decide(f, m);
          continue;
        case SpfMechanismKind::kIp6:
          if (!ip_.is_v4() && in_network(ip_.bytes(), m.network, m.cidr6)) return decide(f, m);
          continue;
        default:
          return evaluate(f, m, [this, f, index](Step step) {
            switch (step.kind) {
              case Step::Kind::kMatch:
                return decide(f, f->record.mechanisms[index]);
              case Step::Kind::kStop:
                return f->then(std::move(step.stop));
              case Step::Kind::kNoMatch:
                return run(f);
            }
          });
      }
    }
    end_of_record(f);
  }

  void decide(const FramePtr& f, const SpfMechanism& m) {
    Outcome o{result_of(m.qualifier), m.text, {}, std::nullopt};
    if (f->record.exp) o.exp = ExpSource{*f->record.exp, f->domain};
    f->then(std::move(o));
  }

  // §6.1: no mechanism matched; redirect= if there is one, else neutral (§4.7).
  void end_of_record(const FramePtr& f) {
    if (!f->record.redirect) {
      f->then(Outcome{SpfResult::kNeutral, "default", {}, std::nullopt});
      return;
    }
    if (!count_term()) {
      f->then(too_many_terms());
      return;
    }
    expand(f->domain, *f->record.redirect, [this, f](const std::string& target) {
      check_host(target, [f, target](Outcome o) {
        if (o.result == SpfResult::kNone) {
          o = error(SpfResult::kPermError, "redirect=" + target + ": " + o.problem);
        }
        f->then(std::move(o));
      });
    });
  }

  // The mechanisms that query DNS (§5.2-§5.7).
  void evaluate(const FramePtr& f, const SpfMechanism& m, StepFn next) {
    if (!count_term()) {
      next(stop(too_many_terms()));
      return;
    }
    const std::string spec = m.domain_spec.empty() ? f->domain : m.domain_spec;
    const SpfMechanismKind kind = m.kind;
    const int cidr4 = m.cidr4, cidr6 = m.cidr6;
    expand(f->domain, spec,
           [this, kind, cidr4, cidr6, next = std::move(next)](const std::string& name) {
             switch (kind) {
               case SpfMechanismKind::kInclude:
                 return include(name, next);
               case SpfMechanismKind::kA:
                 return a(name, cidr4, cidr6, next);
               case SpfMechanismKind::kMx:
                 return mx(name, cidr4, cidr6, next);
               case SpfMechanismKind::kPtr:
                 return ptr(name, next);
               case SpfMechanismKind::kExists:
                 return exists(name, next);
               default:
                 return next(no_match());
             }
           });
  }

  // §5.2: the included domain's result decides whether include matches.
  void include(const std::string& target, const StepFn& next) {
    check_host(target, [next, target](Outcome o) {
      switch (o.result) {
        case SpfResult::kPass:
          return next(match());
        case SpfResult::kFail:
        case SpfResult::kSoftFail:
        case SpfResult::kNeutral:
          return next(no_match());
        case SpfResult::kTempError:
        case SpfResult::kPermError:
          return next(stop(std::move(o)));
        case SpfResult::kNone:
          return next(stop(error(SpfResult::kPermError, "include:" + target + ": " + o.problem)));
      }
    });
  }

  void a(const std::string& name, int cidr4, int cidr6, const StepFn& next) {
    if (!is_dns_name(name)) return next(no_match());
    ask<std::string>(address_query(), name,
                     [this, cidr4, cidr6, next](core::Result<dns::AddressAnswer> r) {
                       if (std::optional<Step> s = void_or_error(r)) return next(std::move(*s));
                       const int bits = ip_.is_v4() ? cidr4 : cidr6;
                       for (const std::string& address : r->records) {
                         if (address_matches(ip_, address, bits)) return next(match());
                       }
                       next(no_match());
                     });
  }

  // §5.4, with §4.6.4's limit on MX names.
  void mx(const std::string& name, int cidr4, int cidr6, const StepFn& next) {
    if (!is_dns_name(name)) return next(no_match());
    ask<dns::MxRecord>(
        &dns::Resolver::query_mx, name,
        [this, name, cidr4, cidr6, next](core::Result<dns::MxAnswer> r) {
          if (std::optional<Step> s = void_or_error(r)) return next(std::move(*s));
          if (r->records.size() > static_cast<size_t>(options_.max_names)) {
            return next(
                stop(error(SpfResult::kPermError,
                           name + " has " + std::to_string(r->records.size()) +
                               " MX records, more than " + std::to_string(options_.max_names))));
          }
          Names hosts;
          for (const dns::MxRecord& record : r->records) {
            if (record.host != "." && is_dns_name(record.host)) hosts.push_back(record.host);
          }
          check_addresses(hosts, ip_.is_v4() ? cidr4 : cidr6,
                          [next](const std::vector<AddressCheck>& checks) {
                            for (const AddressCheck& c : checks) {
                              if (c.kind == AddressCheck::Kind::kMatch) return next(match());
                            }
                            for (const AddressCheck& c : checks) {
                              if (c.kind == AddressCheck::Kind::kError) {
                                return next(stop(error(SpfResult::kTempError, c.problem)));
                              }
                            }
                            next(no_match());
                          });
        });
  }

  // §5.5: a validated PTR name equal to the target or below it.
  void ptr(const std::string& target, const StepFn& next) {
    const std::string t = core::to_lower_ascii(target);
    validated([t, next](const Names& names) {
      for (const std::string& n : names) {
        if (n == t || n.ends_with("." + t)) return next(match());
      }
      next(no_match());
    });
  }

  // §5.7: always an A query, whatever the client's address family.
  void exists(const std::string& name, const StepFn& next) {
    if (!is_dns_name(name)) return next(no_match());
    ask<std::string>(&dns::Resolver::query_a, name,
                     [this, next](const core::Result<dns::AddressAnswer>& r) {
                       if (std::optional<Step> s = void_or_error(r)) return next(std::move(*s));
                       next(match());
                     });
  }

  // DNS errors end the evaluation (§5: temperror); NXDOMAIN or no records are a "void
  // lookup" (§4.6.4) and a mechanism that does not match.
  template <typename T>
  std::optional<Step> void_or_error(const core::Result<dns::Answer<T>>& r) {
    const bool is_void = r ? r->records.empty()
                           : r.status().kind() == core::Status::Kind::kNotFound ||
                                 r.status().kind() == core::Status::Kind::kInvalid;
    if (!r && !is_void) return stop(error(SpfResult::kTempError, r.status().message()));
    if (!is_void) return std::nullopt;
    if (++voids_ > options_.max_void_lookups) {
      return stop(
          error(SpfResult::kPermError,
                "more than " + std::to_string(options_.max_void_lookups) + " void DNS lookups"));
    }
    return no_match();
  }

  Ask<std::string> address_query() const {
    return ip_.is_v4() ? &dns::Resolver::query_a : &dns::Resolver::query_aaaa;
  }

  // The addresses of each name (in parallel), compared with the client's within `bits`.
  void check_addresses(const Names& names, int bits, AddressChecksFn done) {
    if (names.empty()) return done({});
    struct Gather {
      size_t pending;
      std::vector<AddressCheck> checks;
      AddressChecksFn done;
    };
    auto gather = std::make_shared<Gather>(
        Gather{names.size(), std::vector<AddressCheck>(names.size()), std::move(done)});
    for (size_t i = 0; i < names.size(); ++i) {
      ask<std::string>(address_query(), names[i],
                       [this, gather, i, bits](core::Result<dns::AddressAnswer> r) {
                         AddressCheck& c = gather->checks[i];
                         if (!r) {
                           if (r.status().kind() != core::Status::Kind::kNotFound &&
                               r.status().kind() != core::Status::Kind::kInvalid) {
                             c = {AddressCheck::Kind::kError, r.status().message()};
                           }
                         } else {
                           for (const std::string& address : r->records) {
                             if (address_matches(ip_, address, bits)) {
                               c.kind = AddressCheck::Kind::kMatch;
                             }
                           }
                         }
                         if (--gather->pending == 0) gather->done(std::move(gather->checks));
                       });
    }
  }

  // §5.5: the client's PTR names (the first max_names) whose addresses include the client.
  // Looked up once per evaluation; errors only drop names (the sender does not control the
  // client's reverse zone).
  void validated(std::function<void(const Names&)> fn) {
    if (validated_) return fn(*validated_);
    ask<std::string>(&dns::Resolver::query_ptr, reverse_name(ip_),
                     [this, fn = std::move(fn)](core::Result<dns::PtrAnswer> r) {
                       auto names = std::make_shared<Names>();
                       if (r) {
                         for (const std::string& host : r->records) {
                           if (names->size() == static_cast<size_t>(options_.max_names)) break;
                           std::string n = core::to_lower_ascii(strip_dot(host));
                           if (is_dns_name(n)) names->push_back(std::move(n));
                         }
                       }
                       check_addresses(*names, ip_.is_v4() ? 32 : 128,
                                       [this, names, fn](std::vector<AddressCheck> checks) {
                                         Names valid;
                                         for (size_t i = 0; i < checks.size(); ++i) {
                                           if (checks[i].kind == AddressCheck::Kind::kMatch) {
                                             valid.push_back((*names)[i]);
                                           }
                                         }
                                         validated_ = std::move(valid);
                                         fn(*validated_);
                                       });
                     });
  }

  // A domain-spec expanded for <domain>, as a name to query; %{p} is resolved first.
  void expand(const std::string& domain, const std::string& spec,
              std::function<void(std::string)> fn) {
    expand_text(domain, spec, MacroContext::kDomain,
                [fn = std::move(fn)](core::Result<std::string> r) {
                  // Specs were checked when the record was parsed, so this cannot fail; an
                  // empty name is one DNS cannot carry, which every caller treats as absent.
                  fn(r ? query_name(*r) : std::string());
                });
  }

  void expand_text(const std::string& domain, const std::string& text, MacroContext where,
                   std::function<void(core::Result<std::string>)> fn) {
    auto go = [this, domain, text, where, fn = std::move(fn)]() {
      MacroValues v = values_;
      v.domain = domain;
      if (validated_) v.validated_name = choose_validated(*validated_, domain);
      fn(expand_macros(text, v, where));
    };
    if (!validated_ && uses_macro_letter(text, 'p')) {
      validated([go = std::move(go)](const Names&) { go(); });
    } else {
      go();
    }
  }

  // §6.2: any problem with the explanation drops it, never the result.
  void explain(Outcome o) {
    decided_ = o;
    const ExpSource source = *o.exp;
    expand(source.domain, source.spec, [this, source](const std::string& name) {
      if (!is_dns_name(name)) return deliver(std::move(*decided_), {});
      ask<std::string>(
          &dns::Resolver::query_txt, name, [this, source](core::Result<dns::TxtAnswer> r) {
            if (!r || r->records.size() != 1) return deliver(std::move(*decided_), {});
            expand_text(source.domain, r->records.front(), MacroContext::kExplanation,
                        [this](core::Result<std::string> text) {
                          deliver(std::move(*decided_),
                                  text && is_printable_ascii(*text) ? *text : std::string());
                        });
          });
    });
  }

  bool count_term() { return ++terms_ <= options_.max_dns_terms; }

  Outcome too_many_terms() const {
    return error(SpfResult::kPermError, "more than " + std::to_string(options_.max_dns_terms) +
                                            " DNS-querying mechanisms and redirects");
  }

  dns::Resolver& resolver_;
  dns::Poster& poster_;
  const SpfOptions options_;
  const core::Clock& clock_;
  const int64_t start_ms_;
  const core::IpAddress ip_;
  const std::string domain_;
  MacroValues values_;
  SpfCallback done_;
  int terms_ = 0;
  int voids_ = 0;
  int queries_ = 0;
  bool finished_ = false;
  std::optional<Names> validated_;
  std::optional<Outcome> decided_;  // the result, while its explanation is fetched
};

}  // namespace

const char* spf_result_name(SpfResult result) {
  switch (result) {
    case SpfResult::kNone:
      return "none";
    case SpfResult::kNeutral:
      return "neutral";
    case SpfResult::kPass:
      return "pass";
    case SpfResult::kFail:
      return "fail";
    case SpfResult::kSoftFail:
      return "softfail";
    case SpfResult::kTempError:
      return "temperror";
    case SpfResult::kPermError:
      return "permerror";
  }
  return "?";
}

SpfHostQuery mail_from_identity(const SpfRequest& request) {
  if (request.mail_from.empty()) return helo_identity(request);
  const size_t at = request.mail_from.rfind('@');
  std::string domain =
      at == std::string::npos ? request.mail_from : request.mail_from.substr(at + 1);
  return SpfHostQuery{request.ip, std::move(domain), request.mail_from, request.helo,
                      request.receiver};
}

SpfHostQuery helo_identity(const SpfRequest& request) {
  return SpfHostQuery{request.ip, request.helo, "postmaster@" + request.helo, request.helo,
                      request.receiver};
}

void check_host(dns::Resolver& resolver, dns::Poster& poster, const SpfHostQuery& query,
                SpfCallback done, const SpfOptions& options) {
  std::make_shared<Evaluation>(resolver, poster, query, std::move(done), options)->start();
}

void check_spf(dns::Resolver& resolver, dns::Poster& poster, const SpfRequest& request,
               SpfCallback done, const SpfOptions& options) {
  check_host(resolver, poster, mail_from_identity(request), std::move(done), options);
}

}  // namespace policy
