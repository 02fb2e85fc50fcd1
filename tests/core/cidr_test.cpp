#include "core/cidr.h"

#include <catch2/catch.hpp>

TEST_CASE("cidr: contains", "[core][unit]") {
  auto [net, ip, in] = GENERATE(table<std::string, std::string, bool>({
      {"10.0.0.0/8", "10.255.1.2", true},
      {"10.0.0.0/8", "11.0.0.1", false},
      {"192.168.1.0/24", "::ffff:192.168.1.7", true},
      {"127.0.0.1", "127.0.0.1", true},
      {"127.0.0.1", "127.0.0.2", false},
      {"2001:db8::/32", "2001:db8:1::5", true},
      {"2001:db8::/32", "2001:db9::5", false},
      {"0.0.0.0/0", "203.0.113.9", true},
      {"::/0", "203.0.113.9", false},
      {"172.16.0.0/12", "172.31.255.255", true},
      {"172.16.0.0/12", "172.32.0.0", false},
  }));
  auto c = core::Cidr::parse(net);
  REQUIRE(c);
  auto a = core::IpAddress::parse(ip);
  REQUIRE(a);
  CHECK(c->contains(*a) == in);
}

TEST_CASE("cidr: bad input names the problem", "[core][unit]") {
  for (const char* bad : {"10.0.0.0/33", "10.0.0/8", "x", "::1/129", "1.2.3.4/"})
    CHECK_FALSE(core::Cidr::parse(bad));
}
