#pragma once
// The key under which per-client counters (connections, failed logins) are kept.
//
// An IPv4 client is counted by its address. An IPv6 client is counted by its /64: one
// subscriber is usually handed a whole /64 and can send from any of its 2^64 addresses,
// so counting single IPv6 addresses would let a client step around every per-IP limit.
// An IPv4-mapped IPv6 address is counted as the IPv4 address (core::IpAddress folds it).
//
// Limits: clients behind one NAT share a key; raise the per-IP limits for such networks.

#include <string>

#include "core/cidr.h"

namespace policy {

// "192.0.2.1", or "2001:db8:1:2::/64".
std::string client_key(const core::IpAddress& ip);
// The same for a textual address as a connection reports it; text that is not an address
// is its own key.
std::string client_key(const std::string& ip);

}  // namespace policy
