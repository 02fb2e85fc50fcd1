#include "mta/delivery.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <utility>

#include "core/log.h"
#include "dns/cache.h"
#include "dns/mx.h"
#include "dns/post.h"
#include "mta/dns_stack.h"
#include "mta/failure_policy.h"
#include "mta/local_delivery.h"
#include "mta/net/connection.h"
#include "mta/net/tls_context.h"
#include "mta/smtp/client_session.h"
#include "policy/rate_limit.h"
#include "queue/retry.h"
#include "queue/store.h"

namespace mta {
namespace {

using Kind = AttemptOutcome::Kind;

constexpr int64_t kBacklogPollMs = 50;
constexpr int64_t kThrottleWindowMs = 60'000;

// One message taken from the scheduler, until every recipient has an outcome.
struct MessageWork {
  queue::MessageRecord record;
  std::vector<AttemptOutcome> outcomes;
  int jobs_left = 0;
  int64_t started_ms = 0;
  std::optional<LocalDelivery::Plan> local;  // its recipients in our own domains
  std::optional<int64_t> due_by;             // recipients held back by a throttle: come back then
};

// Recipients of one message for one destination.
struct Job {
  std::shared_ptr<MessageWork> work;
  std::vector<size_t> rcpts;
};

struct Destination {
  std::string key;     // recipient domain, or "[smarthost]"
  std::string domain;  // for the TLS policy and the DSN text
  std::deque<Job> queue;
  int active = 0;
};

std::string reply_text(const core::Reply& r) {
  std::string t = std::to_string(r.code);
  if (!r.enhanced.empty()) t += " " + r.enhanced;
  std::string text = r.text;
  for (char& c : text)
    if (c == '\n') c = ' ';
  return t + " " + text;
}

}  // namespace

struct DeliveryService::Impl {
  Impl(net::Loop& l, const Config& c, queue::Db& d, queue::Writer& w, core::QueueIdGenerator& i,
       const policy::LocalRecipients& local_recipients, mailbox::Store& mailboxes)
      : loop(l), config(c), db(d), writer(w), ids(i), tick(l), rng(std::random_device{}()),
        local_recipients(local_recipients), local_delivery(local_recipients, mailboxes, d) {
    retry.backoff_ms.clear();
    for (uint32_t s : c.retry_s) retry.backoff_ms.push_back(int64_t(s) * 1000);
    retry.max_lifetime_ms = int64_t(c.max_lifetime_s) * 1000;
    retry.delay_warning_ms = int64_t(c.delay_warning_s) * 1000;
  }

  class Attempt;

  net::Loop& loop;
  const Config& config;
  queue::Db& db;
  queue::Writer& writer;
  core::QueueIdGenerator& ids;
  core::SystemClock clock;
  queue::RetryPolicy retry;
  net::Timer tick;
  std::mt19937 rng;
  const policy::LocalRecipients& local_recipients;  // which domains are ours, and who is there
  LocalDelivery local_delivery;
  // Messages started per destination domain in the last minute, one limiter per limit value
  // (a domain's limit is the most specific [[delivery.throttle]]).
  std::map<uint32_t, std::unique_ptr<policy::RateLimiter>> throttles;
  // Per throttled domain, when the last message held back was told to come back: the next
  // one comes a slot (a minute / limit) later, so a backlog returns at the allowed rate.
  std::unordered_map<std::string, int64_t> throttle_tail;
  std::unique_ptr<DnsStack> dns;
  std::unique_ptr<queue::Scheduler> scheduler;
  std::unique_ptr<FailurePolicy> failure;
  std::shared_ptr<net::TlsContext> tls_opportunistic;
  std::shared_ptr<net::TlsContext> tls_verify;
  std::unordered_map<std::string, Destination> destinations;
  std::list<std::unique_ptr<Attempt>> attempts;
  int in_flight_messages = 0;
  bool stopping = false;
  std::atomic<bool> poke_pending{false};

  core::Status start();
  void schedule_tick(int64_t delay_ms);
  void pump();
  void add_message(queue::MessageRecord record);
  bool throttled(MessageWork& work, const std::string& domain, int64_t now);
  void dispatch(Destination& d);
  void report(const Job& job, std::vector<AttemptOutcome> outcomes);
  core::LogLine log_outcome(const MessageWork& w, const AttemptOutcome& o, std::string_view relay,
                            int64_t now) const;
  void finish(const std::shared_ptr<MessageWork>& work);
  void settled(const std::shared_ptr<MessageWork>& work,
               const std::shared_ptr<LocalDelivery::Appends>& appends, const core::Status& s);
  void attempt_done(Attempt* a, Destination& d);
};

// One outgoing connection for one destination: resolves the route, tries its hops in order,
// and carries as many of the destination's jobs as it is allowed to.
class DeliveryService::Impl::Attempt final : public net::Connection::Handler {
 public:
  Attempt(Impl& impl, Destination& dest) : impl_(impl), dest_(dest), timer_(impl.loop) {}
  ~Attempt() override { timer_.stop(); }

  void abort() {
    if (conn_) conn_->abort();
  }

  void start() {
    take_job();
    if (!job_) return done();
    const bool smarthost = !impl_.config.smarthost.empty();
    if (smarthost) {
      port_ = impl_.config.smarthost_port;
      resolve_smarthost();
      return;
    }
    port_ = impl_.config.remote_port;
    dns::RouteOptions opts;
    opts.self_names = {impl_.config.hostname};
    dns::resolve_route(*impl_.dns->resolver, dest_.domain, opts, impl_.rng,
                       [this](dns::Route r) { on_route(std::move(r)); });
  }

 private:
  void take_job() {
    job_.reset();
    if (dest_.queue.empty()) return;
    job_ = std::move(dest_.queue.front());
    dest_.queue.pop_front();
  }

  void resolve_smarthost() {
    const std::string& host = impl_.config.smarthost;
    if (core::IpAddress::parse(host)) {
      dns::Route r;
      r.hops.push_back({host, host, 0});
      return on_route(std::move(r));
    }
    // A smarthost is a host, not a mail domain: its addresses, no MX lookup. Any failure to
    // find it is temporary: a configuration or DNS problem must never bounce mail.
    impl_.dns->resolver->query_a(host, [this, host](core::Result<dns::AddressAnswer> a) {
      dns::Route r;
      if (a) {
        for (const auto& ip : a->records) r.hops.push_back({host, ip, 0});
      }
      if (r.hops.empty()) {
        r.outcome = dns::RouteOutcome::kTemporary;
        r.detail = "smarthost " + host + ": " +
                   (a ? std::string("no IPv4 address") : a.status().message());
      }
      on_route(std::move(r));
    });
  }

  void on_route(dns::Route route) {
    if (route.outcome != dns::RouteOutcome::kOk) {
      // No hop to try: every job queued for this destination shares the verdict.
      const auto [code, status, kind] = route_failure(route.outcome);
      const std::string reply = std::to_string(code) + " " + status + " " + route.detail;
      fail_job(kind, reply, status, "");
      while (!dest_.queue.empty()) {
        take_job();
        fail_job(kind, reply, status, "");
      }
      return done();
    }
    hops_ = std::move(route.hops);
    next_hop();
  }

  static std::tuple<int, std::string, Kind> route_failure(dns::RouteOutcome o) {
    switch (o) {
      case dns::RouteOutcome::kNoSuchDomain:
        return {550, "5.1.2", Kind::kPermanent};
      case dns::RouteOutcome::kNullMx:
        return {556, "5.1.10", Kind::kPermanent};
      case dns::RouteOutcome::kLoopsToSelf:
        return {554, "5.4.6", Kind::kPermanent};
      case dns::RouteOutcome::kUnroutable:
        return {554, "5.4.4", Kind::kPermanent};
      case dns::RouteOutcome::kTemporary:
      case dns::RouteOutcome::kOk:
        break;
    }
    return {451, "4.4.3", Kind::kTemporary};
  }

  void next_hop() {
    if (impl_.stopping) return;
    // Opportunistic TLS failed on this host: the same host once more, in clear (RFC 7435).
    const bool again_in_clear = std::exchange(clear_retry_, false);
    if (!again_in_clear && hop_index_ >= hops_.size()) {
      // Every host tried: the job is deferred with the last error; so is the rest of the
      // destination's queue, which would only meet the same hosts. The status keeps the
      // reply's detail (4.7.4 no STARTTLS, 4.3.2 closing), in class 4.
      const std::string reply = last_error_.empty() ? "451 4.4.1 no host answered" : last_error_;
      const std::string status = last_status_.size() > 1 ? "4" + last_status_.substr(1) : "4.4.1";
      fail_job(Kind::kTemporary, reply, status, last_mta_);
      while (!dest_.queue.empty()) {
        take_job();
        fail_job(Kind::kTemporary, reply, status, last_mta_);
      }
      return done();
    }
    if (!again_in_clear) hop_ = hops_[hop_index_++];
    in_clear_ = again_in_clear;
    relay_ = hop_.host + "[" + hop_.ip + "]:" + std::to_string(port_);
    net::Connection::connect(
        impl_.loop, hop_.ip, port_, int(impl_.config.connect_timeout_s) * 1000,
        [this](core::Result<net::Connection*> c) {
          if (!c) {
            last_error_ = "451 4.4.1 " + relay_ + ": " + c.status().message();
            last_status_ = "4.4.1";
            last_mta_ = relay_;
            return next_hop();
          }
          connected(*c);
        });
  }

  void connected(net::Connection* conn) {
    conn_ = conn;
    conn_->set_handler(this);
    smtp::ClientConfig cc;
    cc.helo_name = impl_.config.hostname;
    const bool smarthost = !impl_.config.smarthost.empty();
    tls_policy_ = in_clear_    ? TlsPolicy::kNone
                  : smarthost ? impl_.config.smarthost_tls
                              : tls_policy_for(impl_.config, dest_.domain);
    cc.tls = tls_policy_;
    cc.tls_possible = true;
    if (smarthost && !impl_.config.smarthost_user.empty())
      cc.auth = std::make_pair(impl_.config.smarthost_user, impl_.config.smarthost_password);
    session_ = std::make_unique<smtp::ClientSession>(cc);
    messages_ = 0;
    arm_timer();
    conn_->start_reading();
    session_->on_connected();
    drive();
  }

  void arm_timer() {
    timer_.start(uint64_t(impl_.config.command_timeout_s) * 1000, [this] {
      if (!conn_ || !session_) return;
      session_->on_timeout();
      drive();
    });
  }

  void on_read(std::string_view bytes) override {
    arm_timer();
    session_->receive(bytes);
    drive();
  }

  void on_tls_ready(core::Status s) override {
    if (s && tls_policy_ == TlsPolicy::kVerify && !conn_->tls_peer_verified())
      s = core::Status::permanent("certificate of " + hop_.host + " could not be verified");
    if (!s) {
      core::LogLine(core::LogLevel::kWarn, "tls-failed")
          .kv("relay", relay_).remark(s.message()).emit();
      clear_retry_ = tls_policy_ == TlsPolicy::kMay;
    }
    session_->on_tls_started(s.is_ok());
    drive();
  }

  void on_closed() override {
    conn_ = nullptr;
    timer_.stop();
    if (impl_.stopping) return;  // unsettled messages keep their schedule entry
    if (session_ && session_->wants() != smtp::Want::kClose) {
      session_->on_closed();
      collect();
    }
    session_.reset();
    if (finished_) return done();
    if (job_) {
      if (!host_error_.empty()) {
        last_error_ = host_error_;
        last_status_ = host_status_;
      }
      host_error_.clear();
      return next_hop();
    }
    done();
  }

  // Answers what the client session wants until it waits for the server.
  void drive() {
    while (conn_ && session_) {
      collect();
      if (!conn_) return;
      std::string out = session_->take_output();
      if (!out.empty()) conn_->write(std::move(out));
      switch (session_->wants()) {
        case smtp::Want::kNothing:
          return;
        case smtp::Want::kStartTls: {
          auto ctx = tls_policy_ == TlsPolicy::kVerify ? impl_.tls_verify : impl_.tls_opportunistic;
          conn_->start_tls_client(ctx, hop_.host);
          return;
        }
        case smtp::Want::kNextMessage:
          if (!job_ && messages_ < impl_.config.messages_per_connection) take_job();
          if (!job_) {
            session_->quit();
            break;
          }
          ++messages_;
          session_->send_message(client_message(*job_));
          break;
        case smtp::Want::kBody: {
          const std::string& id = job_->work->record.id;
          auto s = queue::read_body_chunks(impl_.db, id, [this](std::string_view chunk) {
            session_->body_chunk(chunk);
            return true;
          });
          if (!s) {
            core::LogLine(core::LogLevel::kError, "body-read-failed").kv("id", id)
                .remark(s.to_string()).emit();
            host_failed("451 4.3.0 cannot read the queued message: " + s.message(), "4.3.0");
            return;
          }
          session_->body_end();
          break;
        }
        case smtp::Want::kClose:
          finished_ = !job_;
          conn_->close();
          return;
      }
    }
  }

  smtp::ClientMessage client_message(const Job& job) const {
    const auto& env = job.work->record.envelope;
    smtp::ClientMessage m;
    m.sender = env.sender;
    for (size_t i : job.rcpts) m.recipients.push_back(env.recipients[i]);
    m.size = job.work->record.body_size;
    m.eight_bit = env.body == core::BodyType::k8BitMime;
    m.needs_smtputf8 = env.smtputf8;
    m.ret = env.ret;
    m.envid = env.envid;
    return m;
  }

  // Moves finished transactions' outcomes to their jobs.
  void collect() {
    for (auto& result : session_->take_results()) {
      if (!job_) continue;
      std::vector<AttemptOutcome> outcomes;
      bool all_temporary = true;
      for (const auto& r : result.recipients) {
        AttemptOutcome o;
        o.rcpt = job_->rcpts.at(r.index);
        o.kind = r.reply.positive() ? Kind::kDelivered
                 : r.reply.transient() ? Kind::kTemporary : Kind::kPermanent;
        o.reply = reply_text(r.reply);
        o.status = r.reply.enhanced;
        o.remote_mta = relay_;
        o.from_remote = r.from_server;
        o.remote_dsn = session_->extensions().dsn;
        if (o.kind != Kind::kTemporary) all_temporary = false;
        outcomes.push_back(std::move(o));
      }
      // A transaction refused as a whole with 4xx is worth the next MX host (RFC 5321 §5.1).
      if (all_temporary && !outcomes.empty() && hop_index_ < hops_.size() && !result.recipients.empty()) {
        last_error_ = outcomes.front().reply;
        last_status_ = outcomes.front().status;
        last_mta_ = relay_;
        retry_next_hop_ = true;
        continue;
      }
      impl_.report(*job_, std::move(outcomes));
      job_.reset();
    }
    if (retry_next_hop_ && conn_) {
      retry_next_hop_ = false;
      // After a timeout or a 421 the session is already closing; on_closed moves on.
      if (session_->wants() != smtp::Want::kClose) session_->quit();
    }
    if (auto failure = session_->host_failure()) {
      host_error_ = reply_text(failure->reply);
      host_status_ = failure->reply.enhanced;
      last_mta_ = relay_;
    }
  }

  void host_failed(const std::string& reply, const std::string& status) {
    host_error_ = reply;
    host_status_ = status;
    if (conn_) conn_->abort();
  }

  void fail_job(Kind kind, const std::string& reply, const std::string& status,
                const std::string& mta) {
    if (!job_) return;
    std::vector<AttemptOutcome> outcomes;
    for (size_t i : job_->rcpts) {
      AttemptOutcome o;
      o.rcpt = i;
      o.kind = kind;
      o.reply = reply;
      o.status = status;
      o.remote_mta = mta;
      outcomes.push_back(std::move(o));
    }
    impl_.report(*job_, std::move(outcomes));
    job_.reset();
  }

  void done() {
    if (job_) {
      // Should not happen: a job left without outcome goes back to its destination.
      dest_.queue.push_front(std::move(*job_));
      job_.reset();
    }
    impl_.attempt_done(this, dest_);
  }

  Impl& impl_;
  Destination& dest_;
  net::Timer timer_;
  std::optional<Job> job_;
  std::vector<dns::RouteHop> hops_;
  size_t hop_index_ = 0;
  dns::RouteHop hop_;
  uint16_t port_ = 25;
  std::string relay_;
  std::string last_error_;
  std::string last_status_;
  std::string last_mta_;
  std::string host_error_;
  std::string host_status_;
  TlsPolicy tls_policy_ = TlsPolicy::kMay;
  net::Connection* conn_ = nullptr;
  std::unique_ptr<smtp::ClientSession> session_;
  uint32_t messages_ = 0;
  bool finished_ = false;
  bool retry_next_hop_ = false;
  bool clear_retry_ = false;  // STARTTLS failed under "may": try this host again in clear
  bool in_clear_ = false;     // this connection is that retry
};

core::Status DeliveryService::Impl::start() {
  auto stack = DnsStack::create(loop, config);
  if (!stack) return stack.status();
  dns = std::move(*stack);
  scheduler = std::make_unique<queue::Scheduler>(db, writer, retry, clock);
  failure = std::make_unique<FailurePolicy>(config, db, *scheduler, ids, retry);
  auto may = net::TlsContext::client(false, "");
  if (!may) return may.status();
  tls_opportunistic = *may;
  auto verify = net::TlsContext::client(true, config.tls_ca_file);
  if (!verify) return verify.status();
  tls_verify = *verify;
  schedule_tick(0);
  return core::Status::ok();
}

void DeliveryService::Impl::schedule_tick(int64_t delay_ms) {
  if (stopping) return;
  tick.start(static_cast<uint64_t>(std::max<int64_t>(delay_ms, 0)), [this] { pump(); });
}

void DeliveryService::Impl::pump() {
  const int64_t now = clock.now_ms();
  std::erase_if(throttle_tail, [now](const auto& e) { return e.second <= now; });
  const size_t room = static_cast<size_t>(config.max_delivery_connections) * 4;
  if (static_cast<size_t>(in_flight_messages) < room) {
    auto due = scheduler->take_due(now, room - static_cast<size_t>(in_flight_messages));
    if (!due) {
      core::LogLine(core::LogLevel::kError, "schedule-read-failed").remark(due.status().to_string()).emit();
    } else {
      for (auto& r : *due) add_message(std::move(r));
    }
  }
  for (auto it = destinations.begin(); it != destinations.end();) {
    dispatch(it->second);
    // A destination with nothing queued and no connection is forgotten.
    if (it->second.active == 0 && it->second.queue.empty()) {
      it = destinations.erase(it);
    } else {
      ++it;
    }
  }
  // Wake for the next due entry, and at least every second to notice new mail. Entries
  // already due wait for room, which a finishing attempt announces itself (attempt_done), so
  // a backlog is polled gently rather than spun on.
  auto next = scheduler->next_due_ms();
  int64_t delay = 1000;
  if (next && *next) delay = std::clamp<int64_t>(**next - now, kBacklogPollMs, 1000);
  schedule_tick(delay);
}

void DeliveryService::Impl::add_message(queue::MessageRecord record) {
  auto work = std::make_shared<MessageWork>();
  const int64_t now = clock.now_ms();
  work->started_ms = now;
  work->record = std::move(record);
  ++in_flight_messages;
  const auto& env = work->record.envelope;
  std::vector<size_t> local_rcpts;
  std::map<std::string, std::vector<size_t>> by_domain;
  for (size_t i = 0; i < env.recipients.size(); ++i) {
    if (i < work->record.status.size() &&
        work->record.status[i].state != queue::RecipientState::kPending)
      continue;
    const std::string& domain = env.recipients[i].address.domain;
    if (local_recipients.is_local_domain(domain)) {
      local_rcpts.push_back(i);
    } else {
      by_domain[domain].push_back(i);
    }
  }
  if (!local_rcpts.empty()) work->local = local_delivery.plan(work->record, local_rcpts);
  std::unordered_map<std::string, std::vector<size_t>> by_dest;
  for (auto& [domain, rcpts] : by_domain) {
    if (throttled(*work, domain, now)) continue;
    auto& dest = by_dest[config.smarthost.empty() ? domain : "[" + config.smarthost + "]"];
    dest.insert(dest.end(), rcpts.begin(), rcpts.end());
  }
  work->jobs_left = static_cast<int>(by_dest.size());
  if (by_dest.empty()) return finish(work);
  for (auto& [key, rcpts] : by_dest) {
    Destination& d = destinations[key];
    if (d.key.empty()) {
      d.key = key;
      d.domain = key.front() == '[' ? config.smarthost : key;
    }
    d.queue.push_back(Job{work, std::move(rcpts)});
  }
}

// Counts one message started toward `domain`, or, over its limit, leaves the domain's
// recipients without an outcome (no attempt counted, no DSN) and has the message come back
// when the window has room, behind those already waiting. A sliding window rather than a
// token bucket: a receiver that publishes "N per minute" means in any minute, and a bucket
// of N would let 2N through in one (a full bucket, then its refill).
bool DeliveryService::Impl::throttled(MessageWork& work, const std::string& domain, int64_t now) {
  const uint32_t limit = throttle_for(config, domain);
  if (limit == 0) return false;
  auto& limiter = throttles[limit];
  if (!limiter) limiter = std::make_unique<policy::RateLimiter>(limit, kThrottleWindowMs);
  const auto d = limiter->take(domain, now);
  if (d.allowed) return false;
  int64_t when = now + d.retry_after_ms;
  int64_t& tail = throttle_tail[domain];
  if (tail > now) when = std::max(when, tail + kThrottleWindowMs / limit);
  tail = when;
  work.due_by = std::min(work.due_by.value_or(when), when);
  core::LogLine(core::LogLevel::kInfo, "throttled")
      .kv("id", work.record.id).kv("domain", domain)
      .kv("limit", std::to_string(limit) + "/min")
      .kv("retry_in", std::to_string((when - now + 999) / 1000) + "s").emit();
  return true;
}

void DeliveryService::Impl::dispatch(Destination& d) {
  while (!stopping && !d.queue.empty() &&
         d.active < static_cast<int>(config.max_connections_per_destination) &&
         attempts.size() < config.max_delivery_connections) {
    ++d.active;
    attempts.push_back(std::make_unique<Attempt>(*this, d));
    attempts.back()->start();
  }
}

void DeliveryService::Impl::report(const Job& job, std::vector<AttemptOutcome> outcomes) {
  MessageWork& w = *job.work;
  const int64_t now = clock.now_ms();
  for (auto& o : outcomes) {
    log_outcome(w, o, o.remote_mta.empty() ? "none" : o.remote_mta, now).remark(o.reply).emit();
    w.outcomes.push_back(std::move(o));
  }
  if (--w.jobs_left == 0) finish(job.work);
}

core::LogLine DeliveryService::Impl::log_outcome(const MessageWork& w, const AttemptOutcome& o,
                                                 std::string_view relay, int64_t now) const {
  const auto& rcpt = w.record.envelope.recipients.at(o.rcpt);
  const char* status = o.kind == Kind::kDelivered   ? "sent"
                       : o.kind == Kind::kTemporary ? "deferred"
                                                    : "bounced";
  core::LogLine line(o.kind == Kind::kDelivered ? core::LogLevel::kInfo : core::LogLevel::kWarn,
                     "delivery");
  line.kv("id", w.record.id).kv("to", "<" + rcpt.address.str() + ">").kv("relay", relay)
      .kv("delay", std::to_string((now - w.record.envelope.received_at_ms) / 1000) + "s")
      .kv("dsn", o.status.empty() ? "4.0.0" : o.status).kv("status", status);
  return line;
}

void DeliveryService::Impl::finish(const std::shared_ptr<MessageWork>& work) {
  const int64_t now = clock.now_ms();
  std::shared_ptr<LocalDelivery::Appends> appends;
  if (work->local) {
    appends = local_delivery.prepare(work->record, *work->local, now);
    for (auto& o : work->local->outcomes) {
      // Deliveries are logged once committed (settled), with where they went.
      if (o.kind != Kind::kDelivered) log_outcome(*work, o, "local", now).remark(o.reply).emit();
      work->outcomes.push_back(o);
    }
  }
  queue::Writer::Fill fill;
  if (appends) fill = [appends](rocksdb::WriteBatch& b) { appends->stage(b); };
  failure->settle(
      work->record, work->outcomes, now,
      [this, work, appends](core::Status s) {
        if (appends) appends->settled(s);  // on the writer thread, before its next batch
        loop.post([this, work, appends, s] { settled(work, appends, s); });
      },
      std::move(fill), work->due_by);
}

void DeliveryService::Impl::settled(const std::shared_ptr<MessageWork>& work,
                                    const std::shared_ptr<LocalDelivery::Appends>& appends,
                                    const core::Status& s) {
  --in_flight_messages;
  if (!s) {
    core::LogLine(core::LogLevel::kError, "settle-failed")
        .kv("id", work->record.id).remark(s.to_string()).emit();
    return;
  }
  if (!appends) return;
  const int64_t now = clock.now_ms();
  const auto& copies = work->local->copies;
  for (size_t i = 0; i < copies.size() && i < appends->appended().size(); ++i) {
    const mailbox::Appended& a = appends->appended()[i];
    AttemptOutcome o;
    o.rcpt = copies[i].rcpt;
    o.kind = Kind::kDelivered;
    o.status = "2.0.0";
    log_outcome(*work, o, "local", now)
        .kv("user", a.user).kv("mailbox", a.mailbox).kv("uid", int64_t(a.uid))
        .remark("250 2.0.0 delivered to " + a.mailbox).emit();
  }
}

void DeliveryService::Impl::attempt_done(Attempt* a, Destination& d) {
  --d.active;
  for (auto it = attempts.begin(); it != attempts.end(); ++it) {
    if (it->get() != a) continue;
    // Destroy later: this runs inside the attempt's own callback.
    std::shared_ptr<Attempt> doomed(std::move(*it));
    attempts.erase(it);
    loop.post([doomed] {});
    break;
  }
  if (!stopping) schedule_tick(0);
}

DeliveryService::DeliveryService(net::Loop& loop, const Config& config, queue::Db& db,
                                 queue::Writer& writer, core::QueueIdGenerator& ids,
                                 const policy::LocalRecipients& local_recipients,
                                 mailbox::Store& mailboxes)
    : impl_(std::make_unique<Impl>(loop, config, db, writer, ids, local_recipients, mailboxes)) {}

DeliveryService::~DeliveryService() = default;

core::Status DeliveryService::start() { return impl_->start(); }

void DeliveryService::stop() {
  impl_->stopping = true;
  impl_->tick.stop();
  for (auto& a : impl_->attempts) a->abort();
}

void DeliveryService::poke() {
  Impl* impl = impl_.get();
  // One pump per loop iteration however many messages were queued meanwhile.
  if (impl->poke_pending.exchange(true)) return;
  impl->loop.post([impl] {
    impl->poke_pending = false;
    impl->schedule_tick(0);
  });
}

void DeliveryService::flush(const std::optional<std::string>& id) {
  if (!impl_->scheduler) return;
  if (auto n = impl_->scheduler->flush(id); !n)
    core::LogLine(core::LogLevel::kError, "flush-failed").remark(n.status().to_string()).emit();
  impl_->schedule_tick(0);
}

}  // namespace mta
