// DeliveryService administration and drain, end to end: a real RocksDB queue, the writer,
// the delivery loop on its own thread, and a small SMTP sink on 127.0.0.1 as the smarthost.


#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/queue_id.h"
#include "mta/config.h"
#include "mta/delivery.h"
#include "mta/mailbox/store.h"
#include "mta/metrics.h"
#include "mta/net/loop.h"
#include "policy/local_recipients.h"
#include "policy/users.h"
#include "queue/store.h"
#include "tests/mta/smtp_sink.h"
#include "tests/queue/queue_test_util.h"

using namespace std::chrono_literals;
using Kind = core::Status::Kind;
using mta::metrics::DeliveryClass;

namespace {

// The queue, the writer, a delivery loop on its own thread and the service on it, wired as
// `porter serve` wires them, with the sink as smarthost.
struct Node {
  Node() {
    config.hostname = "mx.local.test";
    config.smarthost = "127.0.0.1";
    config.smarthost_port = sink.port;
    config.smarthost_tls = mta::TlsPolicy::kNone;
    config.dns_servers = {"127.0.0.1:9"};
    config.connect_timeout_s = 5;
    config.command_timeout_s = 30;
    config.retry_s = {3600};
    // `openssl passwd -6 -salt saltsalt secret`
    auto u = policy::UserDb::create(
        {{"alice",
          "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN."
          "Pq.H91p5hVO1",
          {"alice@local.test"}}});
    INFO(u.status().to_string());
    REQUIRE(u.is_ok());
    users = std::move(u).value();
    auto l = policy::LocalRecipients::create({"local.test"}, users, {}, "+", "");
    INFO(l.status().to_string());
    REQUIRE(l.is_ok());
    locals = std::move(l).value();
    writer.start();
    thread = std::thread([this] { loop.run(); });
    service =
        std::make_unique<mta::DeliveryService>(
            loop, config, *db, writer, ids,
            [l = std::make_shared<const policy::LocalRecipients>(locals)] { return l; }, mailboxes);
    const core::Status s = call<core::Status>([&] { return service->start(); });
    INFO(s.to_string());
    REQUIRE(s.is_ok());
  }
  ~Node() {
    loop.post([this] {
      service->stop();
      loop.stop();
    });
    thread.join();
    writer.stop();    // answers what is pending while the service is still there
    service.reset();  // its timers go before the loop does
  }

  template <typename R, typename F>
  R call(F fn) {
    std::promise<R> p;
    loop.post([&] { p.set_value(fn()); });
    return p.get_future().get();
  }
  // Runs an asynchronous service request and waits for its answer.
  template <typename R, typename Start>
  R await(Start start) {
    auto p = std::make_shared<std::promise<R>>();
    start([p](R r) { p->set_value(std::move(r)); });
    auto f = p->get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
  }

  // Queues a message from `sender` to `to`, first due at `due_ms`.
  std::string enqueue(core::Address sender, std::vector<core::Address> to, int64_t due_ms) {
    queue::NewMessage m;
    m.id = ids.next(due_ms);
    m.envelope.sender = std::move(sender);
    for (auto& a : to) m.envelope.recipients.push_back({std::move(a), 0, ""});
    m.envelope.received_at_ms = due_ms;
    m.body_chunks = {"Subject: test\r\n\r\nhello\r\n"};
    m.now_ms = due_ms;
    const std::string id = m.id;
    std::promise<core::Status> p;
    writer.enqueue(std::move(m), [&](core::Status s) { p.set_value(s); });
    REQUIRE(p.get_future().get().is_ok());
    service->poke();
    return id;
  }
  std::string later(core::Address to) {
    return enqueue({"sender", "example.org"}, {std::move(to)}, clock.now_ms() + 3'600'000);
  }
  bool exists(const std::string& id) {
    return queue::get(*db, id).status().kind() != Kind::kNotFound;
  }
  std::vector<queue::MessageRecord> queued() {
    std::vector<queue::MessageRecord> out;
    REQUIRE(queue::list(*db, [&](const queue::MessageRecord& r) {
              out.push_back(r);
              return true;
            }).is_ok());
    return out;
  }

  tests::SmtpSink sink;
  queue_test::TempDir dir;
  std::unique_ptr<queue::Db> db = queue_test::open_db(dir.path());
  core::SystemClock clock;
  core::QueueIdGenerator ids;
  mta::Config config;
  policy::UserDb users;
  policy::LocalRecipients locals;
  queue::Writer writer{*db};
  mta::mailbox::Store mailboxes{*db, clock};
  net::Loop loop;
  std::unique_ptr<mta::DeliveryService> service;
  std::thread thread;
};

const core::Address kBob{"bob", "remote.test"};

}  // namespace

TEST_CASE("unit: held mail waits for release, then goes", "[mta][unit]") {
  Node n;
  const std::string id = n.later(kBob);
  const auto hold = [&](const std::string& x) {
    return n.await<core::Result<bool>>([&](auto cb) { n.service->hold(x, cb); });
  };
  const auto release = [&](const std::string& x) {
    return n.await<core::Result<bool>>([&](auto cb) { n.service->release(x, cb); });
  };
  REQUIRE(hold(id).value());
  CHECK_FALSE(hold(id).value());
  CHECK(queue::get(*n.db, id)->state == queue::MessageState::kHeld);
  CHECK(hold(n.ids.next(0)).status().kind() == Kind::kNotFound);
  const auto retry = n.await<core::Result<size_t>>([&](auto cb) {
    n.service->retry_now({id, std::nullopt}, cb);
  });
  CHECK(retry.status().kind() == Kind::kInvalid);  // release it first

  const uint64_t delivered = mta::metrics::delivered(DeliveryClass::kSmarthost).value();
  const uint64_t latencies = mta::metrics::delivery_latency(DeliveryClass::kSmarthost).count();
  REQUIRE(release(id).value());
  REQUIRE(tests::eventually([&] { return !n.exists(id); }));
  CHECK(n.sink.messages().size() == 1);
  CHECK(mta::metrics::delivered(DeliveryClass::kSmarthost).value() == delivered + 1);
  CHECK(mta::metrics::delivery_latency(DeliveryClass::kSmarthost).count() == latencies + 1);
  CHECK(release(id).status().kind() == Kind::kNotFound);
}

TEST_CASE("unit: remove deletes a message without notice", "[mta][unit]") {
  Node n;
  const std::string id = n.later(kBob);
  const std::string keep = n.later(kBob);
  auto remove = [&](const std::string& x) {
    return n.await<core::Status>([&](auto cb) { n.service->remove(x, cb); });
  };
  REQUIRE(remove(id).is_ok());
  CHECK_FALSE(n.exists(id));
  CHECK(queue::read_body(*n.db, id).status().kind() == Kind::kNotFound);
  CHECK(n.queued().size() == 1);
  CHECK(remove(id).kind() == Kind::kNotFound);
  CHECK(n.exists(keep));
}

TEST_CASE("unit: bounce fails the pending recipients and tells the sender", "[mta][unit]") {
  Node n;
  n.sink.stall = true;  // a DSN queued by the bounce stays in the queue to be looked at
  auto bounce = [&](const std::string& x, std::string reason) {
    return n.await<core::Result<size_t>>([&](auto cb) { n.service->bounce(x, reason, cb); });
  };
  const uint64_t bounced = mta::metrics::bounced(DeliveryClass::kSmarthost).value();

  SECTION("a DSN to the sender, in the batch that deletes the message, held mail included") {
    const std::string id = n.enqueue({"sender", "example.org"}, {kBob, {"carol", "remote.test"}},
                                     n.clock.now_ms() + 3'600'000);
    const bool held = GENERATE(false, true);
    if (held)
      REQUIRE(n.await<core::Result<bool>>([&](auto cb) { n.service->hold(id, cb); }).value());
    const auto r = bounce(id, held ? "" : "spam\r\nBcc: x@evil.test");
    REQUIRE(r.is_ok());
    CHECK(*r == 2);
    CHECK_FALSE(n.exists(id));
    const auto q = n.queued();
    REQUIRE(q.size() == 1);
    const queue::MessageRecord& dsn = q[0];
    CHECK(dsn.envelope.sender.empty());
    REQUIRE(dsn.envelope.recipients.size() == 1);
    CHECK(dsn.envelope.recipients[0].address == core::Address{"sender", "example.org"});
    const std::string body = queue::read_body(*n.db, dsn.id).value();
    CHECK_THAT(body,
               Catch::Contains(held ? "550 5.0.0 bounced by the administrator" : "550 5.0.0 spam"));
    CHECK_THAT(body, !Catch::Contains("\r\nBcc:"));  // the reason cannot add a header
    CHECK_THAT(body, Catch::Contains("bob@remote.test"));
    CHECK(mta::metrics::bounced(DeliveryClass::kSmarthost).value() == bounced + 2);
  }
  SECTION("no DSN for the null sender") {
    const std::string id = n.enqueue({}, {kBob}, n.clock.now_ms() + 3'600'000);
    REQUIRE(bounce(id, "").value() == 1);
    CHECK(n.queued().empty());
  }
  SECTION("unknown") {
    CHECK(bounce(n.ids.next(0), "").status().kind() == Kind::kNotFound);
  }
}

TEST_CASE("unit: a message being delivered is refused, not changed", "[mta][unit]") {
  Node n;
  n.sink.stall = true;
  const std::string id = n.enqueue({"sender", "example.org"}, {kBob}, n.clock.now_ms());
  REQUIRE(tests::eventually([&] { return n.service->in_flight() == 1; }));
  const auto held = n.await<core::Result<bool>>([&](auto cb) { n.service->hold(id, cb); });
  CHECK(held.status().kind() == Kind::kTemporary);
  CHECK_THAT(held.status().message(), Catch::Contains("being delivered now; try again"));
  CHECK(n.await<core::Status>([&](auto cb) { n.service->remove(id, cb); }).kind() ==
        Kind::kTemporary);
  CHECK(n.await<core::Result<size_t>>([&](auto cb) { n.service->bounce(id, "", cb); })
            .status()
            .kind() == Kind::kTemporary);
  n.sink.stall = false;
  REQUIRE(tests::eventually([&] { return !n.exists(id); }));
  CHECK(n.sink.messages().size() == 1);
}

TEST_CASE("unit: retry_now for a domain moves only its deferred mail", "[mta][unit]") {
  Node n;
  n.sink.rcpt_code = 451;
  const uint64_t deferred = mta::metrics::deferred(DeliveryClass::kSmarthost).value();
  const std::string a = n.enqueue({"s", "example.org"}, {{"x", "a.test"}}, n.clock.now_ms());
  const std::string b = n.enqueue({"s", "example.org"}, {{"x", "b.test"}}, n.clock.now_ms());
  REQUIRE(tests::eventually([&] {
    const auto q = n.queued();
    return q.size() == 2 && q[0].state == queue::MessageState::kDeferred &&
           q[1].state == queue::MessageState::kDeferred && n.service->in_flight() == 0;
  }));
  CHECK(mta::metrics::deferred(DeliveryClass::kSmarthost).value() == deferred + 2);
  n.sink.rcpt_code = 250;
  const auto moved = n.await<core::Result<size_t>>([&](auto cb) {
    n.service->retry_now({std::nullopt, "A.TEST"}, cb);
  });
  REQUIRE(moved.is_ok());
  CHECK(*moved == 1);
  REQUIRE(tests::eventually([&] { return !n.exists(a); }));
  CHECK(n.exists(b));
  CHECK(n.sink.messages().size() == 1);
}

TEST_CASE("unit: drain lets attempts finish, or gives them up at the deadline", "[mta][unit]") {
  Node n;
  using Report = mta::DeliveryService::DrainReport;
  auto drain = [&](int64_t grace_ms) {
    return n.await<Report>([&](auto cb) { n.service->drain(grace_ms, cb); });
  };

  SECTION("an attempt that ends within the grace time commits") {
    n.sink.greet_delay_ms = 300;
    const std::string id = n.enqueue({"s", "example.org"}, {kBob}, n.clock.now_ms());
    REQUIRE(tests::eventually([&] { return n.service->in_flight() == 1; }));
    const Report r = drain(10'000);
    CHECK(r.finished == 1);
    CHECK(r.released == 0);
    CHECK_FALSE(n.exists(id));
    CHECK(n.sink.messages().size() == 1);
    CHECK(n.service->in_flight() == 0);
  }
  SECTION("an attempt still running at the deadline is given up, its message kept") {
    n.sink.stall = true;
    const std::string id = n.enqueue({"s", "example.org"}, {kBob}, n.clock.now_ms());
    REQUIRE(tests::eventually([&] { return n.service->in_flight() == 1; }));
    const auto before = queue::get(*n.db, id).value();
    const auto t0 = std::chrono::steady_clock::now();
    const Report r = drain(200);
    CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
    CHECK(r.finished == 0);
    CHECK(r.released == 1);
    CHECK(n.service->in_flight() == 0);
    CHECK(queue::get(*n.db, id).value() == before);  // no attempt counted
    // Nothing new is taken once drained.
    const std::string late = n.enqueue({"s", "example.org"}, {kBob}, n.clock.now_ms());
    std::this_thread::sleep_for(200ms);
    CHECK(n.service->in_flight() == 0);
    CHECK(n.exists(late));
    n.sink.stall = false;
    CHECK(drain(0).released == 0);  // after the end: answered at once
  }
  SECTION("nothing in flight: done at once") {
    const Report r = drain(60'000);
    CHECK(r.finished == 0);
    CHECK(r.released == 0);
  }
}
