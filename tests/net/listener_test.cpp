#include "mta/net/listener.h"

#include "tests/net/test_support.h"

namespace net::test {
namespace {

TEST_CASE("unit: listen errors name host:port and the reason", "[net][unit]") {
  LoopThread lt;
  auto [host, text, kind] = GENERATE(table<std::string, std::string, core::Status::Kind>({
      // TEST-NET-1: not an address of this host.
      {"192.0.2.1", "listen 192.0.2.1:2525: address not available", core::Status::Kind::kIo},
      {"localhost", "listen localhost:2525: not an IP address", core::Status::Kind::kInvalid},
  }));
  const core::Status s = lt.call([&, host = host] {
    Listener l(lt.loop, host, 2525, false, nullptr, [](Connection* c) { c->abort(); });
    return l.listen();
  });
  CHECK(s.kind() == kind);
  CHECK(s.message() == text);
}

TEST_CASE("unit: a port taken without SO_REUSEPORT is reported in use", "[net][unit]") {
  LoopThread lt;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const uint16_t port = ntohs(addr.sin_port);

  const core::Status s = lt.call([&] {
    Listener l(lt.loop, "127.0.0.1", port, false, nullptr, [](Connection* c) { c->abort(); });
    return l.listen();
  });
  ::close(fd);
  CHECK(s.message() == "listen 127.0.0.1:" + std::to_string(port) + ": address already in use");
}

TEST_CASE("unit: listeners on two loops share a port with SO_REUSEPORT", "[net][unit]") {
  LoopThread a;
  LoopThread b;
  EchoServer first(a, false, nullptr);
  std::unique_ptr<Listener> second;
  auto events = std::make_shared<Events>();
  const core::Status s = b.call([&] {
    second = std::make_unique<Listener>(
        b.loop, "127.0.0.1", first.port(), false, nullptr,
        [events](Connection* c) { new EchoHandler(c, events, nullptr); });
    return second->listen();
  });
  CHECK(s.is_ok());
  CHECK(b.call([&] { return second->bound_port(); }) == first.port());

  // The kernel spreads connections by a hash of the peer: with enough of them, both loops
  // serve some, and every one is echoed by whichever got it.
  for (int i = 0; i < 16; ++i) {
    Client c(first.port());
    c.send("hi");
    CHECK(c.read_exact(2) == "hi");
  }
  CHECK(events->wait([&] { return !events->received.empty(); }));
  b.call([&] { second.reset(); });
}

TEST_CASE("unit: implicit TLS without a certificate is a configuration error", "[net][unit]") {
  LoopThread lt;
  const core::Status s = lt.call([&] {
    Listener l(lt.loop, "::1", 4650, true, nullptr, [](Connection* c) { c->abort(); });
    return l.listen();
  });
  CHECK(s.kind() == core::Status::Kind::kInvalid);
  CHECK(s.message() == "listen [::1]:4650: implicit TLS needs a certificate");
}

}  // namespace
}  // namespace net::test
