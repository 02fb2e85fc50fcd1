#include "mta/delivery.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "core/log.h"
#include "dns/cache.h"
#include "dns/mx.h"
#include "dns/post.h"
#include "mta/dns_stack.h"
#include "mta/failure_policy.h"
#include "mta/local_delivery.h"
#include "mta/metrics.h"
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
  bool settling = false;                     // its outcome is with the writer
  bool abandoned = false;                    // given up by a drain: late outcomes are dropped
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

// Calls a request's `done` exactly once: a request dropped unanswered (the posted work never
// ran because the service or its loop went away) is answered from the destructor.
template <typename R>
class Answer {
 public:
  explicit Answer(std::function<void(R)> fn) : fn_(std::move(fn)) {}
  Answer(const Answer&) = delete;
  Answer& operator=(const Answer&) = delete;
  ~Answer() {
    if (fn_) fn_(R(core::Status::temporary("delivery is shutting down")));
  }
  void operator()(R r) {
    if (auto fn = std::exchange(fn_, nullptr)) fn(std::move(r));
  }

 private:
  std::function<void(R)> fn_;
};

template <typename R>
std::shared_ptr<Answer<R>> make_answer(std::function<void(R)> fn) {
  return std::make_shared<Answer<R>>(std::move(fn));
}

// The one line an administrator's change logs.
core::LogLine admin_line(std::string_view event, std::string_view id) {
  core::LogLine line(core::LogLevel::kInfo, event);
  line.kv("id", id).kv("by", "admin");
  return line;
}

// "550 5.0.0 <reason>": the reason goes into a DSN and a log line, so no line breaks.
std::string bounce_reply(std::string_view reason) {
  constexpr size_t kMaxReason = 200;
  std::string text(reason.empty() ? std::string_view("bounced by the administrator")
                                  : reason.substr(0, kMaxReason));
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return "550 5.0.0 " + text;
}

core::LogLine log_outcome(const queue::MessageRecord& r, const AttemptOutcome& o,
                          std::string_view relay, int64_t now) {
  const auto& rcpt = r.envelope.recipients.at(o.rcpt);
  const char* status = o.kind == Kind::kDelivered   ? "sent"
                       : o.kind == Kind::kTemporary ? "deferred"
                                                    : "bounced";
  core::LogLine line(o.kind == Kind::kDelivered ? core::LogLevel::kInfo : core::LogLevel::kWarn,
                     "delivery");
  line.kv("id", r.id)
      .kv("to", "<" + rcpt.address.str() + ">")
      .kv("relay", relay)
      .kv("delay", std::to_string((now - r.envelope.received_at_ms) / 1000) + "s")
      .kv("dsn", o.status.empty() ? "4.0.0" : o.status)
      .kv("status", status);
  return line;
}

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
       LocalRecipientsSource local_recipients, mailbox::Store& mailboxes,
       SuppressionSettings suppression)
      : loop(l),
        config(c),
        db(d),
        writer(w),
        ids(i),
        tick(l),
        drain_timer(l),
        rng(std::random_device{}()),
        local_recipients(std::move(local_recipients)),
        local_delivery(mailboxes, d) {
    retry.backoff_ms.clear();
    for (uint32_t s : c.retry_s) retry.backoff_ms.push_back(int64_t(s) * 1000);
    retry.max_lifetime_ms = int64_t(c.max_lifetime_s) * 1000;
    retry.delay_warning_ms = int64_t(c.delay_warning_s) * 1000;
    // Made here rather than in start(), so that administration works with delivery off.
    scheduler = std::make_unique<queue::Scheduler>(db, writer, retry, clock);
    failure = std::make_unique<FailurePolicy>(config, db, *scheduler, ids, retry, suppression);
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
  net::Timer drain_timer;
  std::mt19937 rng;
  // Which domains are ours and who is there, as the runtime in force says (reloads change it).
  LocalRecipientsSource local_recipients;
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
  // Messages taken and not yet settled, by ID; their count is read from other threads.
  std::unordered_map<std::string, std::shared_ptr<MessageWork>> works;
  std::atomic<int> in_flight_messages{0};
  bool started = false;  // start() succeeded: the timer may take work
  bool stopping = false;
  bool draining = false;
  int64_t drain_deadline_ms = 0;
  size_t drained_finished = 0;  // settles committed since the drain began
  std::vector<std::function<void(DrainReport)>> drain_waiters;
  std::atomic<bool> poke_pending{false};
  std::weak_ptr<Impl> self;  // for work posted from other threads

  core::Status start();
  // Runs fn(*this) on the loop, unless the service is gone by then.
  void post(std::function<void(Impl&)> fn);
  void poke();
  void schedule_tick(int64_t delay_ms);
  void pump();
  void add_message(queue::MessageRecord record);
  bool throttled(MessageWork& work, const std::string& domain, int64_t now);
  void dispatch(Destination& d);
  void report(const Job& job, std::vector<AttemptOutcome> outcomes);
  void finish(const std::shared_ptr<MessageWork>& work);
  void settled(const std::shared_ptr<MessageWork>& work,
               const std::shared_ptr<LocalDelivery::Appends>& appends, const core::Status& s,
               const queue::SettleResult& result);
  void attempt_done(Attempt* a, Destination& d);
  metrics::DeliveryClass class_of(const core::Address& rcpt) const;
  void count(const queue::MessageRecord& r, const std::vector<AttemptOutcome>& outcomes,
             const queue::SettleResult& result, int64_t now) const;
  void flush(const queue::FlushScope& scope, std::string_view by,
             std::function<void(core::Result<size_t>)> done);
  void bounce(const std::string& id, const std::string& reply,
              std::shared_ptr<Answer<core::Result<size_t>>> answer);
  void drain(int64_t grace_ms, std::function<void(DrainReport)> done);
  void check_drain();
  void end_drain();
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
    // Stopped while connecting: the lease may be gone, so not one command.
    if (impl_.stopping) return conn_->abort();
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
        o.at_rcpt = r.stage == smtp::Stage::kRcpt;
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
  auto may = net::TlsContext::client(false, "");
  if (!may) return may.status();
  tls_opportunistic = *may;
  auto verify = net::TlsContext::client(true, config.tls_ca_file);
  if (!verify) return verify.status();
  tls_verify = *verify;
  started = true;
  schedule_tick(0);
  return core::Status::ok();
}

void DeliveryService::Impl::post(std::function<void(Impl&)> fn) {
  loop.post([weak = self, fn = std::move(fn)] {
    if (auto impl = weak.lock()) fn(*impl);
  });
}

void DeliveryService::Impl::poke() {
  // One pump per loop iteration however many messages were queued meanwhile.
  if (poke_pending.exchange(true)) return;
  post([](Impl& impl) {
    impl.poke_pending = false;
    impl.schedule_tick(0);
  });
}

void DeliveryService::Impl::schedule_tick(int64_t delay_ms) {
  if (!started || stopping) return;
  tick.start(static_cast<uint64_t>(std::max<int64_t>(delay_ms, 0)), [this] { pump(); });
}

void DeliveryService::Impl::pump() {
  const int64_t now = clock.now_ms();
  std::erase_if(throttle_tail, [now](const auto& e) { return e.second <= now; });
  const size_t room = static_cast<size_t>(config.max_delivery_connections) * 4;
  const auto taken = static_cast<size_t>(in_flight_messages.load());
  if (!draining && taken < room) {
    auto due = scheduler->take_due(now, room - taken);
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
  works[work->record.id] = work;
  ++in_flight_messages;
  const auto& env = work->record.envelope;
  std::vector<size_t> local_rcpts;
  std::map<std::string, std::vector<size_t>> by_domain;
  const std::shared_ptr<const policy::LocalRecipients> locals = local_recipients();
  for (size_t i = 0; i < env.recipients.size(); ++i) {
    if (i < work->record.status.size() &&
        work->record.status[i].state != queue::RecipientState::kPending)
      continue;
    const std::string& domain = env.recipients[i].address.domain;
    if (locals->is_local_domain(domain)) {
      local_rcpts.push_back(i);
    } else {
      by_domain[domain].push_back(i);
    }
  }
  if (!local_rcpts.empty()) work->local = local_delivery.plan(*locals, work->record, local_rcpts);
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
    log_outcome(w.record, o, o.remote_mta.empty() ? "none" : o.remote_mta, now)
        .remark(o.reply)
        .emit();
    w.outcomes.push_back(std::move(o));
  }
  if (--w.jobs_left == 0) finish(job.work);
}

void DeliveryService::Impl::finish(const std::shared_ptr<MessageWork>& work) {
  if (work->abandoned) return;
  work->settling = true;
  const int64_t now = clock.now_ms();
  std::shared_ptr<LocalDelivery::Appends> appends;
  if (work->local) {
    appends = local_delivery.prepare(work->record, *work->local, now);
    for (auto& o : work->local->outcomes) {
      // Deliveries are logged once committed (settled), with where they went.
      if (o.kind != Kind::kDelivered)
        log_outcome(work->record, o, "local", now).remark(o.reply).emit();
      work->outcomes.push_back(o);
    }
  }
  queue::Writer::Fill fill;
  if (appends) fill = [appends](rocksdb::WriteBatch& b) { appends->stage(b); };
  failure->settle(
      work->record, work->outcomes, now,
      FailurePolicy::SettledDone([this, work, appends](core::Status s,
                                                       const queue::SettleResult& result) {
        if (appends) appends->settled(s);  // on the writer thread, before its next batch
        post([work, appends, s, result](Impl& impl) { impl.settled(work, appends, s, result); });
      }),
      std::move(fill), work->due_by);
}

void DeliveryService::Impl::settled(const std::shared_ptr<MessageWork>& work,
                                    const std::shared_ptr<LocalDelivery::Appends>& appends,
                                    const core::Status& s, const queue::SettleResult& result) {
  --in_flight_messages;
  works.erase(work->record.id);
  if (draining) ++drained_finished;
  check_drain();
  if (!s) {
    core::LogLine(core::LogLevel::kError, "settle-failed")
        .kv("id", work->record.id).remark(s.to_string()).emit();
    return;
  }
  const int64_t now = clock.now_ms();
  count(work->record, work->outcomes, result, now);
  if (!appends) return;
  const auto& copies = work->local->copies;
  for (size_t i = 0; i < copies.size() && i < appends->appended().size(); ++i) {
    const mailbox::Appended& a = appends->appended()[i];
    AttemptOutcome o;
    o.rcpt = copies[i].rcpt;
    o.kind = Kind::kDelivered;
    o.status = "2.0.0";
    log_outcome(work->record, o, "local", now)
        .kv("user", a.user)
        .kv("mailbox", a.mailbox)
        .kv("uid", int64_t(a.uid))
        .remark("250 2.0.0 delivered to " + a.mailbox)
        .emit();
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

metrics::DeliveryClass DeliveryService::Impl::class_of(const core::Address& rcpt) const {
  if (local_recipients()->is_local_domain(rcpt.domain)) return metrics::DeliveryClass::kLocal;
  return config.smarthost.empty() ? metrics::DeliveryClass::kRemote
                                  : metrics::DeliveryClass::kSmarthost;
}

// Counts a committed settle: each outcome once, as the queue recorded it (a temporary failure
// past the lifetime is a bounce), plus recipients that expired without an outcome this time.
void DeliveryService::Impl::count(const queue::MessageRecord& r,
                                  const std::vector<AttemptOutcome>& outcomes,
                                  const queue::SettleResult& result, int64_t now) const {
  std::vector<bool> failed(r.envelope.recipients.size());
  for (size_t i : result.newly_failed)
    if (i < failed.size()) failed[i] = true;
  for (const AttemptOutcome& o : outcomes) {
    if (o.rcpt >= failed.size()) continue;
    const auto c = class_of(r.envelope.recipients[o.rcpt].address);
    if (o.kind == Kind::kDelivered) {
      metrics::delivered(c).inc();
      metrics::delivery_latency(c).observe(double(std::max<int64_t>(0, now - r.created_ms)) /
                                           1000.0);
    } else if (failed[o.rcpt]) {
      metrics::bounced(c).inc();
      failed[o.rcpt] = false;
    } else {
      metrics::deferred(c).inc();
    }
  }
  for (size_t i = 0; i < failed.size(); ++i)
    if (failed[i]) metrics::bounced(class_of(r.envelope.recipients[i].address)).inc();
}

void DeliveryService::Impl::flush(const queue::FlushScope& scope, std::string_view by,
                                  std::function<void(core::Result<size_t>)> done) {
  scheduler->flush(scope, [this, scope, by = std::string(by),
                           done = std::move(done)](core::Result<size_t> moved) {
    if (moved) {
      core::LogLine line(core::LogLevel::kInfo, "flush");
      line.kv("id", scope.id.value_or("all"));
      if (scope.domain) line.kv("domain", *scope.domain);
      line.kv("by", by).kv("moved", static_cast<int64_t>(*moved)).emit();
      if (*moved > 0) poke();
    }
    done(std::move(moved));
  });
}

void DeliveryService::Impl::bounce(const std::string& id, const std::string& reply,
                                   std::shared_ptr<Answer<core::Result<size_t>>> answer) {
  auto taken = scheduler->take(id);
  if (!taken) return (*answer)(taken.status());
  auto record = std::make_shared<const queue::MessageRecord>(std::move(taken).value());
  std::vector<AttemptOutcome> outcomes;
  for (size_t i = 0; i < record->status.size(); ++i) {
    if (record->status[i].state != queue::RecipientState::kPending) continue;
    AttemptOutcome o;
    o.rcpt = i;
    o.kind = Kind::kPermanent;
    o.reply = reply;
    o.status = "5.0.0";
    outcomes.push_back(std::move(o));
  }
  const int64_t now = clock.now_ms();
  failure->settle(
      *record, outcomes, now,
      FailurePolicy::SettledDone(
          [this, record, outcomes, now, answer](core::Status s, const queue::SettleResult& result) {
            if (!s) return (*answer)(std::move(s));
            for (const AttemptOutcome& o : outcomes)
              log_outcome(*record, o, "none", now).remark(o.reply).emit();
            count(*record, outcomes, result, now);
            core::LogLine line = admin_line("bounce", record->id);
            line.kv("recipients", static_cast<int64_t>(outcomes.size()));
            if (!outcomes.empty()) line.remark(outcomes.front().reply);
            line.emit();
            (*answer)(outcomes.size());
          }));
}

void DeliveryService::Impl::drain(int64_t grace_ms, std::function<void(DrainReport)> done) {
  if (stopping) return done(DrainReport{});
  grace_ms = std::max<int64_t>(grace_ms, 0);
  const int64_t deadline = clock.now_ms() + grace_ms;
  if (!draining || deadline < drain_deadline_ms) {
    drain_deadline_ms = deadline;
    drain_timer.start(static_cast<uint64_t>(grace_ms), [this] { end_drain(); });
  }
  if (!draining) {
    draining = true;
    core::LogLine(core::LogLevel::kInfo, "draining")
        .kv("in_flight", int64_t(in_flight_messages.load()))
        .kv("grace", std::to_string(grace_ms) + "ms")
        .emit();
  }
  drain_waiters.push_back(std::move(done));
  check_drain();
}

void DeliveryService::Impl::check_drain() {
  if (draining && !drain_waiters.empty() && in_flight_messages.load() == 0) end_drain();
}

void DeliveryService::Impl::end_drain() {
  drain_timer.stop();
  stopping = true;
  tick.stop();
  DrainReport report{drained_finished, 0};
  // Leases end only for messages whose outcome is not with the writer: a settle in flight
  // still commits, and ends its own lease.
  for (auto it = works.begin(); it != works.end();) {
    MessageWork& w = *it->second;
    if (w.settling) {
      ++it;
      continue;
    }
    w.abandoned = true;
    scheduler->release(it->first);
    --in_flight_messages;
    ++report.released;
    it = works.erase(it);
  }
  for (auto& [key, d] : destinations) d.queue.clear();
  for (auto& a : attempts) a->abort();
  core::LogLine(core::LogLevel::kInfo, "drained")
      .kv("finished", int64_t(report.finished))
      .kv("released", int64_t(report.released))
      .emit();
  for (auto& done : std::exchange(drain_waiters, {})) done(report);
}

DeliveryService::DeliveryService(net::Loop& loop, const Config& config, queue::Db& db,
                                 queue::Writer& writer, core::QueueIdGenerator& ids,
                                 LocalRecipientsSource local_recipients,
                                 mailbox::Store& mailboxes, SuppressionSettings suppression)
    : impl_(std::make_shared<Impl>(loop, config, db, writer, ids, std::move(local_recipients),
                                   mailboxes, suppression)) {
  impl_->self = impl_;
}

DeliveryService::~DeliveryService() = default;

core::Status DeliveryService::start() { return impl_->start(); }

void DeliveryService::stop() {
  if (!impl_->drain_waiters.empty()) impl_->end_drain();
  impl_->stopping = true;
  impl_->tick.stop();
  for (auto& a : impl_->attempts) a->abort();
}

void DeliveryService::poke() {
  impl_->poke();
}

void DeliveryService::flush(const std::optional<std::string>& id) {
  impl_->post([id](Impl& impl) {
    impl.flush({id, std::nullopt}, "cli", [](core::Result<size_t> moved) {
      if (!moved)
        core::LogLine(core::LogLevel::kError, "flush-failed")
            .remark(moved.status().to_string())
            .emit();
    });
  });
}

void DeliveryService::hold(std::string id, std::function<void(core::Result<bool>)> done) {
  impl_->post([id = std::move(id), answer = make_answer(std::move(done))](Impl& impl) {
    impl.scheduler->hold(id, [id, answer](core::Result<bool> held) {
      if (held && *held) admin_line("hold", id).emit();
      (*answer)(std::move(held));
    });
  });
}

void DeliveryService::release(std::string id, std::function<void(core::Result<bool>)> done) {
  impl_->post([id = std::move(id), answer = make_answer(std::move(done))](Impl& impl) {
    impl.scheduler->release_held(id, [&impl, id, answer](core::Result<bool> released) {
      if (released && *released) {
        admin_line("release", id).emit();
        impl.poke();
      }
      (*answer)(std::move(released));
    });
  });
}

void DeliveryService::remove(std::string id, std::function<void(core::Status)> done) {
  impl_->post([id = std::move(id), answer = make_answer(std::move(done))](Impl& impl) {
    impl.scheduler->remove(id, [id, answer](core::Status s) {
      if (s) admin_line("delete", id).emit();
      (*answer)(std::move(s));
    });
  });
}

void DeliveryService::bounce(std::string id, std::string reason,
                             std::function<void(core::Result<size_t>)> done) {
  impl_->post(
      [id = std::move(id), reply = bounce_reply(reason),
       answer = make_answer(std::move(done))](Impl& impl) { impl.bounce(id, reply, answer); });
}

void DeliveryService::retry_now(queue::FlushScope scope,
                                std::function<void(core::Result<size_t>)> done) {
  impl_->post([scope = std::move(scope), answer = make_answer(std::move(done))](Impl& impl) {
    impl.flush(scope, "admin",
               [answer](core::Result<size_t> moved) { (*answer)(std::move(moved)); });
  });
}

void DeliveryService::drain(int64_t grace_ms, std::function<void(DrainReport)> done) {
  impl_->post([grace_ms, done = std::move(done)](Impl& impl) { impl.drain(grace_ms, done); });
}

size_t DeliveryService::in_flight() const {
  return static_cast<size_t>(std::max(0, impl_->in_flight_messages.load()));
}

}  // namespace mta
