// The failure policy's suppression hook, end to end: a real RocksDB queue, the writer, the
// delivery loop on its own thread, and an SMTP sink on 127.0.0.1 as the smarthost whose RCPT
// replies depend on the recipient.


#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/address.h"
#include "core/log.h"
#include "core/queue_id.h"
#include "mta/config.h"
#include "mta/delivery.h"
#include "mta/failure_policy.h"
#include "mta/mailbox/store.h"
#include "mta/net/loop.h"
#include "policy/local_recipients.h"
#include "policy/users.h"
#include "queue/store.h"
#include "queue/suppression.h"
#include "tests/mta/smtp_sink.h"
#include "tests/queue/queue_test_util.h"

using namespace std::chrono_literals;
using Kind = mta::AttemptOutcome::Kind;

namespace {

constexpr int64_t kThirtyDaysMs = int64_t{30} * 24 * 3600 * 1000;

// RCPT replies by the recipient's local part (any case): gone* 550 5.1.1, policy* 550 5.7.1,
// plain* 550 without an enhanced code, busy* 451 4.2.1, else 250.
std::string rcpt_reply(const std::string& line) {
  const size_t open = line.find('<');
  const size_t close = line.find('>', open);
  const std::string addr = line.substr(open + 1, close - open - 1);
  const std::string local = core::to_lower_ascii(addr.substr(0, addr.find('@')));
  const auto is = [&](const char* prefix) { return local.rfind(prefix, 0) == 0; };
  if (is("gone")) return "550 5.1.1 <" + addr + ">: no such user";
  if (is("policy")) return "550 5.7.1 <" + addr + ">: blocked by policy";
  if (is("plain")) return "550 no such user";
  if (is("busy")) return "451 4.2.1 mailbox busy";
  return "250 2.1.5 ok";
}

// The queue, the writer and the delivery service on its own loop, the sink as smarthost,
// "local.test" as our own domain with one user.
struct Node {
  explicit Node(mta::SuppressionSettings settings = {}) {
    config.hostname = "mx.local.test";
    config.smarthost = "127.0.0.1";
    sink.rcpt_reply = rcpt_reply;
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
    service = std::make_unique<mta::DeliveryService>(
        loop, config, *db, writer, ids,
        [l = std::make_shared<const policy::LocalRecipients>(locals)] { return l; }, mailboxes,
        settings);
    std::promise<core::Status> started;
    loop.post([&] { started.set_value(service->start()); });
    const core::Status s = started.get_future().get();
    INFO(s.to_string());
    REQUIRE(s.is_ok());
  }
  ~Node() {
    loop.post([this] {
      service->stop();
      loop.stop();
    });
    thread.join();
    writer.stop();
    service.reset();
  }

  // Queues a message from `sender`, logged in as `auth_user`, due at `due_ms`.
  std::string enqueue(core::Address sender, std::string auth_user, std::vector<core::Address> to,
                      int64_t due_ms) {
    queue::NewMessage m;
    m.id = ids.next(due_ms);
    m.envelope.sender = std::move(sender);
    m.envelope.auth_user = std::move(auth_user);
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
  std::string send_now(std::string auth_user, std::vector<core::Address> to) {
    return enqueue({"sender", "example.org"}, std::move(auth_user), std::move(to), clock.now_ms());
  }
  bool gone(const std::string& id) {
    return queue::get(*db, id).status().kind() == core::Status::Kind::kNotFound;
  }
  std::optional<queue::Suppression> suppressed(std::string_view scope, std::string_view address) {
    auto f = queue::SuppressionList(*db).find(scope, address, clock.now_ms());
    INFO(f.status().to_string());
    REQUIRE(f.is_ok());
    return *f;
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

// Log lines written while it lives.
class LogCapture {
 public:
  LogCapture() : path_(dir_.path() + "/log") {
    file_ = std::fopen(path_.c_str(), "w+");
    REQUIRE(file_ != nullptr);
    core::set_log_fd(fileno(file_));
  }
  ~LogCapture() {
    core::set_log_fd(2);
    std::fclose(file_);
  }
  std::string text() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  queue_test::TempDir dir_;
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace

TEST_CASE("unit: only an address refused by its server or missing here is a hard bounce",
          "[mta][unit]") {
  struct Row {
    Kind kind;
    const char* status;
    bool from_remote;
    bool at_rcpt;
    bool local;
    bool hard;
  };
  const Row row = GENERATE(values<Row>({
      {Kind::kPermanent, "5.1.1", true, true, false, true},
      {Kind::kPermanent, "5.1.0", true, true, false, true},
      {Kind::kPermanent, "5.1.2", true, true, false, true},
      {Kind::kPermanent, "5.1.3", true, true, false, true},
      {Kind::kPermanent, "5.1.6", true, true, false, true},
      {Kind::kPermanent, "5.1.10", true, true, false, true},
      {Kind::kPermanent, "5.2.1", true, true, false, true},
      {Kind::kPermanent, "5.1.1", false, false, true, true},    // local: no such user here
      {Kind::kPermanent, "5.1.1", true, false, false, false},   // at MAIL or DATA
      {Kind::kPermanent, "5.1.1", false, true, false, false},   // made by our client
      {Kind::kPermanent, "5.1.2", false, false, false, false},  // DNS: no such domain
      {Kind::kPermanent, "5.0.0", false, false, false, false},  // administrator's bounce
      {Kind::kPermanent, "4.4.7", false, false, false, false},  // lifetime over
      {Kind::kPermanent, "5.0.0", true, true, false, false},    // no enhanced code given
      {Kind::kPermanent, "5.7.1", true, true, false, false},    // policy, not the address
      {Kind::kPermanent, "5.1.7", true, true, false, false},    // the sender's address
      {Kind::kPermanent, "5.2.2", true, true, false, false},    // mailbox full
      {Kind::kTemporary, "4.1.1", true, true, false, false},
      {Kind::kTemporary, "5.1.1", true, true, false, false},
      {Kind::kDelivered, "2.1.5", true, true, false, false},
  }));
  mta::AttemptOutcome o;
  o.kind = row.kind;
  o.status = row.status;
  o.from_remote = row.from_remote;
  o.at_rcpt = row.at_rcpt;
  o.local = row.local;
  INFO(row.status << " remote=" << row.from_remote << " rcpt=" << row.at_rcpt
                  << " local=" << row.local);
  CHECK(mta::is_hard_bounce(o) == row.hard);
}

TEST_CASE("unit: a hard bounce suppresses the recipient in the sender's scope", "[mta][unit]") {
  SECTION("550 5.1.1 at RCPT: suppressed; 4xx, 5.7.1 and a bare 550 are not") {
    LogCapture log;
    Node n;
    const int64_t before = n.clock.now_ms();
    const std::string id = n.send_now("app", {{"Gone.Mixed", "remote.test"},
                                              {"busy", "remote.test"},
                                              {"policy", "remote.test"},
                                              {"plain", "remote.test"}});
    REQUIRE(tests::eventually([&] {
      auto r = queue::get(*n.db, id);
      return r.is_ok() && r->state == queue::MessageState::kDeferred;
    }));
    const auto s = n.suppressed("app", "gone.mixed@remote.test");
    REQUIRE(s.has_value());
    CHECK(s->scope == "app");
    CHECK(s->address == "gone.mixed@remote.test");
    CHECK(s->reason == "550 5.1.1 <Gone.Mixed@remote.test>: no such user");
    CHECK(s->source == "bounce");
    CHECK(s->added_ms >= before);
    CHECK(s->expires_ms == s->added_ms + kThirtyDaysMs);
    CHECK_FALSE(n.suppressed("", "gone.mixed@remote.test").has_value());
    for (const char* other : {"busy@remote.test", "policy@remote.test", "plain@remote.test"})
      CHECK_FALSE(n.suppressed("app", other).has_value());
    const auto r = queue::get(*n.db, id).value();
    CHECK(r.status[0].state == queue::RecipientState::kFailed);
    CHECK(r.status[1].state == queue::RecipientState::kPending);
    CHECK(r.status[2].state == queue::RecipientState::kFailed);
    CHECK(r.status[3].state == queue::RecipientState::kFailed);
    CHECK_THAT(log.text(), Catch::Contains("suppressed id=" + id +
                                           " scope=app to=<gone.mixed@remote.test> reason=\"550 "
                                           "5.1.1 <Gone.Mixed@remote.test>: no such user\" "
                                           "(expires "));
    CHECK_THAT(log.text(), !Catch::Contains("to=<policy@remote.test> reason"));
  }
  SECTION("relay mail (no AUTH) goes to the server-wide list, local misses too") {
    Node n;
    const std::string id = n.send_now(
        "", {{"gone", "remote.test"}, {"nobody", "local.test"}, {"alice", "local.test"}});
    REQUIRE(tests::eventually([&] { return n.gone(id); }));
    REQUIRE(n.suppressed("", "gone@remote.test").has_value());
    const auto local = n.suppressed("", "nobody@local.test");
    REQUIRE(local.has_value());
    CHECK(local->reason == "550 5.1.1 <nobody@local.test>: no such user here");
    CHECK_FALSE(n.suppressed("", "alice@local.test").has_value());
    CHECK_FALSE(n.suppressed("app", "gone@remote.test").has_value());
  }
  SECTION("settings: off, or entries that never expire") {
    const bool enabled = GENERATE(false, true);
    Node n(mta::SuppressionSettings{enabled, 0});
    const std::string id = n.send_now("user1", {{"gone", "remote.test"}});
    REQUIRE(tests::eventually([&] { return n.gone(id); }));
    const auto s = n.suppressed("user1", "gone@remote.test");
    CHECK(s.has_value() == enabled);
    if (s) CHECK(s->expires_ms == 0);
  }
  SECTION("not for the null sender (a DSN nobody listed)") {
    Node n;
    const std::string id = n.enqueue({}, "", {{"gone", "remote.test"}}, n.clock.now_ms());
    REQUIRE(tests::eventually([&] { return n.gone(id); }));
    CHECK_FALSE(n.suppressed("", "gone@remote.test").has_value());
  }
  SECTION("not for an administrator's bounce") {
    Node n;
    const std::string id = n.enqueue({"sender", "example.org"}, "app", {{"gone", "remote.test"}},
                                     n.clock.now_ms() + 3'600'000);
    std::promise<core::Result<size_t>> bounced;
    n.service->bounce(id, "", [&](core::Result<size_t> r) { bounced.set_value(std::move(r)); });
    auto f = bounced.get_future();
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    REQUIRE(f.get().value() == 1);
    CHECK(n.gone(id));
    CHECK_FALSE(n.suppressed("app", "gone@remote.test").has_value());
  }
}
