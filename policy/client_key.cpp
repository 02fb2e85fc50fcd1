#include "policy/client_key.h"

#include <cstdio>

namespace policy {

std::string client_key(const core::IpAddress& ip) {
  if (ip.is_v4()) return ip.str();
  const auto& b = ip.bytes();
  char buf[48];
  std::snprintf(buf, sizeof buf, "%x:%x:%x:%x::/64", (b[0] << 8) | b[1], (b[2] << 8) | b[3],
                (b[4] << 8) | b[5], (b[6] << 8) | b[7]);
  return buf;
}

std::string client_key(const std::string& ip) {
  auto parsed = core::IpAddress::parse(ip);
  return parsed ? client_key(*parsed) : ip;
}

}  // namespace policy
