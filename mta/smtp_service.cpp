#include "mta/smtp_service.h"

#include <atomic>
#include <optional>

#include "core/header.h"
#include "core/log.h"
#include "mta/client_connection.h"
#include "mta/login.h"
#include "mta/net/connection.h"
#include "mta/net/timer.h"
#include "mta/net/worker.h"
#include "policy/auth_results.h"
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

bool trusted(const policy::RelayConfig& relay, const std::string& ip) {
  auto parsed = core::IpAddress::parse(ip);
  return parsed && policy::is_trusted(relay, *parsed);
}

std::string recipients_list(const core::Envelope& env) {
  std::string out;
  for (const auto& r : env.recipients) {
    if (!out.empty()) out += ',';
    out += "<" + r.address.str() + ">";
  }
  return out;
}

// One client connection: owns the session and its timers (ClientConnection keeps it alive
// until on_closed); asynchronous completions hold only a weak_ptr and are dropped if the
// connection went away meanwhile.
class SmtpConnection final : public ClientConnection,
                             public std::enable_shared_from_this<SmtpConnection> {
 public:
  SmtpConnection(net::Loop& loop, SmtpContext& ctx, InboundChecks* checks, net::Connection* conn,
                 const ListenerConfig& listener, policy::ConnectionToken token)
      : ClientConnection(conn, std::move(token)),
        loop_(loop),
        ctx_(ctx),
        settings_(ctx.settings()),
        cfg_(*settings_->runtime->config),
        checks_(checks),
        role_(listener.role),
        implicit_tls_(listener.implicit_tls),
        session_(settings_->session[role_index(role_)], conn->peer_ip(), implicit_tls_),
        idle_timer_(loop),
        total_timer_(loop),
        delay_timer_(loop),
        id_(hex_id(++g_session_counter)),
        inbound_(role_ == ListenerRole::kRelay && !trusted(settings_->relay, client_ip_)) {
    count_in(listener);
  }

  void start() {
    keep_alive(shared_from_this());
    conn_->set_handler(this);
    core::LogLine(core::LogLevel::kInfo, "connect")
        .kv("session", id_).kv("client", conn_->peer_ip())
        .kv("listener", policy::role_name(role_)).emit();
    total_timer_.start(uint64_t(cfg_.session_timeout_s) * 1000, [this] { timeout(); });
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
    drive();
  }

  void on_tls_ready(core::Status status) override {
    if (closed()) return;
    if (!status) {
      core::LogLine(core::LogLevel::kWarn, "tls-failed")
          .kv("session", id_).kv("client", conn_->peer_ip()).remark(status.message()).emit();
      conn_->abort();
      return;
    }
    tls_established();
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
    mark_closed();
    idle_timer_.stop();
    total_timer_.stop();
    delay_timer_.stop();
    core::LogLine(core::LogLevel::kInfo, "disconnect")
        .kv("session", id_).kv("client", client_ip_).emit();
    released();  // may destroy this
  }

 private:
  void touch() {
    idle_timer_.start(uint64_t(cfg_.idle_timeout_s) * 1000, [this] { timeout(); });
  }

  void timeout() {
    if (closed()) return;
    core::LogLine(core::LogLevel::kInfo, "timeout").kv("session", id_).emit();
    session_.on_timeout();
    flush();
  }

  // Answers whatever the session waits for; synchronous checks loop, asynchronous ones
  // return and come back through drive() when they complete.
  void drive() {
    while (!closed()) {
      switch (session_.waiting()) {
        case smtp::Wait::kNone:
          return flush();
        case smtp::Wait::kStartTls:
          flush();
          tls_starting();
          conn_->start_tls(settings_->runtime->tls);
          return;
        case smtp::Wait::kAuth:
          flush();
          return check_auth();
        case smtp::Wait::kMail:
          if (check_mail()) return flush();
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

  void flush() { send(session_.take_output(), session_.closing()); }

  void check_auth() {
    const smtp::AuthRequest& req = session_.auth_request();
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    login(loop_, ctx_.submission_login, req.login, req.password, delay_timer_,
          [weak, login = req.login](LoginResult r) {
            if (auto self = weak.lock()) self->auth_done(r, login);
          });
  }

  void auth_done(const LoginResult& r, const std::string& login) {
    if (closed()) return;
    switch (r.outcome) {
      case LoginResult::Outcome::kOk:
        user_ = r.user;
        app_ = r.app;
        user_runtime_ = r.runtime;
        with_app(core::LogLine(core::LogLevel::kInfo, "auth")
                     .kv("session", id_)
                     .kv("client", client_ip_)
                     .kv("user", r.user->name))
            .emit();
        session_.on_auth(r.user->name, {});
        break;
      case LoginResult::Outcome::kLockedOut:
        core::LogLine(core::LogLevel::kWarn, "auth-locked")
            .kv("session", id_).kv("client", client_ip_).kv("user", login).emit();
        session_.on_auth(std::nullopt,
                         {454, "4.7.0",
                          "Too many failed logins from this address; try again in " +
                              std::to_string(r.retry_after_ms / 1000 + 1) + " seconds"});
        break;
      case LoginResult::Outcome::kBadCredentials:
        core::LogLine(core::LogLevel::kWarn, "auth-failed")
            .kv("session", id_).kv("client", client_ip_).kv("user", login)
            .kv("delay_ms", r.delay_ms).emit();
        session_.on_auth(std::nullopt, {535, "5.7.8", "Authentication credentials invalid"});
        break;
    }
    drive();
  }

  // Answers the session at once and returns false, or starts SPF and returns true: then
  // spf_done() answers.
  bool check_mail() {
    const auto& env = session_.envelope();
    sender_checks_ = {};
    std::optional<core::Reply> refusal = check_rate(ctx_.client_messages, ctx_.user_messages, "messages");
    if (!refusal && app_) {
      refusal = check_app(env.sender);
    } else if (!refusal && user_ && cfg_.check_sender && role_ != ListenerRole::kRelay) {
      refusal = policy::check_envelope_sender(*user_, env.sender);
    }
    if (refusal || !inbound_ || !checks_ || cfg_.spf == CheckMode::kOff) {
      if (refusal) log_reject(*refusal, "");
      session_.on_mail_checked(refusal);
      return false;
    }
    policy::SpfRequest req;
    if (auto ip = core::IpAddress::parse(client_ip_)) req.ip = *ip;
    req.helo = session_.helo();
    req.mail_from = env.sender.str();
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    checks_->check_sender(req, [weak](policy::InboundResults r) {
      if (auto self = weak.lock()) self->spf_done(std::move(r));
    });
    return true;
  }

  void spf_done(policy::InboundResults results) {
    if (closed()) return;
    sender_checks_ = std::move(results);
    std::optional<core::Reply> refusal =
        policy::spf_refusal(*sender_checks_.spf_mail_from, cfg_.spf);
    if (refusal) log_reject(*refusal, "");
    session_.on_mail_checked(refusal);
    drive();
  }

  // A local recipient must exist (no backscatter: unknown addresses are refused now, not
  // bounced later) and have room: 550 5.1.1, or 452 4.2.2 while over quota.
  std::optional<core::Reply> check_local(const core::Address& addr) {
    if (!settings_->runtime->local) return std::nullopt;
    core::Address who = addr;
    // RFC 5321 §4.5.1: "<Postmaster>" without a domain is the postmaster of our first domain.
    if (who.domain.empty() && !cfg_.local_domains.empty())
      who.domain = cfg_.local_domains.front();
    const std::vector<std::string> logins = settings_->runtime->local->resolve(who);
    if (logins.empty())
      return core::Reply{550, "5.1.1", "<" + addr.str() + ">: no such user here"};
    if (!ctx_.mailboxes) return std::nullopt;
    const uint64_t incoming = session_.envelope().declared_size;
    for (const std::string& login : logins) {
      const uint64_t quota = settings_->runtime->local->quota_bytes(login);
      if (quota == 0) continue;
      auto used = ctx_.mailboxes->bytes_used(login);
      if (used && *used + incoming >= quota)
        return core::Reply{452, "4.2.2", "<" + addr.str() + ">: mailbox full"};
    }
    return std::nullopt;
  }

  // Counts one message (at MAIL) or recipient (at RCPT) against the client's and the user's
  // limits; the refusal names the limit that was reached.
  std::optional<core::Reply> check_rate(policy::RateLimiter& per_client, policy::RateLimiter& per_user,
                                        const char* what) {
    const int64_t now = ctx_.clock.now_ms();
    auto refuse = [&](const policy::RateLimiter& l, const policy::RateLimiter::Decision& d,
                      const std::string& who) {
      return core::Reply{450, "4.7.1",
                         "Rate limit reached: " + who + " may send " + std::to_string(l.limit()) +
                             " " + what + " per " + std::to_string(l.window_ms() / 1000) +
                             " seconds; try again in " +
                             std::to_string((d.retry_after_ms + 999) / 1000) + " seconds"};
    };
    if (auto d = per_client.take(client_key_, now); !d.allowed)
      return refuse(per_client, d, "client " + client_ip_);
    if (!user_) return std::nullopt;
    if (auto d = per_user.take(core::to_lower_ascii(user_->name), now); !d.allowed)
      return refuse(per_user, d, "user " + user_->name);
    return std::nullopt;
  }

  // An app sends only as its senders (the null sender too: RFC 3834 auto-replies), and only
  // within its quotas; a refused sender is not counted.
  std::optional<core::Reply> check_app(const core::Address& sender) {
    if (!sender.empty() && !policy::AppDb::may_send_as(*app_, sender))
      return core::Reply{
          553, "5.7.1",
          "Sender address <" + sender.str() + "> is not one of app " + app_->name + "'s senders"};
    const auto d = ctx_.app_quota.take(*app_, ctx_.clock.now_ms());
    if (d.allowed) return std::nullopt;
    const bool minute = d.period == policy::AppQuota::Period::kMinute;
    return core::Reply{450, "4.7.1",
                       "Rate limit reached: app " + app_->name + " may send " +
                           std::to_string(d.limit) + " messages per " +
                           (minute ? "minute" : "day") + "; try again in " +
                           std::to_string((d.retry_after_ms + 999) / 1000) + " seconds"};
  }

  // Names the app on a log line of its session.
  core::LogLine& with_app(core::LogLine& l) const {
    if (app_) l.kv("app", app_->name);
    return l;
  }

  std::optional<core::Reply> check_rcpt() {
    const auto& rcpt = session_.rcpt_request();
    auto ip = core::IpAddress::parse(client_ip_);
    if (!ip) return core::Reply{451, "4.3.0", "Cannot parse client address"};
    auto d = policy::decide_rcpt(settings_->relay, role_, *ip, !session_.auth_user().empty(),
                                 rcpt.address);
    std::optional<core::Reply> refusal;
    if (!d.accepted) refusal = d.reply;
    if (!refusal && d.local) refusal = check_local(rcpt.address);
    if (!refusal) refusal = check_suppressed(rcpt.address);
    if (!refusal) refusal = check_rate(ctx_.client_recipients, ctx_.user_recipients, "recipients");
    if (refusal) log_reject(*refusal, rcpt.address.str());
    return refusal;
  }

  // The suppression list of this session's scope (its login; "" without AUTH): a recipient
  // that hard-bounced is refused with the reason, not mailed again.
  std::optional<core::Reply> check_suppressed(const core::Address& to) {
    if (!ctx_.suppressions || !cfg_.suppression_enabled) return std::nullopt;
    auto s = ctx_.suppressions->find(session_.auth_user(), queue::suppression_address(to),
                                     ctx_.clock.now_ms());
    if (!s) return core::Reply{451, "4.3.0", "Cannot read the suppression list; try again later"};
    if (!*s) return std::nullopt;
    return core::Reply{550, "5.1.1",
                       "<" + to.str() + ">: suppressed (" + (*s)->source + "): " + (*s)->reason};
  }

  void log_reject(const core::Reply& r, const std::string& to) {
    core::LogLine l(core::LogLevel::kInfo, "reject");
    l.kv("session", id_).kv("client", client_ip_).kv("from", "<" + session_.envelope().sender.str() + ">");
    if (!to.empty()) l.kv("to", "<" + to + ">");
    with_app(l).remark(std::to_string(r.code) + " " + r.enhanced + " " + r.text).emit();
  }

  // A message between the end of data and the queue: the bytes as received, what we put in
  // front of them, and what the checks on the way need.
  struct Pending {
    std::string id;
    core::Envelope envelope;
    std::vector<std::string> chunks;  // as received
    std::string prefix;               // our header fields (Received, Message-ID, Date ...)
    std::string from_domain;          // of the first From address; "" if none can be read
    int64_t now = 0;
  };

  void commit() {
    smtp::CommitRequest req = session_.take_commit();
    auto msg = std::make_shared<Pending>();
    msg->now = ctx_.clock.now_ms();
    msg->id = ctx_.ids.next(msg->now);
    req.envelope.received_at_ms = msg->now;

    std::string_view first = req.chunks.empty() ? std::string_view() : req.chunks.front();
    const std::string_view header = first.substr(0, core::header_end(first).value_or(first.size()));
    policy::HeaderOptions opts;
    const bool submission = role_ != ListenerRole::kRelay;
    opts.add_message_id = submission && cfg_.add_message_id;
    opts.add_date = submission && cfg_.add_date;
    opts.check_from_ownership = submission && user_ && (cfg_.check_sender || app_);
    opts.user = user_;
    auto verdict = policy::submission_headers(header, req.envelope, cfg_.hostname, msg->id, opts);
    if (verdict.refusal) {
      log_reject(*verdict.refusal, "");
      session_.on_committed(*verdict.refusal);
      return drive();
    }
    msg->from_domain = from_domain(header);
    msg->prefix = std::move(verdict.prefix);
    msg->envelope = std::move(req.envelope);
    msg->chunks = std::move(req.chunks);
    if (inbound_) return judge_inbound(std::move(msg));
    check_alignment(std::move(msg));
  }

  // RFC5322.From's (first) domain: what DMARC and DKIM signing key on.
  static std::string from_domain(std::string_view header_section) {
    const auto fields = core::parse_header_fields(header_section);
    const core::HeaderField* from = core::find_field(fields, "From");
    if (!from) return "";
    auto addrs = policy::parse_mailbox_list(core::unfold(from->value));
    return addrs && !addrs->empty() ? addrs->front().domain : "";
  }

  // Inbound: DKIM and DMARC, then reject, quarantine or accept with Authentication-Results.
  void judge_inbound(std::shared_ptr<Pending> msg) {
    const bool dkim = cfg_.dkim_verify;
    policy::InboundResults results = sender_checks_;
    results.from_domain = msg->from_domain;
    if (!checks_ || (!dkim && cfg_.dmarc == CheckMode::kOff))
      return inbound_judged(msg, results);
    std::string whole;
    if (dkim)
      for (const auto& c : msg->chunks) whole += c;
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    checks_->check_message(std::move(results), std::move(whole),
                           [weak, msg](policy::InboundResults r) {
                             if (auto self = weak.lock()) self->inbound_judged(msg, r);
                           });
  }

  void inbound_judged(const std::shared_ptr<Pending>& msg, const policy::InboundResults& results) {
    if (closed()) return;
    const policy::InboundDecision d = policy::judge_inbound(results, cfg_.dmarc);
    const std::string field = policy::authentication_results(cfg_.authserv_id, d.entries);
    core::LogLine(core::LogLevel::kInfo, "inbound")
        .kv("id", msg->id).kv("session", id_).kv("client", client_ip_)
        .kv("action", policy::inbound_action_name(d.action))
        .remark(core::unfold(field.substr(field.find(':') + 1))).emit();
    if (d.action == policy::InboundDecision::Action::kReject) {
      log_reject(d.refusal, "");
      session_.on_committed(d.refusal);
      return drive();
    }
    msg->envelope.quarantine = d.action == policy::InboundDecision::Action::kQuarantine;
    // RFC 8601 §5: a field claiming our authserv-id did not come from us.
    if (!msg->chunks.empty()) {
      std::string& first = msg->chunks.front();
      const size_t end = core::header_end(first).value_or(first.size());
      first = policy::remove_our_auth_results(std::string_view(first).substr(0, end),
                                              cfg_.authserv_id) +
              first.substr(end);
    }
    msg->prefix = field + msg->prefix;
    store(msg);
  }

  // Outgoing mail whose From domain publishes DMARC but has no DKIM key here will fail
  // DMARC at receivers that check it: warn, or refuse ([submission] dmarc_alignment).
  void check_alignment(std::shared_ptr<Pending> msg) {
    const bool signed_here = settings_->runtime->dkim && settings_->runtime->dkim->has_key(msg->from_domain);
    if (!checks_ || cfg_.dmarc_alignment == AlignmentMode::kOff ||
        msg->from_domain.empty() || signed_here || !leaves_porter(msg->envelope))
      return sign(std::move(msg));
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    checks_->check_published_dmarc(msg->from_domain, [weak, msg](policy::DmarcVerdict v) {
      if (auto self = weak.lock()) self->alignment_checked(msg, v);
    });
  }

  bool leaves_porter(const core::Envelope& env) const {
    for (const auto& r : env.recipients)
      if (!policy::is_local_domain(settings_->relay, r.address.domain)) return true;
    return false;
  }

  void alignment_checked(const std::shared_ptr<Pending>& msg, const policy::DmarcVerdict& v) {
    if (closed()) return;
    if (v.result == policy::DmarcVerdict::Result::kNone ||
        v.result == policy::DmarcVerdict::Result::kTempError)
      return sign(msg);
    const std::string p = std::string(v.policy == 'r' ? "reject" : v.policy == 'q' ? "quarantine" : "none");
    const std::string why = "From domain " + msg->from_domain + " publishes DMARC (p=" + p +
                            " at " + v.policy_domain +
                            ") and this server holds no DKIM key for it";
    const bool refuse = cfg_.dmarc_alignment == AlignmentMode::kRefuse && v.policy != 'n';
    core::LogLine(core::LogLevel::kWarn, "dmarc-unaligned")
        .kv("id", msg->id).kv("session", id_).kv("user", user_ ? user_->name : "-")
        .kv("action", refuse ? "refuse" : "warn").remark(why).emit();
    if (!refuse) return sign(msg);
    const core::Reply r{550, "5.7.1", why + ": receivers would " + p + " this message"};
    log_reject(r, "");
    session_.on_committed(r);
    drive();
  }

  // Signs with the From domain's [[dkim]] keys, if any: once at acceptance, so the queued
  // bytes are the signed bytes (issue 5).
  void sign(std::shared_ptr<Pending> msg) {
    if (!settings_->runtime->dkim || !settings_->runtime->dkim->has_key(msg->from_domain)) return store(std::move(msg));
    // RSA signing takes milliseconds: on the worker pool, so other sessions on this loop
    // are not held up.
    struct Job {
      std::string whole;  // OpenDKIM wants the message in one piece
      core::Result<std::string> signature = core::Status::temporary("not signed");
    };
    auto job = std::make_shared<Job>();
    job->whole = msg->prefix;
    for (const auto& c : msg->chunks) job->whole += c;
    const policy::DkimSigner* signer = settings_->runtime->dkim.get();
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    net::run_blocking(
        loop_,
        [job, signer, domain = msg->from_domain,
         selector = app_ ? app_->dkim_selector : std::string()] {
          job->signature = signer->sign(job->whole, domain, selector);
        },
        [weak, job, msg] {
          auto self = weak.lock();
          if (!self) return;
          if (job->signature) {
            msg->prefix = std::move(*job->signature) + msg->prefix;
          } else {
            // Unsigned beats refused: the message is still the sender's.
            core::LogLine(core::LogLevel::kError, "dkim-sign-failed")
                .kv("id", msg->id).kv("domain", msg->from_domain)
                .remark(job->signature.status().message()).emit();
          }
          self->store(msg);
        });
  }

  void store(std::shared_ptr<Pending> msg) {
    msg->chunks.insert(msg->chunks.begin(), std::move(msg->prefix));
    enqueue(msg->id, std::move(msg->envelope), std::move(msg->chunks), msg->now);
  }

  // Hands the message to the group-commit writer; the 250 goes out from committed().
  void enqueue(std::string id, core::Envelope env, std::vector<std::string> chunks, int64_t now) {
    if (closed()) return;
    size_t size = 0;
    for (const auto& c : chunks) size += c.size();
    std::string from = env.sender.str();
    std::string to = recipients_list(env);
    const size_t nrcpt = env.recipients.size();
    std::weak_ptr<SmtpConnection> weak = weak_from_this();
    net::Loop* loop = &loop_;
    core::Counter* accepted = listener_metrics()->messages_accepted;
    ctx_.writer.enqueue(
        queue::NewMessage{id, std::move(env), std::move(chunks), now},
        [weak, loop, accepted, id, from, to, nrcpt, size](core::Status s) {
          // Counted here, on the writer thread: the message is queued even if the client
          // has gone by the time the loop hears of it.
          if (s) accepted->inc();
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
      if (!closed()) session_.on_committed({451, "4.3.0", "Error: queue write failed; try again later"});
      return drive();
    }
    with_app(core::LogLine(core::LogLevel::kInfo, "queued")
                 .kv("id", id)
                 .kv("session", id_)
                 .kv("from", "<" + from + ">")
                 .kv("to", to)
                 .kv("nrcpt", static_cast<int64_t>(nrcpt))
                 .kv("size", static_cast<int64_t>(size))
                 .kv("client", client_ip_)
                 .kv("user", session_.auth_user().empty() ? "-" : session_.auth_user()))
        .emit();
    if (ctx_.on_queued) ctx_.on_queued();
    if (closed()) return;
    session_.on_committed({250, "2.0.0", "Ok: queued as " + id});
    drive();
  }

  net::Loop& loop_;
  SmtpContext& ctx_;
  // The runtime this connection started under, kept to its end (reloads do not touch it).
  const std::shared_ptr<const SmtpSettings> settings_;
  const Config& cfg_;
  InboundChecks* checks_;  // null when no check runs
  const ListenerRole role_;
  const bool implicit_tls_;
  smtp::ServerSession session_;
  net::Timer idle_timer_;
  net::Timer total_timer_;
  net::Timer delay_timer_;
  const std::string id_;
  // Port 25 from outside the trusted networks: mail for our domains, judged on the way in.
  const bool inbound_;
  policy::InboundResults sender_checks_;  // SPF of the current transaction's MAIL FROM
  const policy::User* user_ = nullptr;
  const policy::App* app_ = nullptr;             // when user_ is an application
  std::shared_ptr<const Runtime> user_runtime_;  // keeps user_ and app_ valid across reloads
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

SmtpSettings::SmtpSettings(std::shared_ptr<const Runtime> rt)
    : runtime(std::move(rt)),
      relay(policy::RelayConfig{runtime->config->trusted_networks, runtime->config->local_domains}) {
  for (auto role : {ListenerRole::kSubmission, ListenerRole::kSubmissions, ListenerRole::kRelay})
    session[role_index(role)] = session_config(*runtime->config, role, runtime->tls != nullptr);
}

SmtpContext::SmtpContext(RuntimeHolder& rt, queue::Writer& w, core::QueueIdGenerator& id_gen)
    : SmtpContext(rt, *rt.get()->config, w, id_gen) {}

SmtpContext::SmtpContext(RuntimeHolder& rt, const Config& c, queue::Writer& w,
                         core::QueueIdGenerator& id_gen)
    : runtime(rt),
      writer(w),
      throttle(policy::AuthThrottleConfig{
          static_cast<int>(c.auth_max_failures), int64_t(c.auth_window_s) * 1000,
          int64_t(c.auth_lockout_s) * 1000, 1000, int64_t(c.auth_max_delay_ms)}),
      login(rt, throttle),
      submission_login(rt, throttle, /*apps_may_log_in=*/true),
      limiter(policy::ConnectionLimitsConfig{c.max_connections, c.max_connections_per_ip}),
      user_messages(c.user_messages, int64_t(c.rate_window_s) * 1000),
      user_recipients(c.user_recipients, int64_t(c.rate_window_s) * 1000),
      client_messages(c.client_messages, int64_t(c.rate_window_s) * 1000),
      client_recipients(c.client_recipients, int64_t(c.rate_window_s) * 1000),
      ids(id_gen) {}

std::shared_ptr<const SmtpSettings> SmtpContext::settings() {
  std::shared_ptr<const Runtime> rt = runtime.get();
  std::lock_guard lock(mu_);
  if (!settings_ || settings_->runtime != rt) settings_ = std::make_shared<const SmtpSettings>(rt);
  return settings_;
}

SmtpService::SmtpService(net::Loop& loop, SmtpContext& ctx) : loop_(loop), ctx_(ctx) {}

SmtpService::~SmtpService() { close(); }

core::Status SmtpService::listen() {
  initial_ = ctx_.settings();
  const Config& c = *initial_->runtime->config;
  bool relay_listener = false;
  for (const ListenerConfig& lc : c.listeners)
    relay_listener |= lc.protocol == Protocol::kSmtp && lc.role == ListenerRole::kRelay;
  const bool inbound = relay_listener && (c.spf != CheckMode::kOff || c.dkim_verify ||
                                          c.dmarc != CheckMode::kOff);
  if (inbound || c.dmarc_alignment != AlignmentMode::kOff) {
    auto checks = InboundChecks::create(loop_, c);
    if (!checks) return checks.status();
    checks_ = std::move(*checks);
  }
  return open_listeners(
      loop_, c, [](const ListenerConfig& lc) { return lc.protocol == Protocol::kSmtp; },
      initial_->runtime->tls,
      ctx_.limiter, [](const core::Reply& r) { return r.to_wire(); },
      [this](net::Connection* conn, const ListenerConfig& lc, policy::ConnectionToken token) {
        std::make_shared<SmtpConnection>(loop_, ctx_, checks_.get(), conn, lc,
                                         std::move(token))
            ->start();
      },
      listeners_);
}

void SmtpService::close() {
  for (auto& l : listeners_) l->close();
  listeners_.clear();
}

}  // namespace mta
