#pragma once
// SessionConnection: the glue every mailbox-access protocol (POP3, IMAP) repeats around its
// sans-IO session: greet unless the port is implicit TLS, feed what arrives into the session
// and let the subclass answer its requests (Derived::drive()), write what it says and close
// after its last reply, restart the idle timer on input, and hand the TLS outcome over
// (Derived::tls_ready() once the handshake succeeded).
//
// Session needs greet(), receive(), take_output(), closing() and on_timeout().
// Threading: the loop thread. Lifetime: as ClientConnection.

#include <memory>
#include <string>
#include <utility>

#include "core/log.h"
#include "mta/client_connection.h"
#include "mta/net/loop.h"
#include "mta/net/timer.h"

namespace mta {

template <typename Derived, typename Session>
class SessionConnection : public ClientConnection,
                          public std::enable_shared_from_this<Derived> {
 public:
  void start() {
    keep_alive(this->shared_from_this());
    conn_->set_handler(this);
    core::LogLine(core::LogLevel::kInfo, protocol_ + "-connect").kv("client", client_ip_).emit();
    touch();
    conn_->start_reading();
    if (!implicit_tls_) {
      session_.greet();
      flush();
    }
  }

  void on_read(std::string_view bytes) override {
    if (closed()) return;
    touch();
    session_.receive(bytes);
    derived().drive();
  }

  void on_tls_ready(core::Status status) override {
    if (closed()) return;
    if (!status) {
      core::LogLine(core::LogLevel::kWarn, "tls-failed")
          .kv("client", client_ip_).kv("protocol", protocol_).remark(status.message()).emit();
      conn_->abort();
      return;
    }
    derived().tls_ready();
    derived().drive();
  }

 protected:
  template <typename... SessionArgs>
  SessionConnection(net::Loop& loop, net::Connection* conn, policy::ConnectionToken token,
                    bool implicit_tls, uint64_t idle_timeout_ms, std::string protocol,
                    SessionArgs&&... session_args)
      : ClientConnection(conn, std::move(token)),
        loop_(loop),
        implicit_tls_(implicit_tls),
        idle_timeout_ms_(idle_timeout_ms),
        protocol_(std::move(protocol)),
        session_(std::forward<SessionArgs>(session_args)...),
        idle_timer_(loop),
        delay_timer_(loop) {}

  void touch() {
    idle_timer_.start(idle_timeout_ms_, [this] {
      if (closed()) return;
      session_.on_timeout();
      flush();
    });
  }

  void flush() { send(session_.take_output(), session_.closing()); }

  // For on_closed(): the timers must not fire on a closed connection.
  void stop_timers() {
    idle_timer_.stop();
    delay_timer_.stop();
  }

  net::Loop& loop_;
  const bool implicit_tls_;
  const uint64_t idle_timeout_ms_;
  const std::string protocol_;  // "pop3", "imap": log event names
  Session session_;
  net::Timer idle_timer_;
  net::Timer delay_timer_;  // the failed-login delay (mta/login.h)

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }
};

}  // namespace mta
