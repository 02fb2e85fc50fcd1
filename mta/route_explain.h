#pragma once
// `porter route explain --from A --to B`: the route delivery would take for one recipient,
// worked out the way delivery works it out (the same config lookups, the same
// dns::resolve_route), without connecting anywhere or touching the queue.
//
// The answer is JSON for the admin API: the route ("local", "smarthost" or "mx"), for local
// mail the mailboxes that receive it (or the refusal at RCPT), for remote mail the hops in
// the order they would be tried, the TLS policy, the limits that apply (connections,
// messages per connection, throttle, retry schedule, lifetime) and whether DKIM would sign
// mail from the sender's domain.
//
// Threading: call on the loop that owns `resolver`; `done` runs on it: at once for local and
// smarthost routes, after the lookups for MX routes (the runtime is kept alive until then).

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "dns/resolver.h"
#include "mta/runtime.h"

namespace mta {

struct RouteQuestion {
  std::string from;  // "local@domain" or "" (the null sender)
  std::string to;    // "local@domain"
};

// kInvalid (now, without calling `done`) for an address that does not parse.
core::Status explain_route(const RouteQuestion& q, std::shared_ptr<const Runtime> runtime,
                           dns::Resolver& resolver,
                           std::function<void(nlohmann::json)> done);

}  // namespace mta
