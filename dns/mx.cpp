#include "dns/mx.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <unordered_set>

namespace dns {
namespace {

bool is_root(const std::string& host) { return host.empty() || host == "."; }

struct RouteState {
  std::string domain;
  RouteOptions options;
  std::function<void(Route)> done;
  bool implicit_mx = false;
  std::vector<MxRecord> hosts;
  struct Addresses {
    std::vector<std::string> v4, v6;
  };
  std::vector<Addresses> addresses;  // parallel to hosts
  std::string temporary_error;       // the first one seen
  size_t outstanding = 0;
};

void finish(RouteState& st) {
  Route route;
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < st.hosts.size(); ++i) {
    const auto& a = st.addresses[i];
    const auto& first = st.options.prefer_ipv6 ? a.v6 : a.v4;
    const auto& second = st.options.prefer_ipv6 ? a.v4 : a.v6;
    for (const auto* list : {&first, &second}) {
      for (const std::string& ip : *list) {
        if (seen.insert(ip).second) {
          route.hops.push_back({st.hosts[i].host, ip, st.hosts[i].preference});
        }
      }
    }
  }
  if (route.hops.empty()) {
    if (!st.temporary_error.empty()) {
      route.outcome = RouteOutcome::kTemporary;
      route.detail = st.temporary_error;
    } else {
      route.outcome = RouteOutcome::kUnroutable;
      route.detail = st.implicit_mx ? "no MX and no address records for " + st.domain
                                    : "no MX host of " + st.domain + " has an address";
    }
  }
  st.done(std::move(route));
}

AnswerCallback<std::string> address_callback(std::shared_ptr<RouteState> st, size_t host, bool v6) {
  return [st = std::move(st), host, v6](core::Result<AddressAnswer> r) {
    if (r) {
      auto& list = v6 ? st->addresses[host].v6 : st->addresses[host].v4;
      list = std::move(r.value().records);
    } else if (r.status().kind() != core::Status::Kind::kNotFound &&
               r.status().kind() != core::Status::Kind::kInvalid && st->temporary_error.empty()) {
      st->temporary_error = r.status().message();
    }
    if (--st->outstanding == 0) finish(*st);
  };
}

}  // namespace

MxOrder order_mx(std::vector<MxRecord> records, std::mt19937& rng,
                 const std::vector<std::string>& self_names) {
  MxOrder order;
  if (records.empty()) return order;
  std::erase_if(records, [](const MxRecord& r) { return is_root(r.host); });
  if (records.empty()) {
    order.outcome = MxOutcome::kNullMx;
    return order;
  }

  // RFC 5321 §5.1: if we are in the list, drop our preference level and everything after.
  std::optional<uint16_t> self_preference;
  for (const std::string& self : self_names) {
    const std::string me = normalize_name(self);
    for (const MxRecord& r : records) {
      if (normalize_name(r.host) == me && (!self_preference || r.preference < *self_preference)) {
        self_preference = r.preference;
      }
    }
  }
  if (self_preference) {
    std::erase_if(records, [&](const MxRecord& r) { return r.preference >= *self_preference; });
    if (records.empty()) {
      order.outcome = MxOutcome::kLoopsToSelf;
      return order;
    }
  }

  std::sort(records.begin(), records.end(),
            [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
  for (auto first = records.begin(); first != records.end();) {
    auto last = std::find_if(first, records.end(),
                             [&](const MxRecord& r) { return r.preference != first->preference; });
    std::shuffle(first, last, rng);
    first = last;
  }
  order.hosts = std::move(records);
  return order;
}

void resolve_route(Resolver& resolver, const std::string& domain, const RouteOptions& options,
                   std::mt19937& rng, std::function<void(Route)> done) {
  auto st = std::make_shared<RouteState>();
  st->domain = domain;
  st->options = options;
  st->done = std::move(done);
  Resolver* res = &resolver;
  std::mt19937* gen = &rng;
  resolver.query_mx(domain, [st, res, gen](core::Result<MxAnswer> r) {
    if (!r) {
      const auto kind = r.status().kind();
      const bool permanent =
          kind == core::Status::Kind::kNotFound || kind == core::Status::Kind::kInvalid;
      st->done({permanent ? RouteOutcome::kNoSuchDomain : RouteOutcome::kTemporary,
                {},
                r.status().message()});
      return;
    }
    std::vector<MxRecord> records = std::move(r.value().records);
    if (records.empty()) {
      st->implicit_mx = true;
      records.push_back({0, st->domain});
    }
    MxOrder order = order_mx(std::move(records), *gen, st->options.self_names);
    if (order.outcome == MxOutcome::kNullMx) {
      st->done({RouteOutcome::kNullMx, {}, st->domain + " accepts no mail (null MX)"});
      return;
    }
    if (order.outcome == MxOutcome::kLoopsToSelf) {
      st->done(
          {RouteOutcome::kLoopsToSelf, {}, "mail for " + st->domain + " loops back to myself"});
      return;
    }
    if (!st->options.use_ipv4 && !st->options.use_ipv6) {
      st->done({RouteOutcome::kUnroutable, {}, "neither IPv4 nor IPv6 is enabled"});
      return;
    }
    st->hosts = std::move(order.hosts);
    st->addresses.resize(st->hosts.size());
    const size_t families = (st->options.use_ipv4 ? 1 : 0) + (st->options.use_ipv6 ? 1 : 0);
    st->outstanding = st->hosts.size() * families;
    for (size_t i = 0; i < st->hosts.size(); ++i) {
      if (st->options.use_ipv6) res->query_aaaa(st->hosts[i].host, address_callback(st, i, true));
      if (st->options.use_ipv4) res->query_a(st->hosts[i].host, address_callback(st, i, false));
    }
  });
}

}  // namespace dns
