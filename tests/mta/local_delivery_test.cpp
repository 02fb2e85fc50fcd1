#include "mta/local_delivery.h"

#include <catch2/catch.hpp>
#include <future>
#include <memory>

#include "core/queue_id.h"
#include "mta/failure_policy.h"
#include "queue/scheduler.h"
#include "queue/store.h"
#include "tests/queue/queue_test_util.h"

using mta::AttemptOutcome;
using mta::LocalDelivery;
using Kind = AttemptOutcome::Kind;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;

// `openssl passwd -6 -salt saltsalt secret`
constexpr const char* kHash =
    "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq."
    "H91p5hVO1";

const std::string kBody = "Subject: hi\r\n\r\nhello\r\n";

// Real RocksDB, writer, scheduler, failure policy, store and local delivery, as the delivery
// service wires them, for one message at a time.
struct Local {
  Local() {
    config.hostname = "mx.example.com";
    std::vector<policy::User> u = {{"alice", kHash, {"alice@example.com"}},
                                   {"carol", kHash, {"carol@example.com"}},
                                   {"bob", kHash, {"bob@example.com"}, 50}};
    users = policy::UserDb::create(std::move(u)).value();
    recipients = policy::LocalRecipients::create({"example.com"}, users,
                                                 {{"team@example.com", {"alice", "carol"}},
                                                  {"full@example.com", {"alice", "bob"}},
                                                  {"pair@example.com", {"alice", "alice"}}},
                                                 "+", "")
                     .value();
    writer.start();
  }
  ~Local() { writer.stop(); }

  // Queues a message from `sender` to `to` and leases it, as take_due() hands it over.
  queue::MessageRecord take(std::vector<core::Address> to, core::Address sender,
                            bool quarantine = false) {
    queue::NewMessage m;
    m.id = ids.next(kNow);
    m.envelope.sender = std::move(sender);
    for (auto& a : to) m.envelope.recipients.push_back({std::move(a), 0, ""});
    m.envelope.quarantine = quarantine;
    m.envelope.received_at_ms = kNow;
    m.body_chunks = {kBody};
    m.now_ms = kNow;
    const std::string id = m.id;
    std::promise<core::Status> p;
    writer.enqueue(std::move(m), [&](core::Status s) { p.set_value(s); });
    REQUIRE(p.get_future().get().is_ok());
    auto due = scheduler.take_due(clock.now_ms(), 100);
    REQUIRE(due.is_ok());
    for (auto& r : *due)
      if (r.id == id) return r;
    FAIL("message not due");
    return {};
  }

  // Plans, prepares and settles every recipient locally; the settle's status.
  core::Status deliver(const queue::MessageRecord& r, LocalDelivery::Plan* out = nullptr,
                       std::optional<int64_t> due_by = std::nullopt) {
    std::vector<size_t> all;
    for (size_t i = 0; i < r.envelope.recipients.size(); ++i) all.push_back(i);
    LocalDelivery::Plan plan = local.plan(r, all);
    auto appends = local.prepare(r, plan, clock.now_ms());
    queue::Writer::Fill fill;
    if (appends) fill = [appends](rocksdb::WriteBatch& b) { appends->stage(b); };
    std::promise<core::Status> p;
    failure.settle(
        r, plan.outcomes, clock.now_ms(),
        [&](core::Status s) {
          if (appends) appends->settled(s);
          p.set_value(s);
        },
        std::move(fill), due_by);
    if (out) *out = plan;
    return p.get_future().get();
  }

  // A message from `sender` to `to`, taken and delivered; the plan it was delivered by.
  LocalDelivery::Plan run(std::vector<core::Address> to, core::Address sender,
                          bool quarantine = false) {
    LocalDelivery::Plan plan;
    const core::Status s = deliver(take(std::move(to), std::move(sender), quarantine), &plan);
    INFO(s.to_string());
    REQUIRE(s.is_ok());
    return plan;
  }

  std::vector<std::string> stored(const std::string& user, const std::string& mailbox) {
    std::vector<std::string> out;
    if (store.mailbox(user, mailbox).status().kind() == core::Status::Kind::kNotFound) return out;
    REQUIRE(store
                .list_messages(user, mailbox,
                               [&](const mta::mailbox::MessageEntry& m) {
                                 std::string bytes;
                                 REQUIRE(store
                                             .read_message(user, mailbox, m.uid,
                                                           [&](std::string_view c) {
                                                             bytes += c;
                                                             return true;
                                                           })
                                             .is_ok());
                                 out.push_back(bytes);
                                 return true;
                               })
                .is_ok());
    return out;
  }

  // Every queued message (DSNs included).
  std::vector<queue::MessageRecord> queued() {
    std::vector<queue::MessageRecord> out;
    REQUIRE(queue::list(*db, [&](const queue::MessageRecord& r) {
              out.push_back(r);
              return true;
            }).is_ok());
    return out;
  }

  queue_test::TempDir dir;
  std::unique_ptr<queue::Db> db = queue_test::open_db(dir.path());
  core::FakeClock clock{kNow};
  queue::RetryPolicy retry;
  queue::Writer writer{*db};
  queue::Scheduler scheduler{*db, writer, retry, clock};
  core::QueueIdGenerator ids;
  mta::Config config;
  mta::FailurePolicy failure{config, *db, scheduler, ids, retry};
  policy::UserDb users;
  policy::LocalRecipients recipients;
  mta::mailbox::Store store{*db, clock};
  LocalDelivery local{recipients, store, *db};
};

core::Address addr(const char* s) { return core::parse_mailbox(s, true).value(); }

}  // namespace

TEST_CASE("unit: local delivery stores each copy and settles in one batch", "[mta][unit]") {
  Local t;
  const LocalDelivery::Plan plan = t.run({addr("alice+news@example.com"), addr("Team@example.com")},
                                         addr("sender@remote.example"));
  CHECK(plan.mailbox == "INBOX");
  REQUIRE(plan.outcomes.size() == 2);
  for (const auto& o : plan.outcomes) {
    CHECK(o.kind == Kind::kDelivered);
    CHECK(o.local);
  }
  const std::string from = "Return-Path: <sender@remote.example>\r\n";
  CHECK(t.stored("alice", "INBOX") ==
        std::vector<std::string>{from + "Delivered-To: alice+news@example.com\r\n" + kBody,
                                 from + "Delivered-To: Team@example.com\r\n" + kBody});
  CHECK(t.stored("carol", "INBOX") ==
        std::vector<std::string>{from + "Delivered-To: Team@example.com\r\n" + kBody});
  CHECK(t.stored("alice", "Junk").empty());
  CHECK(t.queued().empty());  // every recipient delivered: gone from the queue in that batch
}

TEST_CASE("unit: a recipient with a user over quota waits whole", "[mta][unit]") {
  Local t;
  const LocalDelivery::Plan plan =
      t.run({addr("full@example.com"), addr("bob@example.com")}, addr("sender@remote.example"));
  REQUIRE(plan.outcomes.size() == 2);
  CHECK(plan.outcomes[0].kind == Kind::kTemporary);
  CHECK(plan.outcomes[0].reply == "452 4.2.2 <full@example.com>: mailbox full");
  CHECK(plan.outcomes[1].status == "4.2.2");
  CHECK(plan.copies.empty());
  CHECK(t.stored("alice", "INBOX").empty());  // alice has room, but the recipient is one unit
  const auto left = t.queued();
  REQUIRE(left.size() == 1);  // deferred on the retry schedule, no DSN
  CHECK(left[0].state == queue::MessageState::kDeferred);
  CHECK(left[0].status.at(0).attempts == 1);
  CHECK(left[0].status.at(0).last_reply == "452 4.2.2 <full@example.com>: mailbox full");
}

TEST_CASE("unit: local delivery files a message to each user once", "[mta][unit]") {
  Local t;
  const LocalDelivery::Plan plan = t.run({addr("pair@example.com")}, addr("sender@remote.example"));
  CHECK(plan.copies.size() == 1);
  CHECK(t.stored("alice", "INBOX").size() == 1);
  CHECK(t.queued().empty());  // delivered: the message left the queue in that batch
}

TEST_CASE("unit: a quarantined message is filed into Junk", "[mta][unit]") {
  Local t;
  const LocalDelivery::Plan plan =
      t.run({addr("alice@example.com")}, addr("spoof@remote.example"), true);
  CHECK(plan.mailbox == "Junk");
  const auto junk = t.stored("alice", "Junk");
  REQUIRE(junk.size() == 1);
  CHECK(junk[0] ==
        "Return-Path: <spoof@remote.example>\r\nDelivered-To: alice@example.com\r\n" + kBody);
  CHECK(t.stored("alice", "INBOX").empty());
  CHECK(t.store.mailbox("alice", "Junk").value().status.special_use ==
        mta::mailbox::SpecialUse::kJunk);
  CHECK(t.queued().empty());
}

TEST_CASE("unit: an unknown local recipient fails with 5.1.1 and a DSN", "[mta][unit]") {
  Local t;
  const LocalDelivery::Plan plan =
      t.run({addr("gone@example.com"), addr("alice@example.com")}, addr("sender@remote.example"));
  CHECK(plan.outcomes[0].kind == Kind::kPermanent);
  CHECK(plan.outcomes[0].reply == "550 5.1.1 <gone@example.com>: no such user here");
  CHECK(t.stored("alice", "INBOX").size() == 1);
  const auto left = t.queued();
  REQUIRE(left.size() == 1);  // only the DSN, committed with the failure and the delivery
  CHECK(left[0].envelope.listener == "dsn");
  CHECK(left[0].envelope.recipients.at(0).address == addr("sender@remote.example"));
  CHECK(left[0].envelope.sender.empty());
}

TEST_CASE("unit: when the settle is not written, nothing is delivered", "[mta][unit]") {
  Local t;
  const auto r = t.take({addr("alice@example.com")}, addr("sender@remote.example"));
  t.writer.stop();  // the writer answers kTemporary and runs no fill
  CHECK(t.deliver(r).kind() == core::Status::Kind::kTemporary);
  CHECK(t.stored("alice", "INBOX").empty());
  CHECK(t.store.mailboxes("alice").value().empty());
  REQUIRE(t.queued().size() == 1);
  CHECK(t.queued()[0].status.at(0).state == queue::RecipientState::kPending);
}

TEST_CASE("unit: a throttled message waits without an attempt or a DSN", "[mta][unit]") {
  Local t;
  const auto r = t.take({addr("someone@remote.example"), addr("other@elsewhere.example")},
                        addr("sender@remote.example"));
  auto settle = [&](std::vector<AttemptOutcome> outcomes, int64_t due_by) {
    std::promise<core::Status> p;
    t.failure.settle(
        r, std::move(outcomes), kNow, [&](core::Status s) { p.set_value(s); }, {}, due_by);
    REQUIRE(p.get_future().get().is_ok());
    const auto left = t.queued();
    REQUIRE(left.size() == 1);  // no DSN
    return left[0];
  };
  AttemptOutcome deferred;  // the other recipient, tried and deferred by this attempt
  deferred.rcpt = 1;
  deferred.kind = Kind::kTemporary;
  deferred.reply = "451 4.7.1 later";
  SECTION("nothing tried: due when the window has room, still active") {
    // No outcome for the throttled recipients, only the time they may go again.
    const auto left = settle({}, kNow + 20'000);
    CHECK(left.state == queue::MessageState::kActive);
    CHECK(left.next_attempt_ms == kNow + 20'000);
    for (const auto& st : left.status) {
      CHECK(st.attempts == 0);
      CHECK(st.state == queue::RecipientState::kPending);
    }
  }
  SECTION("another recipient deferred: whichever comes first") {
    const auto soon = settle({deferred}, kNow + 20'000);
    CHECK(soon.state == queue::MessageState::kDeferred);
    CHECK(soon.next_attempt_ms == kNow + 20'000);
    CHECK(soon.status.at(0).attempts == 0);
    CHECK(soon.status.at(1).attempts == 1);
  }
  SECTION("another recipient deferred, the throttle later: the backoff") {
    const auto left = settle({deferred}, kNow + 3'600'000);
    CHECK(left.next_attempt_ms >= kNow + 54'000);  // the first backoff step, 1 min +-10 %
    CHECK(left.next_attempt_ms <= kNow + 66'000);
  }
}
