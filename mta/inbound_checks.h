#pragma once
// InboundChecks: the DNS-backed checks of one SMTP loop. For port 25 mail from clients that
// are neither trusted nor authenticated: SPF for MAIL FROM and HELO while the session waits
// at MAIL, DKIM verification and DMARC once the message is in. For outgoing mail: whether the
// From domain publishes DMARC (the alignment check at submission). The decisions are
// policy/inbound_verdict.h's; this file only runs the lookups.
//
// Threading and lifetime: one per loop, used on that loop's thread. Every `done` is called
// exactly once, later, on that thread, unless the InboundChecks is destroyed first (then
// never): callers hold weak references in their callbacks.

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "mta/config.h"
#include "mta/dns_stack.h"
#include "mta/net/loop.h"
#include "policy/dkim_verifier.h"
#include "policy/dmarc.h"
#include "policy/inbound_verdict.h"
#include "policy/spf.h"

namespace mta {

class InboundChecks {
 public:
  static core::Result<std::unique_ptr<InboundChecks>> create(net::Loop& loop, const Config& config);

  // SPF of the MAIL FROM identity and, when HELO names a host, of the HELO identity; both
  // run at once. Fills spf_mail_from and spf_helo of the results passed back.
  void check_sender(const policy::SpfRequest& request,
                    std::function<void(policy::InboundResults)> done);

  // DKIM verification of `message` (whole, CRLF), then DMARC for results.from_domain, each if
  // the config has it on; `results` carries what check_sender found.
  void check_message(policy::InboundResults results, std::string message,
                     std::function<void(policy::InboundResults)> done);

  // DMARC discovery for an outgoing From domain: the verdict of a message with no aligned
  // identifier (result kNone when the domain publishes no record).
  void check_published_dmarc(const std::string& from_domain,
                             std::function<void(policy::DmarcVerdict)> done);

 private:
  InboundChecks(const Config& config, std::unique_ptr<DnsStack> dns,
                std::unique_ptr<policy::DkimVerifier> dkim)
      : config_(config), dns_(std::move(dns)), dkim_(std::move(dkim)), rng_(std::random_device{}()) {}

  void check_dmarc(policy::InboundResults results,
                   std::function<void(policy::InboundResults)> done);

  const Config& config_;
  std::unique_ptr<DnsStack> dns_;
  std::unique_ptr<policy::DkimVerifier> dkim_;
  std::mt19937 rng_;
};

}  // namespace mta
