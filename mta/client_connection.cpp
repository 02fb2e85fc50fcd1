#include "mta/client_connection.h"

#include "core/log.h"
#include "policy/client_key.h"

namespace mta {

ClientConnection::ClientConnection(net::Connection* conn, policy::ConnectionToken token)
    : conn_(conn),
      client_ip_(conn->peer_ip()),
      client_key_(policy::client_key(client_ip_)),
      token_(std::move(token)) {}

ClientConnection::~ClientConnection() { mark_closed(); }

void ClientConnection::count_in(const ListenerConfig& listener) {
  metrics_ = &metrics::listener_metrics(listener);
  metrics_->connections.inc();
  metrics_->connections_open.inc();
  tls_pending_ = listener.implicit_tls;
}

void ClientConnection::tls_established() {
  tls_pending_ = false;
  if (metrics_) metrics_->tls_handshakes.inc();
}

void ClientConnection::mark_closed() {
  if (!closed_ && metrics_) {
    metrics_->connections_open.dec();
    if (tls_pending_) metrics_->tls_failures.inc();
  }
  closed_ = true;
  tls_pending_ = false;
  token_.reset();
}

void ClientConnection::send(std::string out, bool closing) {
  if (closed_) return;
  if (!out.empty()) conn_->write(std::move(out));
  if (closing && !close_sent_) {
    close_sent_ = true;
    conn_->close();
  }
}

void ClientConnection::login(net::Loop& loop, LoginServices& services, const std::string& user,
                             std::string password, net::Timer& delay,
                             std::function<void(LoginResult)> done) {
  if (login_in_flight_) return;
  login_in_flight_ = true;
  check_login(loop, services, client_key_, user, std::move(password),
              std::weak_ptr<ClientConnection>(self_), delay,
              [this, done = std::move(done)](LoginResult r) {
                login_in_flight_ = false;
                if (metrics_ && r.outcome == LoginResult::Outcome::kBadCredentials)
                  metrics_->auth_failures.inc();
                done(r);
              });
}

core::Status open_listeners(net::Loop& loop, const Config& config,
                            const std::function<bool(const ListenerConfig&)>& wanted,
                            std::shared_ptr<net::TlsContext> tls,
                            policy::ConnectionLimiter& limiter,
                            std::function<std::string(const core::Reply&)> refusal_line,
                            StartConnection start,
                            std::vector<std::unique_ptr<net::Listener>>& out) {
  for (const ListenerConfig& lc : config.listeners) {
    if (!wanted(lc)) continue;
    if (lc.implicit_tls && !tls)
      return core::Status::invalid("listener " + lc.address + ":" + std::to_string(lc.port) +
                                   " uses implicit TLS but no [tls] is configured");
    auto listener = std::make_unique<net::Listener>(
        loop, lc.address, lc.port, lc.implicit_tls, lc.implicit_tls ? tls : nullptr,
        [&limiter, refusal_line, start, lc](net::Connection* conn) {
          auto acquired = limiter.acquire(policy::client_key(conn->peer_ip()));
          if (!acquired.token) {
            const core::Reply r = policy::refusal_reply(acquired.refusal);
            core::LogLine(core::LogLevel::kWarn, "connection-refused")
                .kv("client", conn->peer_ip()).kv("port", int64_t(lc.port)).remark(r.text).emit();
            if (!lc.implicit_tls) conn->write(refusal_line(r));
            conn->close();
            return;
          }
          start(conn, lc, std::move(*acquired.token));
        });
    if (auto s = listener->listen(); !s) return s;
    out.push_back(std::move(listener));
  }
  return core::Status::ok();
}

}  // namespace mta
