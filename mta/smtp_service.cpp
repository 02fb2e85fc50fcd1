#include "mta/smtp_service.h"

#include <atomic>
#include <optional>

#include "core/header.h"
#include "core/log.h"
#include "mta/net/connection.h"
#include "mta/net/timer.h"
#include "mta/net/worker.h"
#include "policy/client_key.h"
#include "policy/submission_headers.h"

namespace mta {
namespace {

using policy::ListenerRole;

size_t role_index(ListenerRole r) { return static_cast<size_t>(r); }

std::atomic<uint64_t> g_session_counter{0};

std::string hex_id(uint64_t n) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(n));
  return buf;
}

// The key that limits and the login throttle count by (an IPv6 client by its /64).
std::string client_key_of(const std::string& ip) {
  auto parsed = core::IpAddress::parse(ip);
  return parsed ? policy::client_key(*parsed) : ip;
}

std::string recipients_list(const core::Envelope& env) {
  std::string out;
  for (const auto& r : env.recipients) {
    if (!out.empty()) out += ',';
    out += "<" + r.address.str() + ">";
  }
  return out;
}

// One client connection: owns the session, its timers and its connection slot. It keeps
// itself alive (self_) until the Connection reports on_closed; asynchronous completions hold
// only a weak_ptr and are dropped if the connection went away meanwhile.
class SmtpConnection final : public net::Connection::Handler,
                             public std::enable_shared_from_this<SmtpConnection> {
 public:
  SmtpConnection(net::Loop& loop, SmtpContext& ctx, net::Connection* conn, ListenerRole role,
                 bool implicit_tls, policy::ConnectionToken token)
      : loop_(loop),
        ctx_(ctx),
        conn_(conn),
        role_(role),
        implicit_tls_(implicit_tls),
        session_(ctx.session[role_index(role)], conn->peer_ip(), implicit_tls),
        idle_timer_(loop),
        total_timer_(loop),
        delay_timer_(loop),
        token_(std::move(token)),
        id_(hex_id(++g_session_counter)),
        client_ip_(conn->peer_ip()),
        client_key_(client_key_of(client_ip_)) {}

  void start() {
    self_ = shared_from_this();
    conn_->set_handler(this);
    core::LogLine(core::LogLevel::kInfo, "connect")
        .kv("session", id_).kv("client", conn_->peer_ip())
        .kv("listener", policy::role_name(role_)).emit();
    total_timer_.start(uint64_t(ctx_.config.session_timeout_s) * 1000, [this] { timeout(); });
    touch();
    conn_->start_reading();
    if (!implicit_tls_) {
      session_.greet();
      flush();
    }
  }

  void on_read(std::string_view bytes) override {
    if (closed_) return;
    touch();
    session_.receive(bytes);
    drive();
  }

  void on_tls_ready(core::Status status) override {
    if (closed_) return;
    if (!status) {
      core::LogLine(core::LogLevel::kWarn, "tls-failed")
          .kv("session", id_).kv("client", conn_->peer_ip()).remark(status.message()).emit();
      conn_->abort();
      return;
    }
    core::LogLine(core::LogLevel::kInfo, "tls")
        .kv("session", id_).kv("version", conn_->tls_version())
        .kv("cipher", conn_->tls_cipher()).emit();
    if (implicit_tls_ && session_.waiting() != smtp::Wait::kStartTls) {
      session_.greet();
    } else {
      if (session_.discarded_after_starttls() > 0)
        core::LogLine(core::LogLevel::kWarn, "starttls-injection")
            .kv("session", id_).kv("client", conn_->peer_ip())
            .kv("discarded", static_cast<int64_t>(session_.discarded_after_starttls())).emit();
      session_.on_tls_started();
    }
    drive();
  }

  void on_closed() override {
    closed_ = true;
    idle_timer_.stop();
    total_timer_.stop();
    delay_timer_.stop();
    token_.reset();
    core::LogLine(core::LogLevel::kInfo, "disconnect")
        .kv("session", id_).kv("client", client_ip_).emit();
    self_.reset();  // may destroy this
  }

 private:
  void touch() {
    idle_timer_.start(uint64_t(ctx_.config.idle_timeout_s) * 1000, [this] { timeout(); });
  }

  void timeout() {
    if (closed_) return;
    core::LogLine(core::LogLevel::kInfo, "timeout").kv("session", id_).emit();
    session_.on_timeout();
    flush();
  }

  // Answers whatever the session waits for; synchronous checks loop, asynchronous ones
  // return and come back through drive() when they complete.
  void drive() {
    while (!closed_) {
      switch (session_.waiting()) {
        case smtp::Wait::kNone:
          return flush();
        case smtp::Wait::kStartTls:
          flush();
          conn_->start_tls(ctx_.tls);
          return;
        case smtp::Wait::kAuth:
          flush();
          return check_auth();
        case smtp::Wait::kMail:
          session_.on_mail_checked(check_mail());
          break;
        case smtp::Wait::kRcpt:
          session_.on_rcpt_checked(check_rcpt());
          break;
        case smtp::Wait::kCommit:
          flush();
          return commit();
      }
    }
  }

  void flush() {
    if (closed_) return;
    std::string out = session_.take_output();
    if (!out.empty()) conn_->write(std::move(out));
    if (session_.closing() && !close_sent_) {
      close_sent_ = true;
      conn_->close();
    }
  }

  void check_auth() {
    const smtp::AuthRequest& req = session_.auth_request();
    const int64_t now = ctx_.clock.now_ms();
    const auto decision = ctx_.throttle.check(client_key_, now);
    if (!decision.allowed) {
      core::LogLine(core::LogLevel::kWarn, "auth-locked")
          .kv("session", id_).kv("client", client_ip_).kv("user", req.login).emit();
      session_.on_auth(std::nullopt, {454, "4.7.0",
                                      "Too many failed logins from this address; try again in " +
                                          std::to_string(decision.retry_after_ms / 1000 + 1) +
                                          " seconds"});
      return drive();
    }
    const policy::User* user = ctx_.users.find(req.login);
    // An unknown login still costs one hash, so timing does not reveal which logins exist.
    auto job = std::make_shared<std::pair<std::string, std::string>>(
        req.password, user ? user->password_hash : ctx_.dummy_hash);
    auto ok = std::make_shared<bool>(false);
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    std::string login = req.login;
    net::run_blocking(
        loop_, [job, ok] { *ok = policy::UserDb::verify_password(job->first, job->second); },
        [weak, ok, user, login] {
          if (auto self = weak.lock()) self->auth_done(*ok ? user : nullptr, login);
        });
  }

  void auth_done(const policy::User* user, const std::string& login) {
    if (closed_) return;
    const int64_t now = ctx_.clock.now_ms();
    if (user) {
      ctx_.throttle.record_success(client_key_);
      user_ = user;
      core::LogLine(core::LogLevel::kInfo, "auth")
          .kv("session", id_).kv("client", client_ip_).kv("user", user->name).emit();
      session_.on_auth(user->name, {});
      return drive();
    }
    const int64_t delay = ctx_.throttle.record_failure(client_key_, now);
    core::LogLine(core::LogLevel::kWarn, "auth-failed")
        .kv("session", id_).kv("client", client_ip_).kv("user", login)
        .kv("delay_ms", delay).emit();
    delay_timer_.start(static_cast<uint64_t>(delay), [this] {
      if (closed_) return;
      session_.on_auth(std::nullopt, {535, "5.7.8", "Authentication credentials invalid"});
      drive();
    });
  }

  std::optional<core::Reply> check_mail() {
    const auto& env = session_.envelope();
    if (user_ && ctx_.config.check_sender && role_ != ListenerRole::kRelay) {
      if (auto refusal = policy::check_envelope_sender(*user_, env.sender)) {
        log_reject(*refusal, "");
        return refusal;
      }
    }
    return std::nullopt;
  }

  std::optional<core::Reply> check_rcpt() {
    const auto& rcpt = session_.rcpt_request();
    auto ip = core::IpAddress::parse(client_ip_);
    if (!ip) return core::Reply{451, "4.3.0", "Cannot parse client address"};
    auto d = policy::decide_rcpt(ctx_.relay, role_, *ip, !session_.auth_user().empty(),
                                 rcpt.address);
    if (d.accepted) return std::nullopt;
    log_reject(d.reply, rcpt.address.str());
    return d.reply;
  }

  void log_reject(const core::Reply& r, const std::string& to) {
    core::LogLine l(core::LogLevel::kInfo, "reject");
    l.kv("session", id_).kv("client", client_ip_).kv("from", "<" + session_.envelope().sender.str() + ">");
    if (!to.empty()) l.kv("to", "<" + to + ">");
    l.remark(std::to_string(r.code) + " " + r.enhanced + " " + r.text).emit();
  }

  void commit() {
    smtp::CommitRequest req = session_.take_commit();
    const int64_t now = ctx_.clock.now_ms();
    std::string id = ctx_.ids.next(now);
    req.envelope.received_at_ms = now;

    std::string_view first = req.chunks.empty() ? std::string_view() : req.chunks.front();
    const auto end = core::header_end(first);
    policy::HeaderOptions opts;
    const bool submission = role_ != ListenerRole::kRelay;
    opts.add_message_id = submission && ctx_.config.add_message_id;
    opts.add_date = submission && ctx_.config.add_date;
    opts.check_from_ownership = submission && ctx_.config.check_sender && user_;
    opts.user = user_;
    auto verdict = policy::submission_headers(first.substr(0, end.value_or(first.size())),
                                              req.envelope, ctx_.config.hostname, id, opts);
    if (verdict.refusal) {
      log_reject(*verdict.refusal, "");
      session_.on_committed(*verdict.refusal);
      return drive();
    }
    // Read the header section before the prefix goes in: inserting may move the strings
    // `first` points into.
    std::optional<std::string> dkim_domain = signing_domain(first.substr(0, end.value_or(first.size())));
    req.chunks.insert(req.chunks.begin(), std::move(verdict.prefix));
    if (!dkim_domain) return enqueue(std::move(id), std::move(req.envelope), std::move(req.chunks), now);

    // RSA signing takes milliseconds: on the worker pool, so other sessions on this loop
    // are not held up.
    struct Job {
      std::vector<std::string> chunks;
      core::Result<std::string> signature = core::Status::temporary("not signed");
    };
    auto job = std::make_shared<Job>();
    job->chunks = std::move(req.chunks);
    const policy::DkimSigner* signer = ctx_.dkim;
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    auto env = std::make_shared<core::Envelope>(std::move(req.envelope));
    net::run_blocking(
        loop_,
        [job, signer, domain = *dkim_domain] {
          std::string whole;  // OpenDKIM wants the message in one piece
          for (const auto& c : job->chunks) whole += c;
          job->signature = signer->sign(whole, domain);
        },
        [weak, job, env, id, now, domain = *dkim_domain] {
          auto self = weak.lock();
          if (!self) return;
          if (job->signature) {
            job->chunks.insert(job->chunks.begin(), std::move(*job->signature));
          } else {
            // Unsigned beats refused: the message is still the sender's.
            core::LogLine(core::LogLevel::kError, "dkim-sign-failed")
                .kv("id", id).kv("domain", domain).remark(job->signature.status().message()).emit();
          }
          self->enqueue(id, std::move(*env), std::move(job->chunks), now);
        });
  }

  // The domain whose [[dkim]] keys sign this message: its From domain, if keys exist for it.
  // Signing once at acceptance makes the queued bytes the signed bytes (issue 5).
  std::optional<std::string> signing_domain(std::string_view header_section) const {
    if (!ctx_.dkim) return std::nullopt;
    const auto fields = core::parse_header_fields(header_section);
    const core::HeaderField* from = core::find_field(fields, "From");
    if (!from) return std::nullopt;
    auto addrs = policy::parse_mailbox_list(core::unfold(from->value));
    if (!addrs || addrs->empty() || !ctx_.dkim->has_key(addrs->front().domain))
      return std::nullopt;
    return addrs->front().domain;
  }

  // Hands the message to the group-commit writer; the 250 goes out from committed().
  void enqueue(std::string id, core::Envelope env, std::vector<std::string> chunks, int64_t now) {
    if (closed_) return;
    size_t size = 0;
    for (const auto& c : chunks) size += c.size();
    std::string from = env.sender.str();
    std::string to = recipients_list(env);
    const size_t nrcpt = env.recipients.size();
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    net::Loop* loop = &loop_;
    ctx_.writer.enqueue(
        queue::NewMessage{id, std::move(env), std::move(chunks), now},
        [weak, loop, id, from, to, nrcpt, size](core::Status s) {
          loop->post([weak, id, from, to, nrcpt, size, s] {
            if (auto self = weak.lock()) self->committed(s, id, from, to, nrcpt, size);
          });
        });
  }

  void committed(const core::Status& s, const std::string& id, const std::string& from,
                 const std::string& to, size_t nrcpt, size_t size) {
    if (!s) {
      core::LogLine(core::LogLevel::kError, "queue-write-failed")
          .kv("session", id_).kv("id", id).remark(s.to_string()).emit();
      if (!closed_) session_.on_committed({451, "4.3.0", "Error: queue write failed; try again later"});
      return drive();
    }
    core::LogLine(core::LogLevel::kInfo, "queued")
        .kv("id", id).kv("session", id_).kv("from", "<" + from + ">").kv("to", to)
        .kv("nrcpt", static_cast<int64_t>(nrcpt)).kv("size", static_cast<int64_t>(size))
        .kv("client", client_ip_).kv("user", session_.auth_user().empty() ? "-" : session_.auth_user())
        .emit();
    if (ctx_.on_queued) ctx_.on_queued();
    if (closed_) return;
    session_.on_committed({250, "2.0.0", "Ok: queued as " + id});
    drive();
  }

  net::Loop& loop_;
  SmtpContext& ctx_;
  net::Connection* conn_;
  const ListenerRole role_;
  const bool implicit_tls_;
  smtp::ServerSession session_;
  net::Timer idle_timer_;
  net::Timer total_timer_;
  net::Timer delay_timer_;
  std::optional<policy::ConnectionToken> token_;
  const std::string id_;
  const std::string client_ip_;
  const std::string client_key_;
  const policy::User* user_ = nullptr;
  std::shared_ptr<SmtpConnection> self_;
  bool closed_ = false;
  bool close_sent_ = false;
};

smtp::ServerConfig session_config(const Config& c, ListenerRole role, bool have_tls) {
  smtp::ServerConfig s;
  s.hostname = c.hostname;
  s.listener = std::string(policy::role_name(role));
  s.starttls_available = have_tls && role != ListenerRole::kSubmissions;
  s.auth_enabled = role != ListenerRole::kRelay;
  s.auth_required = role != ListenerRole::kRelay;
  s.max_message_size = c.max_message_size;
  s.max_recipients = c.max_recipients;
  s.max_command_line = c.max_command_line;
  s.max_line_length = c.max_line_length;
  s.max_errors = static_cast<int>(c.max_errors);
  s.bare_lf = c.bare_lf;
  return s;
}

}  // namespace

SmtpContext::SmtpContext(const Config& cfg, const policy::UserDb& users_db, queue::Writer& w,
                         core::QueueIdGenerator& id_gen, std::shared_ptr<net::TlsContext> tls_ctx)
    : config(cfg),
      users(users_db),
      writer(w),
      tls(std::move(tls_ctx)),
      throttle(policy::AuthThrottleConfig{
          static_cast<int>(cfg.auth_max_failures), int64_t(cfg.auth_window_s) * 1000,
          int64_t(cfg.auth_lockout_s) * 1000, 1000, int64_t(cfg.auth_max_delay_ms)}),
      limiter(policy::ConnectionLimitsConfig{cfg.max_connections, cfg.max_connections_per_ip}),
      relay(policy::RelayConfig{cfg.trusted_networks, cfg.local_domains}),
      ids(id_gen) {
  for (auto role : {ListenerRole::kSubmission, ListenerRole::kSubmissions, ListenerRole::kRelay})
    session[role_index(role)] = session_config(cfg, role, tls != nullptr);
  auto dummy = policy::UserDb::hash_password("porter-timing-equaliser");
  dummy_hash = dummy ? *dummy : std::string("$6$invalid$");
}

SmtpService::SmtpService(net::Loop& loop, SmtpContext& ctx) : loop_(loop), ctx_(ctx) {}

SmtpService::~SmtpService() { close(); }

core::Status SmtpService::listen() {
  for (const ListenerConfig& lc : ctx_.config.listeners) {
    const bool implicit = lc.role == ListenerRole::kSubmissions;
    if (implicit && !ctx_.tls)
      return core::Status::invalid("listener " + lc.address + ":" + std::to_string(lc.port) +
                                   " has role submissions (implicit TLS) but no [tls] is configured");
    const ListenerRole role = lc.role;
    auto listener = std::make_unique<net::Listener>(
        loop_, lc.address, lc.port, implicit, implicit ? ctx_.tls : nullptr,
        [this, role, implicit](net::Connection* conn) {
          auto acquired = ctx_.limiter.acquire(client_key_of(conn->peer_ip()));
          if (!acquired.token) {
            const core::Reply r = policy::refusal_reply(acquired.refusal);
            core::LogLine(core::LogLevel::kWarn, "connection-refused")
                .kv("client", conn->peer_ip()).remark(r.text).emit();
            if (!implicit) conn->write(r.to_wire());
            conn->close();
            return;
          }
          std::make_shared<SmtpConnection>(loop_, ctx_, conn, role, implicit,
                                           std::move(*acquired.token))
              ->start();
        });
    if (auto s = listener->listen(); !s) return s;
    listeners_.push_back(std::move(listener));
  }
  return core::Status::ok();
}

void SmtpService::close() {
  for (auto& l : listeners_) l->close();
  listeners_.clear();
}

}  // namespace mta
