#pragma once
// IP addresses and networks (CIDR), for trusted-network lists and per-IP limits.
//
// IpAddress stores IPv4 as such (4 bytes) and IPv6 as 16 bytes; an IPv4-mapped IPv6
// address ("::ffff:192.0.2.1", what a dual-stack socket reports) is folded to IPv4 so
// that "192.0.2.0/24" matches it.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace core {

class IpAddress {
 public:
  static Result<IpAddress> parse(std::string_view text);
  bool is_v4() const { return v4_; }
  std::string str() const;
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }  // v4 in bytes_[0..3]
  bool operator==(const IpAddress&) const = default;

 private:
  bool v4_ = true;
  std::array<uint8_t, 16> bytes_{};
};

class Cidr {
 public:
  // "10.0.0.0/8", "::1/128", or a bare address (a host route).
  static Result<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& ip) const;
  std::string str() const;

 private:
  IpAddress net_;
  int prefix_ = 0;
};

}  // namespace core
