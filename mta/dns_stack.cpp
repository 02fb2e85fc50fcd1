#include "mta/dns_stack.h"

namespace mta {

core::Result<std::unique_ptr<DnsStack>> DnsStack::create(net::Loop& loop, const Config& config) {
  auto stack = std::make_unique<DnsStack>();
  stack->poster = std::make_unique<dns::LoopPoster>(loop.uv_loop());
  dns::CaresOptions opts;
  opts.servers = config.dns_servers;
  auto cares = dns::CaresResolver::create(loop.uv_loop(), opts);
  if (!cares) return cares.status();
  stack->upstream = std::move(*cares);
  stack->resolver =
      std::make_unique<dns::CachingResolver>(*stack->upstream, *stack->poster, stack->clock);
  return stack;
}

dns::RouteOptions mx_route_options(const Config& config) {
  dns::RouteOptions opts;
  opts.self_names = {config.hostname};
  return opts;
}

}  // namespace mta
