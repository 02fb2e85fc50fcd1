#include "queue/admin.h"

#include <rocksdb/write_batch.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/queue_id.h"
#include "queue/record.h"
#include "tests/queue/queue_test_util.h"

using queue::ListFilter;
using queue::MessageRecord;
using queue::MessageState;
using queue::RecipientState;
using queue_test::open_db;
using queue_test::TempDir;
using Kind = core::Status::Kind;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

struct Rcpt {
  Rcpt(std::string l, std::string d, RecipientState s = RecipientState::kPending,
       std::string reply = "")
      : local(std::move(l)), domain(std::move(d)), state(s), last_reply(std::move(reply)) {}
  std::string local;
  std::string domain;
  RecipientState state;
  std::string last_reply;
};

// Records written straight into the envelopes family: the reads look at nothing else.
struct Queue {
  std::string put(core::Address sender, std::vector<Rcpt> rcpts, MessageState state,
                  int64_t age_ms) {
    MessageRecord r;
    r.id = ids.next(kNow);
    r.envelope.sender = std::move(sender);
    for (auto& x : rcpts) {
      r.envelope.recipients.push_back({{x.local, x.domain}, 0, ""});
      queue::RecipientStatus s;
      s.state = x.state;
      s.last_reply = x.last_reply;
      s.attempts = x.last_reply.empty() ? 0 : 1;
      r.status.push_back(s);
    }
    r.state = state;
    r.created_ms = kNow - age_ms;
    r.next_attempt_ms = kNow;
    batch.Put(db->cf(queue::Family::kEnvelopes), r.id, queue::encode_record(r))
        .PermitUncheckedError();
    if (batch.Count() >= 10'000) commit();
    return r.id;
  }
  void commit() {
    REQUIRE(db->raw()->Write(rocksdb::WriteOptions(), &batch).ok());
    batch.Clear();
  }

  // The IDs a filter lists, and the page.
  std::vector<std::string> list(const ListFilter& f, queue::ListPage* page = nullptr) {
    commit();
    std::vector<std::string> out;
    auto p = queue::list_messages(*db, f, kNow, [&](const MessageRecord& r) {
      out.push_back(r.id);
      return true;
    });
    INFO(p.status().to_string());
    REQUIRE(p.is_ok());
    if (page) *page = *p;
    return out;
  }

  TempDir tmp;
  std::unique_ptr<queue::Db> db = open_db(tmp.path());
  core::QueueIdGenerator ids;
  rocksdb::WriteBatch batch;
};

ListFilter with(void (*set)(ListFilter&)) {
  ListFilter f;
  set(f);
  return f;
}

}  // namespace

TEST_CASE("unit: parse_state and parse_age read what the admin API is given", "[queue][unit]") {
  CHECK(queue::parse_state("active").value() == MessageState::kActive);
  CHECK(queue::parse_state("Deferred").value() == MessageState::kDeferred);
  CHECK(queue::parse_state("held").value() == MessageState::kHeld);
  CHECK(queue::parse_state("hold").status().kind() == Kind::kInvalid);
  CHECK_THAT(queue::parse_state("").status().message(),
             Catch::Contains("expected active, deferred or held"));

  const auto [text, ms] = GENERATE(table<std::string, int64_t>({
      {"90s", 90'000},
      {"10m", 10 * kMinute},
      {"2h", 2 * kHour},
      {"3d", 3 * kDay},
      {"1w", 7 * kDay},
      {"0m", 0},
      {"10M", 10 * kMinute},
      {"600", -1},
      {"m", -1},
      {"", -1},
      {"-5m", -1},
      {"1.5h", -1},
      {"10 m", -1},
      {"5y", -1},
      {"99999999999999999d", -1},
  }));
  INFO(text);
  const auto age = queue::parse_age(text);
  if (ms < 0) {
    CHECK(age.status().kind() == Kind::kInvalid);
  } else {
    REQUIRE(age.is_ok());
    CHECK(*age == ms);
  }
}

TEST_CASE("unit: list_messages filters on every field, together, and pages", "[queue][unit]") {
  Queue q;
  const std::string m1 =
      q.put({"alice", "example.org"},
            {{"bob", "a.example", RecipientState::kPending, "451 4.7.1 Greylisted, try later"}},
            MessageState::kDeferred, 30 * kMinute);
  const std::string m2 = q.put({}, {{"carol", "b.example"}}, MessageState::kActive, kMinute);
  const std::string m3 = q.put({"Dave", "example.com"},
                               {{"bob", "a.example", RecipientState::kDelivered, "250 2.0.0 Ok"},
                                {"erin", "c.example", RecipientState::kPending,
                                 "421 4.4.2 mx.c.example: Connection timed out"}},
                               MessageState::kHeld, 3 * kHour);
  const std::string m4 =
      q.put({"alice", "example.org"}, {{"zed", "b.example"}}, MessageState::kActive, 2 * kDay);
  using V = std::vector<std::string>;
  using N = std::vector<int>;
  const V all{m1, m2, m3, m4};

  SECTION("each field") {
    const auto [f, expected] = GENERATE(table<ListFilter, N>({
        {ListFilter{}, N{1, 2, 3, 4}},
        {with([](ListFilter& f) { f.sender = "ALICE@"; }), N{1, 4}},
        {with([](ListFilter& f) { f.sender = "dave@example.com"; }), N{3}},
        {with([](ListFilter& f) { f.sender = "<>"; }), N{2}},
        // Pending recipients only: bob's copy of m3 was delivered.
        {with([](ListFilter& f) { f.recipient = "bob@"; }), N{1}},
        {with([](ListFilter& f) { f.recipient = "Erin@C.Example"; }), N{3}},
        {with([](ListFilter& f) { f.domain = "B.EXAMPLE"; }), N{2, 4}},
        {with([](ListFilter& f) { f.domain = "example"; }), N{}},  // exact, not a suffix
        {with([](ListFilter& f) { f.domain = "a.example"; }), N{1}},
        {with([](ListFilter& f) { f.state = MessageState::kActive; }), N{2, 4}},
        {with([](ListFilter& f) { f.state = MessageState::kDeferred; }), N{1}},
        {with([](ListFilter& f) { f.state = MessageState::kHeld; }), N{3}},
        {with([](ListFilter& f) { f.min_age_ms = 30 * kMinute; }), N{1, 3, 4}},
        {with([](ListFilter& f) { f.max_age_ms = 30 * kMinute; }), N{1, 2}},
        {with([](ListFilter& f) {
           f.min_age_ms = kHour;
           f.max_age_ms = kDay;
         }),
         N{3}},
        {with([](ListFilter& f) { f.error = "greylisted"; }), N{1}},
        {with([](ListFilter& f) { f.error = "TIMED OUT"; }), N{3}},
        {with([](ListFilter& f) { f.error = "250 2.0.0"; }), N{}},  // a delivered recipient's
        {with([](ListFilter& f) { f.error = "4."; }), N{1, 3}},
    }));
    // Messages by number: a generator outlives the run that made the IDs (Catch2 reruns the
    // test case for each row).
    V ids;
    for (int n : expected) ids.push_back(all[n - 1]);
    CHECK(q.list(f) == ids);
  }
  SECTION("fields together") {
    ListFilter f;
    f.sender = "alice";
    f.domain = "b.example";
    CHECK(q.list(f) == V{m4});
    f.max_age_ms = kHour;
    CHECK(q.list(f).empty());
    ListFilter g;
    g.recipient = "erin";
    g.error = "timed out";
    g.state = MessageState::kHeld;
    CHECK(q.list(g) == V{m3});
    g.state = MessageState::kActive;
    CHECK(q.list(g).empty());
  }
  SECTION("pages of `limit` after a cursor") {
    ListFilter f;
    f.limit = 2;
    queue::ListPage page;
    CHECK(q.list(f, &page) == V{m1, m2});
    CHECK(page.matched == 2);
    REQUIRE(page.next_after == m2);
    f.after = page.next_after;
    CHECK(q.list(f, &page) == V{m3, m4});
    REQUIRE(page.next_after == m4);
    f.after = page.next_after;
    CHECK(q.list(f, &page).empty());
    CHECK_FALSE(page.next_after.has_value());

    f.after = m1;
    f.state = MessageState::kActive;
    CHECK(q.list(f, &page) == V{m2, m4});
    CHECK(page.scanned == 3);
    f.limit = 10;
    CHECK(q.list(f, &page) == V{m2, m4});
    CHECK_FALSE(page.next_after.has_value());  // the scan reached the end
  }
  SECTION("a visitor that stops ends the page there") {
    q.commit();
    std::vector<std::string> seen;
    auto page = queue::list_messages(*q.db, ListFilter{}, kNow, [&](const MessageRecord& r) {
      seen.push_back(r.id);
      return seen.size() < 3;
    });
    REQUIRE(page.is_ok());
    CHECK(seen == V{m1, m2, m3});
    CHECK(page->next_after == m3);
  }
  SECTION("bad filters and unreadable records") {
    q.commit();
    ListFilter f;
    f.limit = 0;
    CHECK(queue::list_messages(*q.db, f, kNow, [](const MessageRecord&) { return true; })
              .status()
              .kind() == Kind::kInvalid);
    f.limit = 5;
    f.min_age_ms = -1;
    CHECK(queue::list_messages(*q.db, f, kNow, [](const MessageRecord&) { return true; })
              .status()
              .kind() == Kind::kInvalid);
    const std::string bad = q.ids.next(kNow);
    REQUIRE(q.db->raw()
                ->Put(rocksdb::WriteOptions(), q.db->cf(queue::Family::kEnvelopes), bad, "\x09junk")
                .ok());
    queue::ListPage page;
    CHECK(q.list(ListFilter{}, &page) == V{m1, m2, m3, m4});
    CHECK(page.unreadable == V{bad});
  }
}

TEST_CASE("unit: age buckets follow qshape's doubling minutes", "[queue][unit]") {
  const auto [age, bucket] = GENERATE(table<int64_t, size_t>({
      {-kMinute, 0},
      {0, 0},
      {5 * kMinute - 1, 0},
      {5 * kMinute, 1},
      {10 * kMinute, 2},
      {39 * kMinute, 3},
      {40 * kMinute, 4},
      {159 * kMinute, 5},
      {160 * kMinute, 6},
      {320 * kMinute - 1, 6},
      {320 * kMinute, 7},
      {30 * kDay, 7},
  }));
  CHECK(queue::age_bucket(age) == bucket);
  CHECK(queue::age_bucket_labels()[0] == "0-5m");
  CHECK(queue::age_bucket_labels()[7] == "320m+");
}

TEST_CASE("unit: summary counts pending recipients per domain and age", "[queue][unit]") {
  Queue q;
  q.put({"a", "example.org"}, {{"x", "a.example"}, {"y", "a.example"}}, MessageState::kActive,
        kMinute);
  q.put({"a", "example.org"},
        {{"x", "a.example", RecipientState::kDelivered, "250 Ok"}, {"z", "b.example"}},
        MessageState::kDeferred, 7 * kMinute);
  const std::string oldest =
      q.put({}, {{"x", "c.example"}, {"y", "b.example"}}, MessageState::kHeld, 2 * kDay);
  q.put({"a", "example.org"}, {{"w", "a.example"}}, MessageState::kDeferred, 90 * kMinute);
  q.commit();

  auto s = queue::summary(*q.db, kNow);
  REQUIRE(s.is_ok());
  CHECK(s->messages == 4);
  CHECK(s->by_state == std::array<uint64_t, 3>{1, 2, 1});
  CHECK(s->oldest_id == oldest);
  CHECK(s->oldest_age_ms == 2 * kDay);
  REQUIRE(s->domains.size() == 3);
  using B = std::array<uint64_t, queue::kAgeBuckets>;
  CHECK(s->domains[0].domain == "a.example");
  CHECK(s->domains[0].total == 3);
  CHECK(s->domains[0].buckets == B{2, 0, 0, 0, 0, 1, 0, 0});
  CHECK(s->domains[1].domain == "b.example");
  CHECK(s->domains[1].buckets == B{0, 1, 0, 0, 0, 0, 0, 1});
  CHECK(s->domains[2].domain == "c.example");
  CHECK(s->domains[2].buckets == B{0, 0, 0, 0, 0, 0, 0, 1});
  CHECK(s->all.domain == "TOTAL");
  CHECK(s->all.total == 6);
  CHECK(s->all.buckets == B{2, 1, 0, 0, 0, 1, 0, 2});

  Queue empty;
  auto e = queue::summary(*empty.db, kNow);
  REQUIRE(e.is_ok());
  CHECK(e->messages == 0);
  CHECK(e->domains.empty());
  CHECK(e->oldest_id.empty());
}

TEST_CASE("unit: summary and a filtered list of 100,000 messages (times printed)",
          "[queue][unit]") {
  Queue q;
  constexpr int kMessages = 100'000;
  for (int i = 0; i < kMessages; ++i) {
    std::vector<Rcpt> rcpts;
    for (int k = 0; k <= i % 3; ++k)
      rcpts.push_back({"user" + std::to_string(i), "d" + std::to_string((i + k) % 200) + ".example",
                       RecipientState::kPending, i % 2 ? "451 4.7.1 Greylisted" : ""});
    q.put({"sender", "example.org"}, std::move(rcpts),
          i % 10 == 0 ? MessageState::kHeld : MessageState::kDeferred, (i % 500) * kMinute);
  }
  q.commit();
  REQUIRE(q.db->raw()->Flush(rocksdb::FlushOptions(), q.db->cf(queue::Family::kEnvelopes)).ok());

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto s = queue::summary(*q.db, kNow);
  const auto t1 = Clock::now();
  REQUIRE(s.is_ok());
  CHECK(s->messages == kMessages);
  CHECK(s->all.total == 199'999);  // 1, 2, 3 recipients in turn
  CHECK(s->domains.size() == 200);
  CHECK(s->by_state[static_cast<size_t>(MessageState::kHeld)] == kMessages / 10);

  ListFilter f;
  f.domain = "d7.example";
  f.error = "greylisted";
  f.limit = kMessages;
  const auto t2 = Clock::now();
  const size_t n = q.list(f).size();
  const auto t3 = Clock::now();
  CHECK(n > 0);
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::printf("queue admin, %d messages: summary %.1f ms, filtered list %.1f ms (%zu matches)\n",
              kMessages, ms(t1 - t0), ms(t3 - t2), n);
}
