#pragma once
// net-internal: the state behind net::Loop, the hooks between Loop, Listener and
// Connection, and address helpers. Included only by mta/net/*.cpp: it pulls in libuv,
// which no other module may see.

#include <uv.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "mta/net/loop.h"

namespace net {

class Connection;
class TlsContext;

struct Loop::Impl {
  uv_loop_t uv{};
  uv_async_t wakeup{};  // post() and stop() from other threads
  uv_prepare_t turn{};  // before each poll: coalesced writes go out, TLS input is drained
  std::mutex inbox_mu;
  std::vector<std::function<void()>> inbox;  // guarded by inbox_mu
  std::atomic<bool> stop_requested{false};
  std::atomic<std::thread::id> thread{};
  std::unordered_set<Connection*> connections;  // open, for the destructor and the count
  std::vector<Connection*> dirty;               // need a turn; nullptr once destroyed
  // Shared by all connections of the loop: libuv calls alloc and read back to back and a
  // Handler sees the bytes only during on_read, so one buffer per loop suffices.
  std::array<char, 64 * 1024> read_buf{};
  std::array<char, 16 * 1024> plain_buf{};  // SSL_read output: at most one TLS record
};

namespace detail {

// Gives each dirty connection its turn (defined in connection.cpp).
void run_connection_turns(Loop::Impl& loop);

// Accepts one pending connection from server; with implicit_tls the server handshake is
// started at once (defined in connection.cpp).
core::Result<Connection*> accept_connection(Loop& loop, uv_stream_t* server,
                                            const std::shared_ptr<TlsContext>& implicit_tls);

// An IPv4 or IPv6 literal (no brackets) and a port; false if ip is not a literal.
inline bool to_sockaddr(const std::string& ip, uint16_t port, sockaddr_storage* out) {
  *out = {};
  return uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) == 0 ||
         uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) == 0;
}

// "192.0.2.1:25", "[2001:db8::1]:25": how errors and logs name an endpoint.
inline std::string endpoint_text(const std::string& ip, uint16_t port) {
  const bool v6 = ip.find(':') != std::string::npos;
  return (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

}  // namespace detail
}  // namespace net
