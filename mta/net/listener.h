#pragma once
// Listener: one listening socket on one loop -- TCP on host:port, or a unix-domain socket
// on a filesystem path (local admin and injection APIs). Each loop thread makes its own TCP
// Listener for the same host:port; SO_REUSEPORT lets the kernel spread connections over them.
//
// Unix sockets: listen() replaces a stale socket file left by a crash (nothing accepts on
// it), refuses a live one or a path that is not a socket, and creates the file with exactly
// `mode` (the umask does not apply, and the file is never wider than `mode`, even for an
// instant). close() removes the file if it is still ours. Accepted connections report
// peer_ip() "unix" and local_ip() the path, port 0. One loop per path: there is no
// SO_REUSEPORT for paths.
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

namespace net {

class Connection;
class Loop;
class TlsContext;

// Where a unix-domain Listener listens; the path must fit sockaddr_un (107 bytes).
struct UnixSocket {
  std::string path;
  unsigned mode = 0600;
};

class Listener {
 public:
  Listener(Loop& loop, std::string host, uint16_t port, bool implicit_tls,
           std::shared_ptr<TlsContext> tls, std::function<void(Connection*)> on_accept);
  Listener(Loop& loop, UnixSocket socket, bool implicit_tls, std::shared_ptr<TlsContext> tls,
           std::function<void(Connection*)> on_accept);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens. Errors name host:port (or the path) and the system's reason:
  // "listen 127.0.0.1:25: address already in use", "listen /run/porter/admin.sock: ...".
  core::Status listen();
  // Stops accepting (and removes a unix socket's file). Idempotent.
  void close();
  // The port actually bound: port 0 asks for an ephemeral one (tests). 0 before listen().
  uint16_t bound_port() const { return bound_port_; }

 private:
  static void on_connection(uv_stream_s* server, int status);
  core::Status listen_tcp(const std::string& where);
  core::Status listen_unix(const std::string& where);
  std::string name() const;

  Loop& loop_;
  std::string host_;
  uint16_t port_ = 0;
  bool is_unix_ = false;  // listens on unix_ instead of host_:port_
  UnixSocket unix_;
  bool implicit_tls_;
  std::shared_ptr<TlsContext> tls_;
  std::function<void(Connection*)> on_accept_;
  // uv_tcp_t or uv_pipe_t on the heap: its close callback frees it after we are gone.
  uv_stream_s* handle_ = nullptr;
  uint16_t bound_port_ = 0;
  // The socket file we created (device, inode), so close() never removes a successor's.
  uint64_t unix_dev_ = 0;
  uint64_t unix_ino_ = 0;
};

}  // namespace net
