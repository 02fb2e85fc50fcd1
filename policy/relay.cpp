#include "policy/relay.h"

#include <algorithm>

namespace policy {

std::string_view role_name(ListenerRole role) {
  switch (role) {
    case ListenerRole::kSubmission:
      return "submission";
    case ListenerRole::kSubmissions:
      return "submissions";
    case ListenerRole::kRelay:
      return "relay";
  }
  return "?";
}

std::optional<ListenerRole> parse_role(std::string_view name) {
  for (auto role : {ListenerRole::kSubmission, ListenerRole::kSubmissions, ListenerRole::kRelay})
    if (role_name(role) == name) return role;
  return std::nullopt;
}

bool is_local_domain(const RelayConfig& config, std::string_view domain) {
  return std::any_of(config.local_domains.begin(), config.local_domains.end(),
                     [&](const std::string& d) { return core::iequals(d, domain); });
}

bool is_trusted(const RelayConfig& config, const core::IpAddress& client) {
  return std::any_of(config.trusted_networks.begin(), config.trusted_networks.end(),
                     [&](const core::Cidr& net) { return net.contains(client); });
}

RcptDecision decide_rcpt(const RelayConfig& config, ListenerRole role,
                         const core::IpAddress& client, bool authenticated,
                         const core::Address& rcpt) {
  const bool local = rcpt.domain.empty() || is_local_domain(config, rcpt.domain);
  if (role != ListenerRole::kRelay) {
    if (!authenticated) return RcptDecision::refuse({530, "5.7.0", "Authentication required"});
    return RcptDecision::accept(local);
  }
  if (local || authenticated || is_trusted(config, client)) return RcptDecision::accept(local);
  return RcptDecision::refuse({554, "5.7.1", "Relay access denied"});
}

}  // namespace policy
