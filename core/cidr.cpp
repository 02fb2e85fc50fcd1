#include "core/cidr.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace core {

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes_.data()) == 1) return ip;
  std::array<uint8_t, 16> b{};
  if (inet_pton(AF_INET6, s.c_str(), b.data()) != 1)
    return Status::invalid("not an IP address: " + s);
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b.data(), kMapped, 12) == 0) {
    std::memcpy(ip.bytes_.data(), b.data() + 12, 4);
    return ip;
  }
  ip.v4_ = false;
  ip.bytes_ = b;
  return ip;
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return ip.status();
  Cidr c;
  c.net_ = *ip;
  const int max = ip->is_v4() ? 32 : 128;
  c.prefix_ = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), c.prefix_);
    if (ec != std::errc() || end != p.data() + p.size() || c.prefix_ < 0 || c.prefix_ > max)
      return Status::invalid("bad prefix length in " + std::string(text));
  }
  return c;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.is_v4() != net_.is_v4()) return false;
  const auto& a = ip.bytes();
  const auto& b = net_.bytes();
  int bits = prefix_;
  for (size_t i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (b[i] & mask)) return false;
  }
  return true;
}

std::string Cidr::str() const { return net_.str() + "/" + std::to_string(prefix_); }

}  // namespace core
