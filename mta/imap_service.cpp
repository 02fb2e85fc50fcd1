#include "mta/imap_service.h"

#include "core/log.h"
#include "mta/client_connection.h"
#include "mta/session_connection.h"
#include "mta/imap_store_backend.h"
#include "mta/net/timer.h"
#include "mta/net/worker.h"

namespace mta {
namespace {

using access::ImapWait;

constexpr uint64_t kIdleTimeoutMs = 30 * 60 * 1000;

class ImapConnection final : public SessionConnection<ImapConnection, access::ImapSession> {
 public:
  ImapConnection(net::Loop& loop, ImapContext& ctx, net::Connection* conn,
                 const ListenerConfig& listener, policy::ConnectionToken token)
      : SessionConnection(loop, conn, std::move(token), listener.implicit_tls, kIdleTimeoutMs,
                          "imap", ctx.session, listener.implicit_tls),
        ctx_(ctx) {
    count_in(listener);
  }

  void on_closed() override {
    mark_closed();
    stop_timers();
    subscription_.reset();
    core::LogLine(core::LogLevel::kInfo, "imap-disconnect")
        .kv("client", client_ip_).kv("user", session_.user().empty() ? "-" : session_.user())
        .emit();
    released();  // may destroy this
  }

  void tls_ready() {
    tls_established();
    if (session_.waiting() == ImapWait::kStartTls) {
      session_.on_tls_started();
    } else {
      session_.greet();
    }
  }

  void drive() {
    if (closed()) return;
    switch (session_.waiting()) {
      case ImapWait::kNone:
        return flush();
      case ImapWait::kStartTls:
        flush();
        tls_starting();
        return conn_->start_tls(ctx_.tls);
      case ImapWait::kAuth:
        flush();
        if (provisioning_) return;  // the login succeeded; the session hears of it next
        return check_auth();
    }
  }

 private:
  void check_auth() {
    const auto& req = session_.auth_request();
    std::weak_ptr<ImapConnection> weak = weak_from_this();
    login(loop_, ctx_.login, req.login, req.password, delay_timer_,
                [weak, login = req.login](LoginResult r) {
                  if (auto self = weak.lock()) self->auth_done(r, login);
                });
  }

  void auth_done(const LoginResult& r, const std::string& login) {
    if (closed()) return;
    if (r.outcome != LoginResult::Outcome::kOk) {
      core::LogLine(core::LogLevel::kWarn,
                    r.outcome == LoginResult::Outcome::kLockedOut ? "auth-locked" : "auth-failed")
          .kv("client", client_ip_).kv("user", login).emit();
      session_.on_auth(std::nullopt, nullptr,
                       r.outcome == LoginResult::Outcome::kLockedOut
                           ? "[UNAVAILABLE] Too many failed logins from this address; try again in " +
                                 std::to_string(r.retry_after_ms / 1000 + 1) + " seconds"
                           : "");
      return drive();
    }
    const std::string user = r.user->name;
    core::LogLine(core::LogLevel::kInfo, "imap-auth").kv("client", client_ip_).kv("user", user).emit();
    std::weak_ptr<ImapConnection> weak = weak_from_this();
    net::Loop* loop = &loop_;
    // Completions come back to this loop and are dropped once the connection is gone.
    auto post = [loop, weak](std::function<void()> fn) {
      loop->post([weak, fn = std::move(fn)] {
        if (auto self = weak.lock(); self && !self->closed()) {
          fn();
          self->drive();
        }
      });
    };
    backend_ = std::make_unique<StoreImapBackend>(
        ctx_.store, ctx_.writer, ctx_.search_cache, user, post,
        [loop](std::function<void()> work) { net::run_blocking(*loop, std::move(work), [] {}); });
    subscription_ = ctx_.store.events().watch(user, [loop, weak](std::string_view changed) {
      loop->post([weak, mailbox = std::string(changed)] {
        if (auto self = weak.lock(); self && !self->closed()) {
          self->session_.on_mailbox_changed(mailbox);
          self->drive();
        }
      });
    });
    // A user who never had mail gets INBOX and the special-use mailboxes at first login.
    if (!ctx_.store.mailbox(user, mailbox::kInbox)) {
      provisioning_ = true;
      return backend_->provision([this, user](core::Status s) {
        provisioning_ = false;
        if (!s)
          core::LogLine(core::LogLevel::kError, "imap-provision-failed")
              .kv("user", user).remark(s.message()).emit();
        session_.on_auth(user, backend_.get(), "");
      });
    }
    session_.on_auth(user, backend_.get(), "");
    drive();
  }

  ImapContext& ctx_;
  // The session only holds a pointer to it; its callbacks are dropped once this is gone.
  std::unique_ptr<StoreImapBackend> backend_;
  mailbox::Events::Watch subscription_;
  bool provisioning_ = false;
};

}  // namespace

ImapService::ImapService(net::Loop& loop, ImapContext& ctx) : loop_(loop), ctx_(ctx) {}

ImapService::~ImapService() { close(); }

core::Status ImapService::listen() {
  return open_listeners(
      loop_, ctx_.config, [](const ListenerConfig& lc) { return lc.protocol == Protocol::kImap; },
      ctx_.tls, ctx_.limiter,
      [](const core::Reply& r) { return "* BYE [UNAVAILABLE] " + r.text + "\r\n"; },
      [this](net::Connection* conn, const ListenerConfig& lc, policy::ConnectionToken token) {
        std::make_shared<ImapConnection>(loop_, ctx_, conn, lc, std::move(token))
            ->start();
      },
      listeners_);
}

void ImapService::close() {
  for (auto& l : listeners_) l->close();
  listeners_.clear();
}

}  // namespace mta
