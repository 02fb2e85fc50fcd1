#include "policy/client_key.h"

#include <catch2/catch.hpp>

TEST_CASE("unit: client keys group IPv6 by /64", "[policy][unit]") {
  const auto [ip, key] = GENERATE(table<const char*, const char*>({
      {"192.0.2.1", "192.0.2.1"},
      {"::ffff:192.0.2.1", "192.0.2.1"},
      {"2001:db8:1:2::1", "2001:db8:1:2::/64"},
      {"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
      {"2001:db8::1", "2001:db8:0:0::/64"},
      {"::1", "0:0:0:0::/64"},
  }));
  CHECK(policy::client_key(core::IpAddress::parse(ip).value()) == key);
  CHECK(policy::client_key(core::IpAddress::parse("2001:db8:1:3::1").value()) !=
        policy::client_key(core::IpAddress::parse("2001:db8:1:2::1").value()));
}
