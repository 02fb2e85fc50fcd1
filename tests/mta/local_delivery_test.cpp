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
                            bool quarantine = false, const std::string& body = kBody) {
    queue::NewMessage m;
    m.id = ids.next(kNow);
    m.envelope.sender = std::move(sender);
    for (auto& a : to) m.envelope.recipients.push_back({std::move(a), 0, ""});
    m.envelope.quarantine = quarantine;
    m.envelope.received_at_ms = kNow;
    m.body_chunks = {body.substr(0, body.size() / 2), body.substr(body.size() / 2)};
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
    LocalDelivery::Plan plan = local.plan(recipients, r, all);
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
                          bool quarantine = false, const std::string& body = kBody) {
    LocalDelivery::Plan plan;
    const core::Status s = deliver(take(std::move(to), std::move(sender), quarantine, body), &plan);
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
  LocalDelivery local{store, *db};
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

TEST_CASE("unit: local delivery stores IMAP data of the exact bytes stored", "[mta][unit]") {
  Local t;
  const std::string body =
      "From: =?utf-8?Q?Caf=C3=A9?= <cafe@remote.example>\r\n"
      "To: alice@example.com, \"Team, all\" <team@example.com>\r\n"
      "To: late@example.com\r\n"
      "Cc: Friends: bob@example.com, carol@example.com;\r\n"
      "Subject: =?utf-8?B?w6l0w6k=?= report\r\n"
      "Date: Tue, 14 Nov 2023 23:13:20 +0100\r\n"
      "Message-ID: <m1@remote.example>\r\n"
      "\r\n"
      "hello\r\n";
  std::vector<std::string> heard;
  auto watch = t.store.events().watch("alice", [&](std::string_view m) { heard.emplace_back(m); });
  t.run({addr("alice@example.com"), addr("Team@example.com")}, addr("cafe@remote.example"), false,
        body);
  CHECK(heard.size() == 6);  // alice's first mail provisions her six mailboxes

  const auto stored = t.stored("alice", "INBOX");
  REQUIRE(stored.size() == 2);
  std::vector<mta::mailbox::SearchSummary> summaries;
  REQUIRE(t.store
              .list_index("alice", "INBOX",
                          [&](uint32_t uid, const mta::mailbox::MessageView& m) {
                            REQUIRE(m.has_summary);
                            const auto r = t.store.message("alice", "INBOX", uid).value();
                            summaries.push_back(*r.record.summary);
                            // Each copy's data is what its own bytes give (the copies differ
                            // only in Delivered-To, which none of it shows).
                            const auto data = mta::imap_data_of(stored.at(summaries.size() - 1));
                            CHECK(*r.record.summary == data.summary);
                            CHECK(t.store.imap_structure("alice", "INBOX", uid).value() ==
                                  data.structure);
                            return true;
                          })
              .is_ok());
  REQUIRE(summaries.size() == 2);
  const mta::mailbox::SearchSummary& m = summaries[0];
  CHECK(m.from == "Caf\xc3\xa9 <cafe@remote.example>");
  CHECK(m.to == "alice@example.com, Team, all <team@example.com>, late@example.com");
  CHECK(m.cc == "Friends: bob@example.com, carol@example.com;");
  CHECK(m.bcc.empty());
  CHECK(m.subject == "\xc3\xa9t\xc3\xa9 report");
  CHECK(m.message_id == "<m1@remote.example>");
  CHECK(m.date_ms == 1'700'000'000'000);

  const auto structure = t.store.imap_structure("alice", "INBOX", 1).value().value();
  // ENVELOPE carries raw values (clients decode), the date and subject first.
  CHECK_THAT(structure.envelope,
             Catch::StartsWith("(\"Tue, 14 Nov 2023 23:13:20 +0100\" \"=?utf-8?B?w6l0w6k=?= "
                               "report\" ((\"=?utf-8?Q?Caf=C3=A9?=\" NIL \"cafe\" "
                               "\"remote.example\"))"));
  CHECK_THAT(structure.body, Catch::StartsWith("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\")"));
  CHECK(structure.body_structure.size() > structure.body.size());
  CHECK(structure.body_structure.substr(0, structure.body.size() - 1) ==
        structure.body.substr(0, structure.body.size() - 1));

  SECTION("the watchers hear of each later delivery once it is committed") {
    heard.clear();
    t.run({addr("alice@example.com")}, addr("sender@remote.example"), true);
    CHECK(heard == std::vector<std::string>{"Junk"});
  }
}

TEST_CASE("unit: quarantined mail brings back a Junk the user deleted", "[mta][unit]") {
  Local t;
  t.run({addr("alice@example.com")}, addr("sender@remote.example"));
  rocksdb::WriteBatch batch;
  mta::mailbox::Changes changes;
  REQUIRE(t.store.stage_delete(batch, changes, "alice", "Junk").is_ok());
  REQUIRE(t.db->raw()->Write(queue::synced_writes(), &batch).ok());
  t.store.notify_committed(changes, core::Status::ok());
  CHECK(t.store.mailbox("alice", "Junk").status().kind() == core::Status::Kind::kNotFound);
  t.run({addr("alice@example.com")}, addr("spoof@remote.example"), true);
  CHECK(t.stored("alice", "Junk").size() == 1);
  CHECK(t.store.mailbox("alice", "Junk").value().status.special_use ==
        mta::mailbox::SpecialUse::kJunk);
}

TEST_CASE("unit: a message without the fields IMAP reads", "[mta][unit]") {
  const auto d = mta::imap_data_of("Date: yesterday\r\n\r\nno header to speak of\r\n");
  CHECK(d.summary == mta::mailbox::SearchSummary{});
  CHECK_THAT(d.structure.envelope, Catch::StartsWith("(\"yesterday\" NIL NIL NIL NIL NIL"));
  const auto empty = mta::imap_data_of("");
  CHECK(empty.summary.date_ms == 0);
  CHECK_FALSE(empty.structure.body_structure.empty());
}

TEST_CASE("unit: RFC 5322 dates, also obsolete and broken ones", "[mta][unit]") {
  static constexpr int64_t kT = 1'700'000'000'000;  // Tue, 14 Nov 2023 22:13:20 +0000
  const auto [text, expected] = GENERATE(table<std::string, std::optional<int64_t>>({
      {"Tue, 14 Nov 2023 22:13:20 +0000", kT},
      {"14 Nov 2023 22:13:20 GMT", kT},
      {"Tue, 14 Nov 2023 23:13:20 +0100", kT},
      {"Tue, 14 Nov 2023 17:13:20 -0500 (EST)", kT},
      {"Tue, 14 Nov 2023 17:13:20 EST", kT},
      {"Tue, 14 Nov 2023 14:13:20 PST", kT},
      {"tue,14 nov 2023 22:13:20 ut", kT},
      {"Tue, 14 Nov 23 22:13:20 +0000", kT},
      {"Tue, 14 Nov 123 22:13:20 +0000", kT},
      {"Tue,\t14 Nov 2023 22:13:20 Z", kT},
      {"Tue, 14 Nov 2023 22:13:20 A", kT},  // military: taken as UTC (RFC 5322 §4.3)
      {"Tue, 14 Nov 2023 22:13:20", kT},    // no zone: UTC
      {"Tue Nov 14 22:13:20 2023", kT},     // asctime
      {"Wed, 14 November 2023 22:13:20 +0000", kT},
      {"Tue, 14 Nov 2023 22:13 +0000", kT - 20'000},
      {"Tue, 14 Nov 2023 22:13:60 +0000", kT + 39'000},  // a leap second, held at :59
      {"Thu, 1 Jan 1970 00:00:00 +0000", 0},
      {"Fri, 31 Dec 1965 23:00:00 -0100", -126'230'400'000},
      {"Thu, 29 Feb 2024 12:00:00 +0000", 1'709'208'000'000},
      {"", std::nullopt},
      {"yesterday", std::nullopt},
      {"14 Nov 2023", std::nullopt},
      {"29 Feb 2023 12:00:00 +0000", std::nullopt},
      {"14 Nov 2023 24:00:00 +0000", std::nullopt},
      {"14 Nov 2023 12:61:00 +0000", std::nullopt},
      {"14 Foo 2023 12:00:00 +0000", std::nullopt},
      {"2023-11-14T22:13:20Z", std::nullopt},
      {"14 Nov 2023 12:00:00 12:00:00", std::nullopt},
      {"14 Nov 2023 12:00:00 +0099", std::nullopt},
  }));
  INFO(text);
  CHECK(mta::parse_rfc5322_date(text) == expected);
}
