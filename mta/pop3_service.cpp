#include "mta/pop3_service.h"

#include <optional>

#include "core/address.h"
#include "core/log.h"
#include "mta/client_connection.h"
#include "mta/session_connection.h"
#include "mta/net/connection.h"
#include "mta/net/timer.h"

namespace mta {

bool MaildropLocks::acquire(const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  return held_.insert(core::to_lower_ascii(user)).second;
}

void MaildropLocks::release(const std::string& user) {
  std::lock_guard<std::mutex> lock(mu_);
  held_.erase(core::to_lower_ascii(user));
}

namespace {

using access::Pop3Wait;

// RFC 1939 §3: the autologout timer is at least 10 minutes.
constexpr uint64_t kIdleTimeoutMs = 10 * 60 * 1000;

// One POP3 connection. It owns the maildrop lock from login until it closes.
class Pop3Connection final : public SessionConnection<Pop3Connection, access::Pop3Session> {
 public:
  Pop3Connection(net::Loop& loop, Pop3Context& ctx, net::Connection* conn,
                 const ListenerConfig& listener, policy::ConnectionToken token)
      : SessionConnection(loop, conn, std::move(token), listener.implicit_tls, kIdleTimeoutMs,
                          "pop3", ctx.session, listener.implicit_tls),
        ctx_(ctx) {
    count_in(listener);
  }

  void on_closed() override {
    mark_closed();
    stop_timers();
    if (locked_) ctx_.locks.release(session_.user());
    core::LogLine(core::LogLevel::kInfo, "pop3-disconnect")
        .kv("client", client_ip_).kv("user", session_.user().empty() ? "-" : session_.user())
        .kv("retrieved", retrieved_).kv("deleted", deleted_).emit();
    released();  // may destroy this
  }

  void tls_ready() {
    tls_established();
    if (session_.waiting() == Pop3Wait::kStartTls) {
      session_.on_tls_started();
    } else {
      session_.greet();
    }
  }

  void drive() {
    while (!closed()) {
      switch (session_.waiting()) {
        case Pop3Wait::kNone:
          return flush();
        case Pop3Wait::kStartTls:
          flush();
          tls_starting();
          return conn_->start_tls(ctx_.tls);
        case Pop3Wait::kAuth:
          flush();
          return check_auth();
        case Pop3Wait::kMaildrop:
          open_maildrop();
          break;
        case Pop3Wait::kRetrieve:
          retrieve();
          break;
        case Pop3Wait::kUpdate:
          flush();
          return update();
      }
    }
  }

 private:
  void check_auth() {
    const auto& req = session_.auth_request();
    std::weak_ptr<Pop3Connection> weak = weak_from_this();
    login(loop_, ctx_.login, req.login, req.password, delay_timer_,
                [weak, login = req.login](LoginResult r) {
                  if (auto self = weak.lock()) self->auth_done(r, login);
                });
  }

  void auth_done(const LoginResult& r, const std::string& login) {
    if (closed()) return;
    if (r.outcome == LoginResult::Outcome::kOk) {
      core::LogLine(core::LogLevel::kInfo, "pop3-auth")
          .kv("client", client_ip_).kv("user", r.user->name).emit();
      session_.on_auth(r.user->name, "");
    } else if (r.outcome == LoginResult::Outcome::kLockedOut) {
      core::LogLine(core::LogLevel::kWarn, "auth-locked")
          .kv("client", client_ip_).kv("user", login).emit();
      session_.on_auth(std::nullopt, "[SYS/TEMP] Too many failed logins from this address; "
                                     "try again in " +
                                         std::to_string(r.retry_after_ms / 1000 + 1) + " seconds");
    } else {
      core::LogLine(core::LogLevel::kWarn, "auth-failed")
          .kv("client", client_ip_).kv("user", login).kv("delay_ms", r.delay_ms).emit();
      session_.on_auth(std::nullopt, "");
    }
    drive();
  }

  void open_maildrop() {
    const std::string& user = session_.user();
    if (!ctx_.locks.acquire(user)) {
      return session_.on_maildrop(std::nullopt,
                                  "[IN-USE] The mailbox is open in another POP3 session");
    }
    locked_ = true;
    std::vector<access::Pop3Message> listing;
    uids_.clear();
    auto box = ctx_.store.mailbox(user, mailbox::kInbox);
    core::Status s = core::Status::ok();
    if (box) {
      const std::string prefix = std::to_string(box->status.uidvalidity) + ".";
      s = ctx_.store.list_messages(user, mailbox::kInbox, [&](const mailbox::MessageEntry& m) {
        listing.push_back({m.record.size, prefix + std::to_string(m.uid)});
        uids_.push_back(m.uid);
        return true;
      });
    } else if (box.status().kind() != core::Status::Kind::kNotFound) {
      s = box.status();  // no INBOX yet is an empty maildrop; anything else is an error
    }
    if (!s) {
      core::LogLine(core::LogLevel::kError, "pop3-store-failed")
          .kv("user", user).remark(s.to_string()).emit();
      ctx_.locks.release(user);
      locked_ = false;
      return session_.on_maildrop(std::nullopt, "[SYS/TEMP] Cannot read the mailbox");
    }
    session_.on_maildrop(std::move(listing), "");
  }

  void retrieve() {
    const uint32_t uid = uids_.at(session_.retrieve_request().index);
    std::string bytes;
    core::Status s = ctx_.store.read_message(session_.user(), mailbox::kInbox, uid,
                                             [&](std::string_view chunk) {
                                               bytes.append(chunk);
                                               return true;
                                             });
    if (!s) {
      core::LogLine(core::LogLevel::kError, "pop3-store-failed")
          .kv("user", session_.user()).kv("uid", int64_t(uid)).remark(s.to_string()).emit();
      return session_.on_message(std::nullopt);
    }
    if (!session_.retrieve_request().top_lines) ++retrieved_;
    session_.on_message(bytes);
  }

  // QUIT: the marked messages leave the store in one durable batch before "+OK".
  void update() {
    std::vector<uint32_t> uids;
    for (size_t i : session_.deleted()) uids.push_back(uids_.at(i));
    if (uids.empty()) return session_.on_updated(true), drive();
    std::weak_ptr<Pop3Connection> weak = weak_from_this();
    mailbox::Store* store = &ctx_.store;
    net::Loop* loop = &loop_;
    const std::string user = session_.user();
    const size_t n = uids.size();
    // IMAP sessions of the user hear of the expunge like of any other change.
    auto changes = std::make_shared<mailbox::Changes>();
    ctx_.writer.submit(
        [store, user, uids, changes](rocksdb::WriteBatch& batch) {
          auto r = store->stage_expunge(batch, *changes, user, mailbox::kInbox, uids, false);
          if (!r) throw std::runtime_error(r.status().to_string());
        },
        [store, loop, weak, n, changes](core::Status s) {
          store->notify_committed(*changes, s);
          loop->post([weak, s, n] {
            if (auto self = weak.lock()) self->updated(s, n);
          });
        });
  }

  void updated(const core::Status& s, size_t n) {
    if (!s)
      core::LogLine(core::LogLevel::kError, "pop3-expunge-failed")
          .kv("user", session_.user()).remark(s.to_string()).emit();
    else
      deleted_ = static_cast<int64_t>(n);
    if (closed()) return;
    session_.on_updated(s.is_ok());
    drive();
  }

  Pop3Context& ctx_;
  std::vector<uint32_t> uids_;  // the maildrop's UIDs, in message-number order
  bool locked_ = false;
  int64_t retrieved_ = 0;
  int64_t deleted_ = 0;
};

}  // namespace

Pop3Service::Pop3Service(net::Loop& loop, Pop3Context& ctx) : loop_(loop), ctx_(ctx) {}

Pop3Service::~Pop3Service() { close(); }

core::Status Pop3Service::listen() {
  return open_listeners(
      loop_, ctx_.config, [](const ListenerConfig& lc) { return lc.protocol == Protocol::kPop3; },
      ctx_.tls, ctx_.limiter,
      [](const core::Reply& r) { return "-ERR [SYS/TEMP] " + r.text + "\r\n"; },
      [this](net::Connection* conn, const ListenerConfig& lc, policy::ConnectionToken token) {
        std::make_shared<Pop3Connection>(loop_, ctx_, conn, lc, std::move(token))
            ->start();
      },
      listeners_);
}

void Pop3Service::close() {
  for (auto& l : listeners_) l->close();
  listeners_.clear();
}

}  // namespace mta
