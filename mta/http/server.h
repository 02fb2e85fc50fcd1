#pragma once
// HttpServer: HTTP/1.1 over net:: listeners (TCP with optional implicit TLS, and unix-domain
// sockets) for Porter's admin and injection APIs. It frames requests with RequestParser and
// hands each to the Handler with a Responder; the handler answers now or later, from any
// thread.
//
// Per connection: one request at a time -- pipelined requests wait in order; keep-alive as
// the request asks; a parse error is answered with its status and "Connection: close". A
// client has idle_timeout_ms to send each complete request (from accept or from the previous
// response): a connection idle that long is closed, one stuck mid-request gets 408 first.
// While the handler works no timeout runs. Over max_connections, a new connection gets 503
// and is closed. Every answered request logs one line:
//   http server=admin client=unix method=GET path=/v1/queue status=200 ms=3 bytes=512
//
// Threading: the HttpServer and its sessions live on one Loop's thread; construct, listen,
// close and destroy there. Responder::respond() is safe from any thread. The server must be
// destroyed before its Loop.
//
// Lifetime: close() stops listening, closes idle connections and lets requests in progress
// finish (their responses carry "Connection: close"). The destructor also aborts what is left;
// a Responder that outlives the server (or its connection) drops its response.
//
// Limits: no chunked responses, no HTTP/2, no upgrades; one Handler for every listener.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "mta/http/request_parser.h"
#include "mta/http/response.h"

namespace net {
class Connection;
class Listener;
class Loop;
class TlsContext;
}  // namespace net

namespace mta::http {

namespace detail {
class Session;
struct LoopPost;
}  // namespace detail

// The one way to answer a request. Move-only; respond() once. A Responder destroyed without
// responding answers 500, so a forgetful handler cannot stall its connection forever.
class Responder {
 public:
  Responder(Responder&& other) noexcept;
  Responder& operator=(Responder&& other) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // Any thread. Posts the response to the connection's loop; dropped if the connection or
  // the server is gone by then. Later calls are ignored.
  void respond(Response response);

 private:
  friend class detail::Session;
  Responder(std::weak_ptr<detail::Session> session, std::shared_ptr<detail::LoopPost> post,
            uint64_t seq);

  std::weak_ptr<detail::Session> session_;
  std::shared_ptr<detail::LoopPost> post_;  // null once responded or moved from
  uint64_t seq_ = 0;
};

using Handler = std::function<void(Request, Responder)>;

struct ServerOptions {
  std::string name = "http";  // "server=" in log lines: admin, inject, ...
  Limits limits;
  int idle_timeout_ms = 30'000;
  size_t max_connections = 128;
};

class HttpServer {
 public:
  HttpServer(net::Loop& loop, ServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Adds a TCP listener; with tls, every connection starts with a TLS handshake (https).
  // Errors as net::Listener::listen() gives them.
  core::Status listen_tcp(const std::string& host, uint16_t port,
                          std::shared_ptr<net::TlsContext> tls = nullptr);
  // Adds a unix-domain listener (stale socket replaced, file made with `mode`).
  core::Status listen_unix(const std::string& path, unsigned mode = 0600);
  // The port of the first TCP listener (the ephemeral one for port 0); 0 if none.
  uint16_t bound_port() const;

  void close();
  // Open connections; any thread.
  size_t connection_count() const;

  struct Core;  // shared with the sessions, which may outlive the server (server.cpp)

 private:
  void accept(net::Connection* conn);

  net::Loop& loop_;
  std::shared_ptr<Core> core_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
};

}  // namespace mta::http
