#pragma once
// The resolver stack one loop uses: c-ares on the loop, behind a TTL cache, with the poster
// both need. Delivery and the inbound checks each build one on their own loop.
//
// Lifetime: destroy on the loop's thread; destroying it drops pending callbacks
// (dns/resolver.h), so owners of callbacks need not outlive it.

#include <memory>

#include "core/clock.h"
#include "core/status.h"
#include "dns/cache.h"
#include "dns/cares_resolver.h"
#include "dns/mx.h"
#include "dns/post.h"
#include "mta/config.h"
#include "mta/net/loop.h"

namespace mta {

struct DnsStack {
  // Servers from delivery.dns_servers, else /etc/resolv.conf.
  static core::Result<std::unique_ptr<DnsStack>> create(net::Loop& loop, const Config& config);

  core::SystemClock clock;
  std::unique_ptr<dns::Poster> poster;
  std::unique_ptr<dns::Resolver> upstream;
  std::unique_ptr<dns::CachingResolver> resolver;
};

// How delivery resolves a destination's route under this config (and route explain with it).
dns::RouteOptions mx_route_options(const Config& config);

}  // namespace mta
