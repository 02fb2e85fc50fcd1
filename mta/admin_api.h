#pragma once
// The admin HTTP API: JSON in and out, on a Unix socket in data_dir (mode 0600 by default:
// who can open it is an administrator) and, if configured, on a loopback TCP port where
// every request needs "Authorization: Bearer <token>" (admin.token_file). The `porter` CLI is its client. Routes, top to bottom:
//
//   GET    /v1/status                       pid, uptime, config in force, queue size
//   GET    /v1/queue?sender=&recipient=&domain=&state=&min_age=&max_age=&error=&limit=&after=
//   GET    /v1/queue/summary                pending recipients by domain and age (qshape)
//   POST   /v1/queue/flush?domain=          deferred mail (of one domain) due now
//   GET    /v1/queue/{id}                   envelope, recipient states, headers
//   GET    /v1/queue/{id}/message           the stored message (message/rfc822)
//   GET    /v1/queue/{id}/trace             every log line naming the message
//   POST   /v1/queue/{id}/hold              never delivered until released
//   POST   /v1/queue/{id}/release
//   POST   /v1/queue/{id}/retry             due now
//   POST   /v1/queue/{id}/bounce?reason=    fail now, with a DSN to the sender
//   DELETE /v1/queue/{id}                   gone from disk, no notice
//   GET    /v1/suppression?scope=&after=&limit=        suppressed recipients (all scopes
//                                                      without scope=; "" is relay mail)
//   POST   /v1/suppression?scope=&address=&reason=&expire_days=   add (or replace) one
//   DELETE /v1/suppression?scope=&address=            remove one
//   GET    /v1/route?from=&to=              the route delivery would take (route explain)
//   POST   /v1/reload                       as SIGHUP; 422 with the reason if refused
//   GET    /metrics                         Prometheus text format
//
// Errors are {"error": "..."} with 400 (bad parameter, naming it), 401 (token), 404, 405,
// 409 (the message is being delivered right now, or not in the state asked for), 422
// (reload refused) or 500.
//
// Threading: AdminApi lives on its own loop. Queue scans and reads run on libuv's thread
// pool, mutations on the delivery loop, so neither blocks the other or delivery.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "mta/delivery.h"
#include "mta/dns_stack.h"
#include "mta/http/server.h"
#include "mta/net/loop.h"
#include "mta/runtime.h"
#include "queue/db.h"
#include "queue/suppression.h"
#include "queue/writer.h"

namespace mta {

struct AdminContext {
  queue::Db& db;
  queue::Writer& writer;
  const queue::SuppressionList& suppressions;
  DeliveryService& delivery;
  RuntimeHolder& runtime;
  // Reloads the runtime (any thread; the daemon serialises reloads).
  std::function<core::Status()> reload;
  // The log lines that name a queue ID, oldest first (any thread).
  std::function<std::vector<std::string>(const std::string& id)> trace;
  int64_t started_ms = 0;
};

class AdminApi {
 public:
  AdminApi(net::Loop& loop, AdminContext ctx);
  ~AdminApi();
  // Opens the socket and the TCP listener the config names; reads the token file.
  core::Status listen(const Config& config);
  void close();
  uint16_t bound_port() const { return server_.bound_port(); }

 private:
  struct Call;
  using Route = void (AdminApi::*)(Call&);
  struct RouteEntry {
    const char* method;
    const char* pattern;  // "{id}" matches one path segment
    Route handle;
  };
  static const RouteEntry kRoutes[];

  void dispatch(http::Request request, http::Responder responder);
  void status(Call& c);
  void list(Call& c);
  void summary(Call& c);
  void flush(Call& c);
  void show(Call& c);
  void message(Call& c);
  void trace(Call& c);
  void hold(Call& c);
  void release(Call& c);
  void retry(Call& c);
  void bounce(Call& c);
  void remove(Call& c);
  void route(Call& c);
  void suppression_list(Call& c);
  void suppression_add(Call& c);
  void suppression_remove(Call& c);
  void reload(Call& c);
  void metrics(Call& c);
  // Runs `work` on the thread pool and answers with what it returns.
  void off_loop(Call& c, std::function<http::Response()> work);

  net::Loop& loop_;
  AdminContext ctx_;
  std::string token_;  // empty: none required
  std::unique_ptr<DnsStack> dns_;  // for route explain, made at the first use
  http::HttpServer server_;
};

}  // namespace mta
