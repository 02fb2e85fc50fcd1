#include "mta/inbound_checks.h"

#include "core/address.h"

namespace mta {

core::Result<std::unique_ptr<InboundChecks>> InboundChecks::create(net::Loop& loop,
                                                                   const Config& config) {
  auto dns = DnsStack::create(loop, config);
  if (!dns) return dns.status();
  auto verifier = policy::DkimVerifier::create(*(*dns)->resolver, *(*dns)->poster);
  if (!verifier) return verifier.status();
  return std::unique_ptr<InboundChecks>(new InboundChecks(
      config, std::move(*dns), std::make_unique<policy::DkimVerifier>(std::move(*verifier))));
}

namespace {

// RFC 7208 §2.3: the HELO identity is checked only when it is a host name; an address
// literal or a bare word says nothing SPF can look up.
bool helo_is_host_name(const std::string& helo) {
  return helo.find('.') != std::string::npos && helo.front() != '[' &&
         core::is_valid_domain(helo, false);
}

}  // namespace

void InboundChecks::check_sender(const policy::SpfRequest& request,
                                 std::function<void(policy::InboundResults)> done) {
  struct Join {
    policy::InboundResults results;
    int pending = 0;
    std::function<void(policy::InboundResults)> done;
    void finish() {
      if (--pending == 0) done(std::move(results));
    }
  };
  auto join = std::make_shared<Join>();
  join->results.mail_from = request.mail_from;
  join->results.helo = request.helo;
  join->done = std::move(done);
  const bool helo = helo_is_host_name(request.helo);
  join->pending = helo ? 2 : 1;
  policy::SpfRequest req = request;
  req.receiver = config_.hostname;
  policy::check_spf(*dns_->resolver, *dns_->poster, req, [join](policy::SpfVerdict v) {
    join->results.spf_mail_from = std::move(v);
    join->finish();
  });
  if (helo)
    policy::check_host(*dns_->resolver, *dns_->poster, policy::helo_identity(req),
                       [join](policy::SpfVerdict v) {
                         join->results.spf_helo = std::move(v);
                         join->finish();
                       });
}

void InboundChecks::check_message(policy::InboundResults results, std::string message,
                                  std::function<void(policy::InboundResults)> done) {
  if (!config_.dkim_verify) return check_dmarc(std::move(results), std::move(done));
  auto carried = std::make_shared<policy::InboundResults>(std::move(results));
  dkim_->verify(std::move(message), [this, carried, done = std::move(done)](
                                        std::vector<policy::DkimResult> dkim) mutable {
    carried->dkim = std::move(dkim);
    check_dmarc(std::move(*carried), std::move(done));
  });
}

void InboundChecks::check_dmarc(policy::InboundResults results,
                                std::function<void(policy::InboundResults)> done) {
  if (config_.dmarc == CheckMode::kOff || results.from_domain.empty()) {
    // Called from a resolver callback or from check_message(): go through the poster so
    // that `done` never runs inside the caller's call.
    dns_->poster->post([done = std::move(done), results = std::move(results)]() mutable {
      done(std::move(results));
    });
    return;
  }
  const policy::DmarcInput input = policy::dmarc_input(results);
  auto carried = std::make_shared<policy::InboundResults>(std::move(results));
  policy::check_dmarc(*dns_->resolver, input, rng_,
                      [carried, done = std::move(done)](policy::DmarcVerdict v) {
                        carried->dmarc = std::move(v);
                        done(std::move(*carried));
                      });
}

void InboundChecks::check_published_dmarc(const std::string& from_domain,
                                          std::function<void(policy::DmarcVerdict)> done) {
  policy::DmarcInput input;
  input.from_domain = from_domain;
  policy::check_dmarc(*dns_->resolver, input, rng_, std::move(done));
}

}  // namespace mta
