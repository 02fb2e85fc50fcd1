// ImapSearchCache over a real store: what sessions share, and when a list is read anew.
#include "mta/imap_search_cache.h"

#include <catch2/catch.hpp>
#include <rocksdb/write_batch.h>

#include <string>
#include <vector>

#include "core/clock.h"
#include "mta/local_delivery.h"
#include "mta/mailbox/store.h"
#include "tests/queue/queue_test_util.h"

namespace {

using mta::access::ImapSearchCursor;
using mta::access::ImapSearchFields;
using mta::access::ImapSearchSnapshot;

struct Fixture {
  queue_test::TempDir dir;
  std::unique_ptr<queue::Db> db = queue_test::open_db(dir.path());
  core::FakeClock clock{1'700'000'000'000};
  mta::mailbox::Store store{*db, clock};

  template <typename Stage>
  void write(Stage stage) {
    rocksdb::WriteBatch batch;
    mta::mailbox::Changes changes;
    REQUIRE(stage(batch, changes));
    REQUIRE((*db).raw()->Write(queue::synced_writes(), &batch).ok());
  }

  // Appends one message from "sender<n>" with subject "subject <n>" per n, with or without
  // the search fields stored at delivery.
  void deliver(const std::string& user, const std::string& box, std::vector<int> ns,
               bool with_fields = true) {
    std::vector<std::string> bytes;
    for (int n : ns)
      bytes.push_back("From: sender" + std::to_string(n) + "@example.com\r\nSubject: subject " +
                      std::to_string(n) + "\r\n\r\nbody\r\n");
    std::vector<mta::mailbox::Append> appends;
    for (const auto& b : bytes) {
      mta::mailbox::Append a;
      a.user = user;
      a.mailbox = box;
      a.parts = {b};
      if (with_fields) a.imap = mta::imap_data_of(b);
      appends.push_back(std::move(a));
    }
    write([&](auto& batch, auto& changes) {
      return store.stage_appends(batch, appends, changes).is_ok();
    });
  }
};

std::vector<std::string> subjects(const ImapSearchSnapshot& s) {
  std::vector<std::string> out;
  for (const auto& block : s.blocks)
    for (const auto& f : *block) out.emplace_back(f.get(ImapSearchFields::kSubject));
  return out;
}

}  // namespace

TEST_CASE("unit: search fields keep each field apart in one string", "[mta][unit]") {
  const ImapSearchFields f(7, {"a", "", "ccc", "", "subject", "<id@x>"}, 42);
  CHECK(f.uid() == 7);
  CHECK(f.get(ImapSearchFields::kFrom) == "a");
  CHECK(f.get(ImapSearchFields::kTo).empty());
  CHECK(f.get(ImapSearchFields::kCc) == "ccc");
  CHECK(f.get(ImapSearchFields::kSubject) == "subject");
  CHECK(f.get(ImapSearchFields::kMessageId) == "<id@x>");
  CHECK(f.sent_date_ms() == 42);
}

TEST_CASE("unit: a search cursor walks blocks by UID", "[mta][unit]") {
  ImapSearchSnapshot s;
  auto block = [](std::vector<uint32_t> uids) {
    auto b = std::make_shared<mta::access::ImapSearchBlock>();
    for (uint32_t u : uids) b->emplace_back(u, std::array<std::string_view, 6>{}, int64_t(u));
    return b;
  };
  s.blocks = {block({2, 4}), block({5, 9})};
  ImapSearchCursor c(s);
  CHECK(c.seek(1) == nullptr);
  CHECK(c.seek(2)->uid() == 2);
  CHECK(c.seek(3) == nullptr);
  CHECK(c.seek(5)->uid() == 5);
  CHECK(c.seek(9)->sent_date_ms() == 9);
  CHECK(c.seek(10) == nullptr);
}

TEST_CASE("unit: the search cache is shared, extended by new mail, and reset on recreate",
          "[mta][unit]") {
  Fixture fx;
  mta::ImapSearchCache cache;
  fx.deliver("alice", "INBOX", {1, 2, 3});
  auto first = cache.get(fx.store, "alice", "INBOX");
  REQUIRE(first);
  CHECK(subjects(*first) == std::vector<std::string>{"subject 1", "subject 2", "subject 3"});

  SECTION("a second reader (another session) gets the same blocks, not a new read") {
    auto again = cache.get(fx.store, "ALICE", "INBOX");
    REQUIRE(again);
    REQUIRE(again->blocks.size() == first->blocks.size());
    CHECK(again->blocks.front().get() == first->blocks.front().get());
  }
  SECTION("new mail extends the list; a snapshot already handed out does not change") {
    fx.deliver("alice", "INBOX", {4});
    fx.deliver("alice", "INBOX", {5}, false);  // no stored fields: read from the bytes
    auto later = cache.get(fx.store, "alice", "INBOX");
    REQUIRE(later);
    CHECK(subjects(*later) == std::vector<std::string>{"subject 1", "subject 2", "subject 3",
                                                       "subject 4", "subject 5"});
    CHECK(subjects(*first).size() == 3);
    ImapSearchCursor c(*later);
    CHECK(c.seek(5)->get(ImapSearchFields::kFrom) == "sender5@example.com");
  }
  SECTION("a recreated mailbox (new UIDVALIDITY) is read anew") {
    fx.write([&](auto& batch, auto& changes) {
      return fx.store.stage_create(batch, changes, "alice", "Work").is_ok();
    });
    fx.deliver("alice", "Work", {10});
    REQUIRE(cache.get(fx.store, "alice", "Work"));
    fx.write([&](auto& batch, auto& changes) {
      return fx.store.stage_delete(batch, changes, "alice", "Work").is_ok();
    });
    fx.clock.advance_ms(2000);
    fx.write([&](auto& batch, auto& changes) {
      return fx.store.stage_create(batch, changes, "alice", "Work").is_ok();
    });
    fx.deliver("alice", "Work", {11});
    auto recreated = cache.get(fx.store, "alice", "Work");
    REQUIRE(recreated);
    CHECK(subjects(*recreated) == std::vector<std::string>{"subject 11"});
  }
  SECTION("a mailbox that is gone is an error, not an empty list") {
    CHECK(cache.get(fx.store, "alice", "Nope").status().kind() == core::Status::Kind::kNotFound);
  }
}

TEST_CASE("unit: the search cache drops the least recently searched mailboxes first",
          "[mta][unit]") {
  Fixture fx;
  mta::ImapSearchCache cache(4);
  fx.deliver("a", "INBOX", {1, 2});
  fx.deliver("b", "INBOX", {3, 4});
  fx.deliver("c", "INBOX", {5, 6});
  auto a1 = cache.get(fx.store, "a", "INBOX");
  auto b1 = cache.get(fx.store, "b", "INBOX");
  REQUIRE((a1 && b1));
  // a is the least recently used: reading c (2 more, 6 > 4) drops it, and b stays.
  REQUIRE(cache.get(fx.store, "c", "INBOX"));
  auto b2 = cache.get(fx.store, "b", "INBOX");
  auto a2 = cache.get(fx.store, "a", "INBOX");
  REQUIRE((a2 && b2));
  CHECK(b2->blocks.front().get() == b1->blocks.front().get());
  CHECK(a2->blocks.front().get() != a1->blocks.front().get());
  CHECK(subjects(*a2) == std::vector<std::string>{"subject 1", "subject 2"});
}
