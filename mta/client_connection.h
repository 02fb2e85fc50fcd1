#pragma once
// What every server-side protocol connection (SMTP, POP3, later IMAP) does alike: hold its
// connection-limit slot, keep itself alive until the Connection reports on_closed, write a
// session's output and close after the last reply; and open the listeners of one protocol.
//
// A subclass calls keep_alive(shared_from_this()) when it starts and released() at the end
// of its on_closed(); until then `this` stays valid for the Connection's callbacks.
//
// Metrics (mta/metrics.h): once a subclass calls count_in() the connection is counted open
// until mark_closed(); a TLS handshake runs from tls_starting() (or from the start on an
// implicit-TLS port) until tls_established(), and one still running when the connection
// closes counts as failed. login() counts refused passwords.
// Asynchronous completions must still hold weak references and check closed().
//
// Threading: the connection's loop thread only.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/reply.h"
#include "core/status.h"
#include "mta/config.h"
#include "mta/login.h"
#include "mta/metrics.h"
#include "mta/net/connection.h"
#include "mta/net/listener.h"
#include "mta/net/loop.h"
#include "mta/net/tls_context.h"
#include "policy/conn_limits.h"

namespace mta {

class ClientConnection : public net::Connection::Handler {
 protected:
  ClientConnection(net::Connection* conn, policy::ConnectionToken token);
  ~ClientConnection() override;

  // Counts this connection in `listener`'s series; call once, from the constructor.
  void count_in(const ListenerConfig& listener);
  // Metrics counting: null before count_in().
  const metrics::ListenerMetrics* listener_metrics() const { return metrics_; }
  // Call just before conn_->start_tls() (STARTTLS, STLS).
  void tls_starting() { tls_pending_ = true; }
  // Call when the handshake has succeeded.
  void tls_established();

  void keep_alive(std::shared_ptr<ClientConnection> self) { self_ = std::move(self); }
  // Marks the connection closed and gives back the slot; call first in on_closed().
  void mark_closed();
  // Drops the self reference: the last thing on_closed() does (it may destroy this).
  void released() { self_.reset(); }
  // Writes `out` (if any); once `closing`, closes the connection after it, once.
  void send(std::string out, bool closing);
  bool closed() const { return closed_; }
  // Checks a password (mta/login.h) unless a check is already running: the glue's drive()
  // may see the session still waiting for it and ask again. `done` runs on the loop, only
  // while the connection is alive.
  void login(net::Loop& loop, LoginServices& services, const std::string& user,
             std::string password, net::Timer& delay, std::function<void(LoginResult)> done);

  net::Connection* const conn_;
  const std::string client_ip_;
  const std::string client_key_;  // policy::client_key(): limits and throttles count by it

 private:
  std::optional<policy::ConnectionToken> token_;
  std::shared_ptr<ClientConnection> self_;
  bool closed_ = false;
  bool close_sent_ = false;
  bool login_in_flight_ = false;
  const metrics::ListenerMetrics* metrics_ = nullptr;
  bool tls_pending_ = false;  // a handshake started and not yet established
};

// Opens a listener on `loop` for each configured listener that `wanted` selects. A connection
// over the limits gets `refusal_line(reply)` (on plain-text listeners; an implicit-TLS one is
// just closed) and is closed; the others go to `start` with their slot.
using StartConnection =
    std::function<void(net::Connection*, const ListenerConfig&, policy::ConnectionToken)>;
core::Status open_listeners(net::Loop& loop, const Config& config,
                            const std::function<bool(const ListenerConfig&)>& wanted,
                            std::shared_ptr<net::TlsContext> tls,
                            policy::ConnectionLimiter& limiter,
                            std::function<std::string(const core::Reply&)> refusal_line,
                            StartConnection start,
                            std::vector<std::unique_ptr<net::Listener>>& out);

}  // namespace mta
