#pragma once
// Listener: one listening TCP socket on one loop. Each loop thread makes its own Listener
// for the same host:port; SO_REUSEPORT lets the kernel spread connections over them.
//
// on_accept gets each new Connection (already TLS-handshaking when implicit_tls, e.g. port
// 465/993/995); it must set a Handler and call start_reading(), or close() it. The handshake
// result then arrives as Handler::on_tls_ready.
//
// Lifetime and threading: loop thread only; destroy before the Loop. Destroying or
// close()-ing the Listener stops accepting; connections already accepted live on.
//
// Limits: host is an IP literal ("0.0.0.0", "::", "127.0.0.1", "[::1]"); "::" also accepts
// IPv4 (peers then show as IPv4). Accept errors (EMFILE, ...) are logged, not reported.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"

struct uv_stream_s;
struct uv_tcp_s;

namespace net {

class Connection;
class Loop;
class TlsContext;

class Listener {
 public:
  Listener(Loop& loop, std::string host, uint16_t port, bool implicit_tls,
           std::shared_ptr<TlsContext> tls, std::function<void(Connection*)> on_accept);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens. Errors name host:port and the system's reason:
  // "listen 127.0.0.1:25: address already in use".
  core::Status listen();
  void close();
  // The port actually bound: port 0 asks for an ephemeral one (tests). 0 before listen().
  uint16_t bound_port() const { return bound_port_; }

 private:
  static void on_connection(uv_stream_s* server, int status);

  Loop& loop_;
  std::string host_;
  uint16_t port_;
  bool implicit_tls_;
  std::shared_ptr<TlsContext> tls_;
  std::function<void(Connection*)> on_accept_;
  uv_tcp_s* handle_ = nullptr;  // heap: its close callback frees it after we are gone
  uint16_t bound_port_ = 0;
};

}  // namespace net
