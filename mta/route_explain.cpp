#include "mta/route_explain.h"

#include <random>

#include <nlohmann/json.hpp>

#include "core/address.h"
#include "dns/mx.h"
#include "mta/dns_stack.h"

namespace mta {
namespace {

using nlohmann::json;

const char* outcome_name(dns::RouteOutcome o) {
  switch (o) {
    case dns::RouteOutcome::kOk: return "ok";
    case dns::RouteOutcome::kNoSuchDomain: return "no-such-domain";
    case dns::RouteOutcome::kNullMx: return "null-mx";
    case dns::RouteOutcome::kLoopsToSelf: return "loops-to-self";
    case dns::RouteOutcome::kUnroutable: return "unroutable";
    case dns::RouteOutcome::kTemporary: return "temporary-failure";
  }
  return "?";
}

json limits_of(const Config& c, std::string_view domain) {
  return json{{"max_delivery_connections", c.max_delivery_connections},
              {"max_connections_per_destination", c.max_connections_per_destination},
              {"messages_per_connection", c.messages_per_connection},
              {"messages_per_minute", throttle_for(c, domain)},
              {"retry_s", c.retry_s},
              {"max_lifetime_s", c.max_lifetime_s},
              {"delay_warning_s", c.delay_warning_s}};
}

}  // namespace

core::Status explain_route(const RouteQuestion& q, std::shared_ptr<const Runtime> runtime,
                           dns::Resolver& resolver, std::function<void(json)> done) {
  auto to = core::parse_mailbox(q.to, true);
  if (!to) return core::Status::invalid("to: " + to.status().message());
  core::Address from;
  if (!q.from.empty() && q.from != "<>") {
    auto parsed = core::parse_mailbox(q.from, true);
    if (!parsed) return core::Status::invalid("from: " + parsed.status().message());
    from = *parsed;
  }
  const Config& c = *runtime->config;
  json out{{"from", from.str()}, {"to", to->str()}};
  out["dkim"] = json{{"signs", runtime->dkim && !from.empty() && runtime->dkim->has_key(from.domain)},
                     {"domain", from.domain}};

  if (runtime->local->is_local_domain(to->domain)) {
    const std::vector<std::string> users = runtime->local->resolve(*to);
    if (users.empty()) {
      out["route"] = "refused";
      out["reply"] = "550 5.1.1 <" + to->str() + ">: no such user here";
    } else {
      out["route"] = "local";
      json boxes = json::array();
      for (const auto& u : users)
        boxes.push_back(json{{"user", u}, {"quota_bytes", runtime->local->quota_bytes(u)}});
      out["mailboxes"] = boxes;
    }
    done(std::move(out));
    return core::Status::ok();
  }
  out["limits"] = limits_of(c, to->domain);
  if (!c.smarthost.empty()) {
    out["route"] = "smarthost";
    out["smarthost"] = json{{"host", c.smarthost},
                            {"port", c.smarthost_port},
                            {"auth_user", c.smarthost_user}};
    out["tls_policy"] = tls_policy_name(c.smarthost_tls);
    done(std::move(out));
    return core::Status::ok();
  }
  out["route"] = "mx";
  out["tls_policy"] = tls_policy_name(tls_policy_for(c, to->domain));
  auto rng = std::make_shared<std::mt19937>(std::random_device{}());
  dns::resolve_route(resolver, to->domain, mx_route_options(c), *rng,
                     [out = std::move(out), port = c.remote_port, rng, runtime,
                      done = std::move(done)](dns::Route r) mutable {
                       json hops = json::array();
                       for (const auto& h : r.hops)
                         hops.push_back(json{{"host", h.host},
                                             {"ip", h.ip},
                                             {"port", port},
                                             {"preference", h.preference}});
                       out["mx"] = json{{"outcome", outcome_name(r.outcome)},
                                        {"detail", r.detail},
                                        {"hops", hops}};
                       done(std::move(out));
                     });
  return core::Status::ok();
}

}  // namespace mta
