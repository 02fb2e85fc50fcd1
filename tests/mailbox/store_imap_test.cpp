// The store's operations for IMAP: flags, expunge, copy and move, mailbox management,
// subscriptions, listings and change notification.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>

#include "mta/mailbox/store.h"
#include "tests/queue/queue_test_util.h"

using namespace mta::mailbox;
using Kind = core::Status::Kind;

namespace {

core::Status status_of(const core::Status& s) { return s; }
template <typename T>
core::Status status_of(const core::Result<T>& r) {
  return r.status();
}

struct Listed {
  uint32_t uid = 0;
  Flags flags;
  uint64_t modseq = 0;
  bool operator==(const Listed&) const = default;
};

ImapData imap_data(std::string subject) {
  ImapData d;
  d.summary.from = "Al <al@example.com>";
  d.summary.subject = std::move(subject);
  d.summary.date_ms = 1'600'000'000'000;
  d.structure = {"(env)", "(bodystructure)", "(body)"};
  return d;
}

struct Fixture {
  // Stages with `stage(batch, changes)` in a batch of its own and writes it if staging
  // succeeded, then reports to the store as a writer request's `done` would.
  template <typename F>
  auto write(F stage) {
    rocksdb::WriteBatch batch;
    Changes changes;
    auto r = stage(batch, changes);
    const core::Status s = status_of(r);
    if (s) REQUIRE(db->raw()->Write(queue::synced_writes(), &batch).ok());
    if (!s) CHECK(batch.Count() == 0);  // a refusal leaves nothing behind
    store.notify_committed(changes, s);
    last = changes;
    return r;
  }

  Appended append(std::string_view box, std::string_view bytes, Flags flags = {},
                  std::optional<ImapData> imap = std::nullopt, std::string user = "alice") {
    Append a;
    a.user = std::move(user);
    a.mailbox = std::string(box);
    a.parts = {bytes};
    a.flags = std::move(flags);
    a.internal_date_ms = 1'700'000'000'000;
    a.imap = std::move(imap);
    auto r = write([&](auto& b, auto& c) { return store.stage_appends(b, {a}, c); });
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    return r.value().at(0);
  }

  std::vector<Listed> listed(std::string_view box, std::string user = "alice") {
    std::vector<Listed> out;
    auto r = store.list_index(user, box, [&](uint32_t uid, const MessageView& m) {
      out.push_back({uid, {m.system_flags, {m.keywords.begin(), m.keywords.end()}}, m.modseq});
      return true;
    });
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    return out;
  }

  std::vector<uint32_t> uids(std::string_view box) {
    std::vector<uint32_t> out;
    for (const auto& l : listed(box)) out.push_back(l.uid);
    return out;
  }

  MailboxRecord status(std::string_view box, std::string user = "alice") {
    auto r = store.mailbox(user, box);
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    return r->status;
  }

  std::string bytes(std::string_view box, uint32_t uid) {
    std::string out;
    REQUIRE(store
                .read_message("alice", box, uid,
                              [&](std::string_view c) {
                                out += c;
                                return true;
                              })
                .is_ok());
    return out;
  }

  std::vector<std::string> names(std::string user = "alice") {
    std::vector<std::string> out;
    const auto boxes = store.mailboxes(user);
    REQUIRE(boxes.is_ok());
    for (const auto& b : *boxes) out.push_back(b.name + (b.status.noselect ? " (noselect)" : ""));
    return out;
  }

  core::Result<FlagsStaged> set_flags(std::string_view box, std::vector<uint32_t> uids,
                                      FlagMode mode, Flags flags,
                                      std::optional<uint64_t> unchanged_since = std::nullopt) {
    return write([&](auto& b, auto& c) {
      return store.stage_set_flags(b, c, "alice", box, uids, mode, flags, unchanged_since);
    });
  }

  size_t keys(queue::Family f) {
    std::unique_ptr<rocksdb::Iterator> it(
        db->raw()->NewIterator(rocksdb::ReadOptions(), db->cf(f)));
    size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }

  queue_test::TempDir dir;
  std::unique_ptr<queue::Db> db = queue_test::open_db(dir.path());
  core::FakeClock clock{1'700'000'000'000};
  Store store{*db, clock};
  Changes last;  // of the last write
};

std::vector<Changes::Touched> touched(std::vector<std::string> names) {
  std::vector<Changes::Touched> out;
  for (auto& n : names) out.push_back({"alice", std::move(n)});
  return out;
}

}  // namespace

TEST_CASE("unit: IMAP data stays with its message and is listed without the bytes",
          "[mailbox][unit]") {
  Fixture t;
  const auto with = t.append("INBOX", "Subject: one\r\n\r\nx\r\n", {}, imap_data("one"));
  const auto without = t.append("INBOX", "Subject: two\r\n\r\ny\r\n");
  const auto third =
      t.append("INBOX", "Subject: three\r\n\r\nz\r\n", {kSeen, {"$Label1"}}, imap_data("three"));

  CHECK(t.store.message("alice", "INBOX", with.uid).value().record.summary ==
        imap_data("one").summary);
  CHECK_FALSE(t.store.message("alice", "INBOX", without.uid).value().record.summary);
  CHECK(t.store.imap_structure("alice", "INBOX", with.uid).value() == imap_data("one").structure);
  CHECK_FALSE(t.store.imap_structure("alice", "INBOX", without.uid).value().has_value());
  CHECK(t.store.imap_structure("alice", "INBOX", 99).status().kind() == Kind::kNotFound);

  // Listings read the index only: with every blob gone they still work.
  REQUIRE(t.db->raw()
              ->DeleteRange(rocksdb::WriteOptions(), t.db->cf(queue::Family::kMailboxBlobs), "",
                            std::string(64, '\xff'))
              .ok());
  struct Seen {
    uint32_t uid;
    bool has_summary;
    std::string subject, from;
    int64_t date_ms;
    std::vector<std::string> keywords;
  };
  std::vector<Seen> seen;
  auto box = t.store.list_index("alice", "inbox", [&](uint32_t uid, const MessageView& m) {
    seen.push_back({uid, m.has_summary, std::string(m.summary.subject), std::string(m.summary.from),
                    m.summary.date_ms,
                    std::vector<std::string>(m.keywords.begin(), m.keywords.end())});
    return true;
  });
  REQUIRE(box.is_ok());
  CHECK(*box == t.status("INBOX"));
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].has_summary);
  CHECK(seen[0].subject == "one");
  CHECK(seen[0].from == "Al <al@example.com>");
  CHECK(seen[0].date_ms == 1'600'000'000'000);
  CHECK_FALSE(seen[1].has_summary);
  CHECK(seen[1].subject.empty());
  CHECK(seen[2].subject == "three");
  CHECK(seen[2].keywords == std::vector<std::string>{"$Label1"});

  std::vector<std::pair<uint32_t, std::string>> structures;
  REQUIRE(t.store
              .list_structures("alice", "INBOX",
                               [&](uint32_t uid, const StructureView& s) {
                                 structures.emplace_back(uid, std::string(s.envelope));
                                 return true;
                               })
              .is_ok());
  CHECK(structures ==
        std::vector<std::pair<uint32_t, std::string>>{{with.uid, "(env)"}, {third.uid, "(env)"}});

  SECTION("from a UID on, stopping early") {
    std::vector<uint32_t> from_second;
    REQUIRE(t.store
                .list_index(
                    "alice", "INBOX",
                    [&](uint32_t uid, const MessageView&) {
                      from_second.push_back(uid);
                      return false;
                    },
                    without.uid)
                .is_ok());
    CHECK(from_second == std::vector<uint32_t>{without.uid});
    structures.clear();
    REQUIRE(t.store
                .list_structures(
                    "alice", "INBOX",
                    [&](uint32_t uid, const StructureView& s) {
                      structures.emplace_back(uid, std::string(s.body));
                      return true;
                    },
                    without.uid)
                .is_ok());
    CHECK(structures == std::vector<std::pair<uint32_t, std::string>>{{third.uid, "(body)"}});
  }
  SECTION("a reader keeps what it computed, which no client sees as a change") {
    const auto before = t.status("INBOX");
    const uint64_t modseq = t.store.message("alice", "INBOX", without.uid).value().record.modseq;
    // In the same batch another session changes the message's flags: both stay.
    rocksdb::WriteBatch batch;
    Changes changes;
    REQUIRE(t.store
                .stage_set_flags(batch, changes, "alice", "INBOX", {without.uid}, FlagMode::kAdd,
                                 {kFlagged, {}}, std::nullopt)
                .is_ok());
    REQUIRE(
        t.store.stage_imap_data(batch, "alice", "INBOX", without.uid, imap_data("two")).is_ok());
    REQUIRE(t.store.stage_imap_data(batch, "alice", "INBOX", with.uid, imap_data("later")).is_ok());
    REQUIRE(t.store.stage_imap_data(batch, "alice", "INBOX", 99, imap_data("none")).is_ok());
    REQUIRE(t.db->raw()->Write(queue::synced_writes(), &batch).ok());
    t.store.notify_committed(changes, core::Status::ok());
    const auto m = t.store.message("alice", "INBOX", without.uid).value().record;
    CHECK(m.summary == imap_data("two").summary);
    CHECK(m.flags.system == kFlagged);
    CHECK(m.modseq == before.highest_modseq + 1);  // the flag change's, not another
    CHECK(m.modseq > modseq);
    CHECK(t.status("INBOX").highest_modseq == before.highest_modseq + 1);
    CHECK(t.store.imap_structure("alice", "INBOX", without.uid).value() ==
          imap_data("two").structure);
    // Data already there is kept.
    CHECK(t.store.message("alice", "INBOX", with.uid).value().record.summary->subject == "one");
  }
}

TEST_CASE("unit: flag changes take one new MODSEQ and keep the counters", "[mailbox][unit]") {
  Fixture t;
  const uint32_t a = t.append("INBOX", "a").uid;
  const uint32_t b = t.append("INBOX", "b").uid;
  const uint32_t c = t.append("INBOX", "c").uid;
  const auto start = t.status("INBOX");
  CHECK(start.unseen == 3);
  CHECK(start.deleted == 0);
  const uint64_t modseq_c = t.listed("INBOX")[2].modseq;

  auto r = t.set_flags("INBOX", {a, b, 99}, FlagMode::kAdd, {kSeen, {}});
  REQUIRE(r.is_ok());
  const uint64_t m1 = start.highest_modseq + 1;
  CHECK(r->changed == std::vector<FlagChange>{{a, {kSeen, {}}, m1}, {b, {kSeen, {}}, m1}});
  CHECK(r->modified.empty());
  CHECK(t.last.touched() == touched({"INBOX"}));
  auto box = t.status("INBOX");
  CHECK(box.highest_modseq == m1);
  CHECK(box.unseen == 1);
  CHECK(t.listed("INBOX")[2].modseq == modseq_c);  // untouched: its MODSEQ stays

  SECTION("no change, no MODSEQ and nothing to tell") {
    r = t.set_flags("INBOX", {a}, FlagMode::kAdd, {kSeen, {}});
    CHECK(r->changed.empty());
    CHECK(t.last.empty());
    CHECK(t.status("INBOX").highest_modseq == m1);
    r = t.set_flags("INBOX", {c}, FlagMode::kRemove, {kSeen | kDeleted, {"$x"}});
    CHECK(r->changed.empty());
  }
  SECTION("keywords are case-insensitive and keep their first spelling") {
    r = t.set_flags("INBOX", {a}, FlagMode::kAdd, {0, {"$Label1", "$LABEL1", "NonJunk"}});
    REQUIRE(r->changed.size() == 1);
    CHECK(r->changed[0].flags == Flags{kSeen, {"$Label1", "NonJunk"}});
    r = t.set_flags("INBOX", {a}, FlagMode::kAdd, {0, {"$label1"}});
    CHECK(r->changed.empty());
    r = t.set_flags("INBOX", {a}, FlagMode::kReplace, {kSeen, {"nonjunk", "$label1"}});
    CHECK(r->changed.empty());  // the same set in another order and case
    r = t.set_flags("INBOX", {a}, FlagMode::kRemove, {0, {"$LABEL1"}});
    REQUIRE(r->changed.size() == 1);
    CHECK(r->changed[0].flags == Flags{kSeen, {"NonJunk"}});
    CHECK(r->changed[0].modseq == m1 + 2);
    CHECK(t.listed("INBOX")[0] == Listed{a, {kSeen, {"NonJunk"}}, m1 + 2});
  }
  SECTION("replace moves the unseen and deleted counts both ways") {
    r = t.set_flags("INBOX", {a, c}, FlagMode::kReplace, {kDeleted | kDraft, {}});
    CHECK(r->changed.size() == 2);
    box = t.status("INBOX");
    CHECK(box.unseen == 2);  // a lost \Seen, c never had it
    CHECK(box.deleted == 2);
    r = t.set_flags("INBOX", {a, b, c}, FlagMode::kAdd, {kSeen, {}});
    box = t.status("INBOX");
    CHECK(box.unseen == 0);
    r = t.set_flags("INBOX", {a}, FlagMode::kRemove, {kDeleted | kSeen, {}});
    box = t.status("INBOX");
    CHECK(box.unseen == 1);
    CHECK(box.deleted == 1);
  }
  SECTION("UNCHANGEDSINCE leaves newer messages alone and reports them") {
    r = t.set_flags("INBOX", {a, b, c}, FlagMode::kAdd, {kFlagged, {}}, modseq_c);
    REQUIRE(r.is_ok());
    CHECK(r->modified == std::vector<uint32_t>{a, b});  // changed at m1 > modseq_c
    REQUIRE(r->changed.size() == 1);
    CHECK(r->changed[0].uid == c);
    r = t.set_flags("INBOX", {a}, FlagMode::kAdd, {kFlagged, {}}, 0);
    CHECK(r->modified == std::vector<uint32_t>{a});
    CHECK(r->changed.empty());
  }
  SECTION("refusals") {
    CHECK(t.set_flags("Nope", {a}, FlagMode::kAdd, {kSeen, {}}).status().kind() == Kind::kNotFound);
    CHECK(t.set_flags("INBOX", {a}, FlagMode::kAdd, {32, {}}).status().kind() == Kind::kInvalid);
    CHECK(t.set_flags("INBOX", {a}, FlagMode::kAdd, {0, {""}}).status().kind() == Kind::kInvalid);
  }
}

TEST_CASE("unit: stagings in one batch build on each other", "[mailbox][unit]") {
  Fixture t;
  const uint32_t a = t.append("INBOX", "a").uid;
  const uint32_t b = t.append("INBOX", "b").uid;
  const uint64_t highest = t.status("INBOX").highest_modseq;

  SECTION("two sessions' flag changes and an expunge, committed together") {
    rocksdb::WriteBatch batch;
    Changes one, two, three;
    auto flags = [&](Changes& c, uint32_t uid, uint8_t bits) {
      auto r = t.store.stage_set_flags(batch, c, "alice", "INBOX", {uid}, FlagMode::kAdd,
                                       {bits, {}}, std::nullopt);
      REQUIRE(r.is_ok());
      return r.value();
    };
    CHECK(flags(one, a, kSeen).changed.size() == 1);
    CHECK(flags(two, a, kFlagged).changed.at(0).flags.system == (kSeen | kFlagged));
    REQUIRE(t.store.stage_expunge(batch, three, "alice", "INBOX", {b}, false).value() ==
            std::vector<uint32_t>{b});
    CHECK(flags(two, b, kSeen).changed.empty());  // gone in this batch
    CHECK(t.store.stage_expunge(batch, three, "alice", "INBOX", {b}, false).value().empty());
    REQUIRE(t.db->raw()->Write(queue::synced_writes(), &batch).ok());
    for (Changes* c : {&one, &two, &three}) t.store.notify_committed(*c, core::Status::ok());
    CHECK(t.listed("INBOX") == std::vector<Listed>{{a, {kSeen | kFlagged, {}}, highest + 2}});
    const auto box = t.status("INBOX");
    CHECK(box.highest_modseq == highest + 3);
    CHECK(box.unseen == 0);
    CHECK(box.messages == 1);
    // The next batch starts from what was committed.
    auto r = t.set_flags("INBOX", {a}, FlagMode::kRemove, {kFlagged, {}});
    CHECK(r->changed.at(0).flags.system == kSeen);
    CHECK(t.status("INBOX").highest_modseq == highest + 4);
  }
  SECTION("a batch that is not written is forgotten") {
    rocksdb::WriteBatch lost;
    Changes changes;
    REQUIRE(t.store
                .stage_set_flags(lost, changes, "alice", "INBOX", {a}, FlagMode::kAdd,
                                 {kDeleted, {}}, std::nullopt)
                .is_ok());
    REQUIRE(t.store.stage_expunge(lost, changes, "alice", "INBOX", {b}, false).is_ok());
    t.store.notify_committed(changes, core::Status::io("disk full"));
    auto r = t.set_flags("INBOX", {a, b}, FlagMode::kAdd, {kSeen, {}});
    REQUIRE(r->changed.size() == 2);  // b is still there
    CHECK(r->changed[0].flags == Flags{kSeen, {}});
    const auto box = t.status("INBOX");
    CHECK(box.deleted == 0);
    CHECK(box.unseen == 0);
    CHECK(box.messages == 2);
    CHECK(box.highest_modseq > highest);
  }
}

TEST_CASE("unit: expunge for IMAP removes only what is still \\Deleted", "[mailbox][unit]") {
  Fixture t;
  const uint32_t a = t.append("INBOX", "aa", {kDeleted | kSeen, {}}).uid;
  const uint32_t b = t.append("INBOX", "bbb", {kDeleted, {}}, imap_data("b")).uid;
  const uint32_t c = t.append("INBOX", "c").uid;
  const uint32_t d = t.append("INBOX", "dddd", {kSeen, {}}).uid;
  auto box = t.status("INBOX");
  CHECK(box.deleted == 2);
  CHECK(box.unseen == 2);
  const size_t index_keys = t.keys(queue::Family::kMailboxIndex);

  auto r = t.write([&](auto& batch, auto& changes) {
    return t.store.stage_expunge(batch, changes, "alice", "INBOX", {c, b, a, 99}, true);
  });
  REQUIRE(r.is_ok());
  CHECK(*r == std::vector<uint32_t>{b, a});
  CHECK(t.last.touched() == touched({"INBOX"}));
  CHECK(t.uids("INBOX") == std::vector<uint32_t>{c, d});
  const auto after = t.status("INBOX");
  CHECK(after.messages == 2);
  CHECK(after.bytes == 5);
  CHECK(after.deleted == 0);
  CHECK(after.unseen == 1);
  CHECK(after.highest_modseq == box.highest_modseq + 1);
  CHECK(after.uidnext == box.uidnext);
  CHECK(t.keys(queue::Family::kMailboxIndex) == index_keys - 3);  // two records, one structure
  CHECK(t.keys(queue::Family::kMailboxBlobs) == 2);

  r = t.write([&](auto& batch, auto& changes) {
    return t.store.stage_expunge(batch, changes, "alice", "INBOX", {c}, true);
  });
  CHECK(r->empty());
  CHECK(t.last.empty());
  CHECK(t.status("INBOX").highest_modseq == after.highest_modseq);
}

TEST_CASE("unit: copy and move keep bytes, flags and IMAP data under new UIDs", "[mailbox][unit]") {
  Fixture t;
  const std::string big = queue_test::make_bytes(kChunkSize + 100, 9);
  const uint32_t a = t.append("INBOX", big, {kSeen, {"$Label1"}}, imap_data("big")).uid;
  const uint32_t b = t.append("INBOX", "small").uid;
  const auto inbox = t.status("INBOX");
  const auto archive = t.status("Archive");

  auto r = t.write([&](auto& batch, auto& changes) {
    return t.store.stage_copy(batch, changes, "alice", "inbox", {b, 99, a, b}, "Archive");
  });
  REQUIRE(r.is_ok());
  CHECK(r->uidvalidity == archive.uidvalidity);
  CHECK(r->uids == std::vector<std::pair<uint32_t, uint32_t>>{{b, 1}, {a, 2}});
  CHECK(t.last.touched() == touched({"Archive"}));
  CHECK(t.status("INBOX") == inbox);
  const auto copied = t.status("Archive");
  CHECK(copied.messages == 2);
  CHECK(copied.bytes == big.size() + 5);
  CHECK(copied.unseen == 1);
  CHECK(copied.uidnext == 3);
  CHECK(copied.highest_modseq == archive.highest_modseq + 2);
  CHECK(t.bytes("Archive", 2) == big);
  CHECK(t.bytes("Archive", 1) == "small");
  CHECK(t.listed("Archive") ==
        std::vector<Listed>{{1, {}, archive.highest_modseq + 1},
                            {2, {kSeen, {"$Label1"}}, archive.highest_modseq + 2}});
  CHECK(t.store.imap_structure("alice", "Archive", 2).value() == imap_data("big").structure);
  CHECK(t.store.message("alice", "Archive", 2).value().record.internal_date_ms ==
        1'700'000'000'000);

  SECTION("move") {
    auto m = t.write([&](auto& batch, auto& changes) {
      return t.store.stage_move(batch, changes, "alice", "INBOX", {a}, "Trash");
    });
    REQUIRE(m.is_ok());
    CHECK(m->uids == std::vector<std::pair<uint32_t, uint32_t>>{{a, 1}});
    CHECK(t.last.touched() == touched({"INBOX", "Trash"}));
    CHECK(t.uids("INBOX") == std::vector<uint32_t>{b});
    const auto after = t.status("INBOX");
    CHECK(after.messages == 1);
    CHECK(after.bytes == 5);
    CHECK(after.unseen == 1);
    CHECK(after.highest_modseq == inbox.highest_modseq + 1);
    CHECK(t.bytes("Trash", 1) == big);
    CHECK(t.status("Trash").unseen == 0);
    // INBOX keeps b (one chunk), Archive its copies (three), Trash the big one (two).
    CHECK(t.keys(queue::Family::kMailboxBlobs) == 1 + 3 + 2);
  }
  SECTION("two sessions move the same message in one batch: once") {
    rocksdb::WriteBatch batch;
    Changes changes;
    auto one = t.store.stage_move(batch, changes, "alice", "INBOX", {a}, "Trash");
    auto two = t.store.stage_move(batch, changes, "alice", "INBOX", {a}, "Junk");
    REQUIRE(one.is_ok());
    REQUIRE(two.is_ok());
    CHECK(one->uids.size() == 1);
    CHECK(two->uids.empty());
    REQUIRE(t.db->raw()->Write(queue::synced_writes(), &batch).ok());
    CHECK(t.status("Trash").messages == 1);
    CHECK(t.status("Junk").messages == 0);
  }
  SECTION("into the same mailbox") {
    auto m = t.write([&](auto& batch, auto& changes) {
      return t.store.stage_copy(batch, changes, "alice", "INBOX", {b}, "INBOX");
    });
    CHECK(m->uids == std::vector<std::pair<uint32_t, uint32_t>>{{b, inbox.uidnext}});
    CHECK(t.bytes("INBOX", inbox.uidnext) == "small");
    CHECK(t.status("INBOX").messages == 3);
  }
  SECTION("a target that does not exist") {
    auto m = t.write([&](auto& batch, auto& changes) {
      return t.store.stage_copy(batch, changes, "alice", "INBOX", {b}, "Nope");
    });
    CHECK(m.status().kind() == Kind::kNotFound);
    CHECK_THAT(m.status().message(), Catch::Contains("Nope"));
  }
}

TEST_CASE("unit: CREATE makes superiors and refuses what exists", "[mailbox][unit]") {
  Fixture t;
  auto create = [&](std::string_view name, SpecialUse use = SpecialUse::kNone) {
    return t.write([&](auto& batch, auto& changes) {
      return t.store.stage_create(batch, changes, "alice", name, use);
    });
  };
  // A user who never had mail: the standard mailboxes come first.
  REQUIRE(create("Lists/porter").is_ok());
  CHECK(t.names() == std::vector<std::string>{"INBOX", "Archive", "Drafts", "Junk", "Lists",
                                              "Lists/porter", "Sent", "Trash"});
  CHECK(t.store.subscriptions("alice").value().size() == 6);  // CREATE subscribes nothing
  CHECK(t.status("Lists").uidvalidity > t.status("Trash").uidvalidity);
  CHECK(t.status("Lists/porter").uidvalidity > t.status("Lists").uidvalidity);
  CHECK(t.status("Lists/porter").uidnext == 1);

  REQUIRE(create("Work/", SpecialUse::kArchive).is_ok());  // the trailing "/" only declares
  CHECK(t.status("Work").special_use == SpecialUse::kArchive);
  CHECK(t.last.touched() == touched({"Work"}));

  const auto [name, kind] = GENERATE(table<std::string, Kind>({
      {"Lists", Kind::kPermanent},
      {"inbox", Kind::kPermanent},
      {"INBOX/", Kind::kPermanent},
      {"Work", Kind::kPermanent},
      {"a//b", Kind::kInvalid},
      {"../x", Kind::kInvalid},
      {"/", Kind::kInvalid},
      {"", Kind::kInvalid},
      {"bad\xff", Kind::kInvalid},
  }));
  INFO(name);
  CHECK(create(name).kind() == kind);
  CHECK(t.last.empty());
}

TEST_CASE("unit: DELETE as Dovecot does it", "[mailbox][unit]") {
  Fixture t;
  auto create = [&](std::string_view name) {
    auto s = t.write([&](auto& batch, auto& changes) {
      return t.store.stage_create(batch, changes, "alice", name);
    });
    REQUIRE(s.is_ok());
  };
  auto remove = [&](std::string_view name) {
    return t.write([&](auto& batch, auto& changes) {
      return t.store.stage_delete(batch, changes, "alice", name);
    });
  };
  const uint32_t a = t.append("INBOX", "hello").uid;
  create("Lists/porter");
  REQUIRE(t.write([&](auto& batch, auto& changes) {
             return t.store.stage_copy(batch, changes, "alice", "INBOX", {a}, "Lists");
           }).is_ok());
  const auto lists = t.status("Lists");
  const uint64_t used = t.store.bytes_used("alice").value();

  SECTION("a mailbox with inferiors loses its messages and becomes \\Noselect") {
    REQUIRE(remove("Lists").is_ok());
    CHECK(t.last.touched() == touched({"Lists"}));
    const auto placeholder = t.status("Lists");
    CHECK(placeholder.noselect);
    CHECK(placeholder.messages == 0);
    CHECK(t.store.bytes_used("alice").value() == used - 5);
    CHECK(t.keys(queue::Family::kMailboxBlobs) == 1);  // INBOX's copy only
    CHECK(t.store.list_index("alice", "Lists", [](uint32_t, const MessageView&) { return true; })
              .status()
              .kind() == Kind::kNotFound);
    CHECK(t.store.message("alice", "Lists", 1).status().kind() == Kind::kNotFound);
    Append into;
    into.user = "alice";
    into.mailbox = "Lists";
    into.parts = {"x"};
    auto appended = t.write(
        [&](auto& batch, auto& changes) { return t.store.stage_appends(batch, {into}, changes); });
    CHECK(appended.status().kind() == Kind::kNotFound);
    // Refused while it has inferiors.
    CHECK(remove("Lists").kind() == Kind::kPermanent);
    SECTION("CREATE makes it a mailbox again, with a new UIDVALIDITY and no old mail") {
      create("Lists");
      const auto again = t.status("Lists");
      CHECK_FALSE(again.noselect);
      CHECK(again.uidvalidity > lists.uidvalidity);
      CHECK(again.id != lists.id);
      CHECK(t.uids("Lists").empty());
    }
    SECTION("it goes with its last inferior") {
      REQUIRE(remove("Lists/porter").is_ok());
      CHECK(t.last.touched() == touched({"Lists", "Lists/porter"}));
      CHECK(t.store.mailbox("alice", "Lists").status().kind() == Kind::kNotFound);
    }
  }
  SECTION("a mailbox without inferiors goes with its messages") {
    REQUIRE(remove("Lists/porter").is_ok());
    REQUIRE(remove("Lists").is_ok());
    CHECK(t.store.mailbox("alice", "Lists").status().kind() == Kind::kNotFound);
    CHECK(t.store.bytes_used("alice").value() == used - 5);
    create("Lists");
    CHECK(t.status("Lists").uidvalidity > lists.uidvalidity);
    CHECK(t.uids("Lists").empty());
  }
  SECTION("special-use mailboxes may go; delivery brings Junk back, APPEND does not") {
    REQUIRE(remove("Junk").is_ok());
    REQUIRE(remove("Sent").is_ok());
    Append a;
    a.user = "alice";
    a.mailbox = "Sent";
    a.parts = {"x"};
    auto r = t.write(
        [&](auto& batch, auto& changes) { return t.store.stage_appends(batch, {a}, changes); });
    CHECK(r.status().kind() == Kind::kNotFound);
    a.mailbox = "Junk";
    a.create_standard = true;
    r = t.write(
        [&](auto& batch, auto& changes) { return t.store.stage_appends(batch, {a}, changes); });
    REQUIRE(r.is_ok());
    CHECK(t.status("Junk").special_use == SpecialUse::kJunk);
    CHECK(t.status("Junk").messages == 1);
    CHECK(t.store.mailbox("alice", "Sent").status().kind() == Kind::kNotFound);
  }
  SECTION("refusals") {
    CHECK(remove("INBOX").kind() == Kind::kInvalid);
    CHECK(remove("inbox").kind() == Kind::kInvalid);
    CHECK(remove("Nope").kind() == Kind::kNotFound);
    CHECK(remove("a/../b").kind() == Kind::kInvalid);
  }
}

TEST_CASE("unit: RENAME keeps UIDVALIDITY and takes the inferiors along", "[mailbox][unit]") {
  Fixture t;
  auto create = [&](std::string_view name) {
    REQUIRE(t.write([&](auto& batch, auto& changes) {
               return t.store.stage_create(batch, changes, "alice", name);
             }).is_ok());
  };
  auto rename = [&](std::string_view from, std::string_view to) {
    return t.write([&](auto& batch, auto& changes) {
      return t.store.stage_rename(batch, changes, "alice", from, to);
    });
  };
  const uint32_t a = t.append("INBOX", "one").uid;
  t.append("INBOX", "two");
  create("Work/a/b");
  REQUIRE(t.write([&](auto& batch, auto& changes) {
             return t.store.stage_copy(batch, changes, "alice", "INBOX", {a}, "Work/a");
           }).is_ok());
  const auto work = t.status("Work");
  const auto work_a = t.status("Work/a");

  SECTION("a mailbox and its inferiors") {
    REQUIRE(rename("Work", "Old/Work").is_ok());
    CHECK(t.names() == std::vector<std::string>{"INBOX", "Archive", "Drafts", "Junk", "Old",
                                                "Old/Work", "Old/Work/a", "Old/Work/a/b", "Sent",
                                                "Trash"});
    CHECK(t.status("Old/Work").uidvalidity == work.uidvalidity);
    CHECK(t.status("Old/Work/a") == work_a);
    CHECK(t.bytes("Old/Work/a", 1) == "one");
    CHECK(t.last.touched().size() == 7);  // three old names, three new, and Old
    // The new name is used from now on.
    CHECK(t.append("Old/Work/a", "three").uid == 2);
  }
  SECTION("a \\Noselect superior left empty goes") {
    create("Tmp/x");
    REQUIRE(t.write([&](auto& batch, auto& changes) {
               return t.store.stage_delete(batch, changes, "alice", "Tmp");
             }).is_ok());
    REQUIRE(rename("Tmp/x", "x").is_ok());
    CHECK(t.store.mailbox("alice", "Tmp").status().kind() == Kind::kNotFound);
    CHECK(t.status("x").messages == 0);
  }
  SECTION("INBOX: its messages move, a new empty INBOX stays, its inferiors stay") {
    create("INBOX/kept");
    const auto inbox = t.status("INBOX");
    REQUIRE(rename("inbox", "INBOX/old").is_ok());
    const auto old = t.status("INBOX/old");
    CHECK(old.uidvalidity == inbox.uidvalidity);
    CHECK(old.messages == 2);
    CHECK(t.bytes("INBOX/old", a) == "one");
    const auto fresh = t.status("INBOX");
    CHECK(fresh.messages == 0);
    CHECK(fresh.uidvalidity > inbox.uidvalidity);
    CHECK(t.status("INBOX/kept").messages == 0);
    CHECK(t.store.mailbox("alice", "INBOX/old/kept").status().kind() == Kind::kNotFound);
    CHECK(t.append("INBOX", "new").uid == 1);
  }
  SECTION("refusals") {
    CHECK(rename("Nope", "x").kind() == Kind::kNotFound);
    CHECK(rename("Work", "Sent").kind() == Kind::kPermanent);
    CHECK(rename("Work", "inbox").kind() == Kind::kPermanent);
    CHECK(rename("Work", "Work/a/c").kind() == Kind::kInvalid);
    CHECK(rename("Work", "W*").kind() == Kind::kInvalid);
    CHECK(rename("Work", std::string(252, 'x')).kind() == Kind::kInvalid);  // x.../a/b: 256 bytes
    CHECK(t.status("Work") == work);
  }
}

TEST_CASE("unit: subscriptions are names, untouched by DELETE and RENAME", "[mailbox][unit]") {
  Fixture t;
  auto subscribe = [&](std::string_view name, bool on) {
    return t.write(
        [&](auto& batch, auto&) { return t.store.stage_subscribe(batch, "Alice", name, on); });
  };
  REQUIRE(subscribe("Lists/none", true).is_ok());  // need not exist
  REQUIRE(subscribe("inbox", true).is_ok());
  CHECK(t.store.subscriptions("alice").value() == std::vector<std::string>{"INBOX", "Lists/none"});
  REQUIRE(subscribe("Lists/none", false).is_ok());
  REQUIRE(subscribe("Never", false).is_ok());
  CHECK(t.store.subscriptions("alice").value() == std::vector<std::string>{"INBOX"});
  CHECK(subscribe("a//b", true).kind() == Kind::kInvalid);
  t.append("INBOX", "x");  // provisions and subscribes the standard mailboxes
  REQUIRE(t.write([&](auto& batch, auto& changes) {
             return t.store.stage_delete(batch, changes, "alice", "Trash");
           }).is_ok());
  CHECK(t.store.subscriptions("alice").value().size() == 6);
  CHECK(t.store.subscriptions("bob").value().empty());
}

TEST_CASE("unit: committed changes reach the user's watchers", "[mailbox][unit]") {
  Fixture t;
  std::vector<std::string> heard;
  auto watch = t.store.events().watch("ALICE", [&](std::string_view m) { heard.emplace_back(m); });
  t.append("Junk", "x", {}, std::nullopt, "bob");
  CHECK(heard.empty());
  const uint32_t a = t.append("INBOX", "x").uid;
  // The first append made all six mailboxes.
  CHECK(heard.size() == 6);
  heard.clear();
  REQUIRE(t.set_flags("INBOX", {a}, FlagMode::kAdd, {kSeen, {}}).is_ok());
  CHECK(heard == std::vector<std::string>{"INBOX"});
  heard.clear();
  // A failed commit tells nobody.
  rocksdb::WriteBatch lost;
  Changes changes;
  REQUIRE(t.store.stage_expunge(lost, changes, "alice", "INBOX", {a}, false).is_ok());
  CHECK_FALSE(changes.empty());
  t.store.notify_committed(changes, core::Status::io("disk full"));
  CHECK(heard.empty());
  CHECK(t.status("INBOX").messages == 1);
}

TEST_CASE("unit: a version-1 mailbox is counted from its messages", "[mailbox][unit]") {
  Fixture t;
  t.append("INBOX", "a", {kSeen, {}});
  t.append("INBOX", "b", {kDeleted, {}});
  t.append("INBOX", "c");
  // Rewrite INBOX's record as the first store did (version 1: no unseen, deleted, attributes).
  const MailboxRecord v2 = t.status("INBOX");
  std::string v1 = encode(v2).substr(0, 34);
  v1[0] = 1;
  REQUIRE(t.db->raw()
              ->Put(rocksdb::WriteOptions(), t.db->cf(queue::Family::kMailboxIndex),
                    mailbox_key("alice", "INBOX"), v1)
              .ok());
  Store fresh(*t.db, t.clock);
  const auto read = fresh.mailbox("alice", "INBOX").value().status;
  CHECK(read == v2);
  CHECK(read.unseen == 2);
  CHECK(read.deleted == 1);
  // The next write stores version 2 with the counts.
  rocksdb::WriteBatch batch;
  Changes changes;
  REQUIRE(fresh
              .stage_set_flags(batch, changes, "alice", "INBOX", {3}, FlagMode::kAdd, {kSeen, {}},
                               std::nullopt)
              .is_ok());
  REQUIRE(t.db->raw()->Write(queue::synced_writes(), &batch).ok());
  std::string stored;
  REQUIRE(t.db->raw()
              ->Get(rocksdb::ReadOptions(), t.db->cf(queue::Family::kMailboxIndex),
                    mailbox_key("alice", "INBOX"), &stored)
              .ok());
  CHECK(stored[0] == char(kMailboxRecordVersion));
  CHECK(decode_mailbox(stored).value().unseen == 1);
}

TEST_CASE("unit: counters always agree with the messages", "[mailbox][unit]") {
  // Random appends, flag changes, expunges, copies and moves over a few mailboxes, several
  // per batch, some batches lost; then every mailbox's counters are checked against its
  // messages, and UIDs and MODSEQs against their invariants.
  Fixture t;
  std::mt19937 rng(GENERATE(1u, 2u, 3u));
  const std::vector<std::string> boxes = {"INBOX", "Archive", "Trash"};
  auto pick_box = [&]() { return boxes[rng() % boxes.size()]; };
  auto some_uids = [&](const std::string& box) {
    std::vector<uint32_t> out;
    for (uint32_t uid : t.uids(box))
      if (rng() % 3 == 0) out.push_back(uid);
    out.push_back(999);
    return out;
  };
  std::map<std::string, uint32_t> last_uid;
  std::map<std::string, uint64_t> last_highest;
  t.append("INBOX", "first");
  for (int round = 0; round < 40; ++round) {
    rocksdb::WriteBatch batch;
    Changes changes;
    std::vector<std::string> bodies;
    bodies.reserve(8);
    for (int op = 0; op < 5; ++op) {
      const std::string box = pick_box();
      const std::string other = pick_box();
      switch (rng() % 5) {
        case 0: {
          bodies.push_back(std::string(1 + rng() % 50, 'x'));
          Append a;
          a.user = "alice";
          a.mailbox = box;
          a.parts = {bodies.back()};
          a.flags.system = static_cast<uint8_t>(rng() % 32);
          REQUIRE(t.store.stage_appends(batch, {a}, changes).is_ok());
          break;
        }
        case 1: {
          const auto mode = static_cast<FlagMode>(rng() % 3);
          const Flags f{static_cast<uint8_t>(rng() % 32), {}};
          REQUIRE(t.store
                      .stage_set_flags(batch, changes, "alice", box, some_uids(box), mode, f,
                                       std::nullopt)
                      .is_ok());
          break;
        }
        case 2:
          REQUIRE(t.store.stage_expunge(batch, changes, "alice", box, some_uids(box), rng() % 2)
                      .is_ok());
          break;
        case 3:
          REQUIRE(t.store.stage_copy(batch, changes, "alice", box, some_uids(box), other).is_ok());
          break;
        case 4:
          REQUIRE(t.store.stage_move(batch, changes, "alice", box, some_uids(box), other).is_ok());
          break;
      }
    }
    const bool lose = rng() % 4 == 0;
    if (!lose) REQUIRE(t.db->raw()->Write(queue::synced_writes(), &batch).ok());
    t.store.notify_committed(changes, lose ? core::Status::io("lost") : core::Status::ok());

    for (const std::string& box : boxes) {
      INFO("round " << round << " " << box);
      MailboxRecord counted;
      uint32_t prev_uid = 0;
      uint64_t max_modseq = 0;
      auto listed = t.store.list_index("alice", box, [&](uint32_t uid, const MessageView& m) {
        CHECK(uid > prev_uid);
        prev_uid = uid;
        max_modseq = std::max(max_modseq, m.modseq);
        ++counted.messages;
        counted.bytes += m.size;
        counted.unseen += (m.system_flags & kSeen) ? 0 : 1;
        counted.deleted += (m.system_flags & kDeleted) ? 1 : 0;
        return true;
      });
      REQUIRE(listed.is_ok());
      CHECK(listed->messages == counted.messages);
      CHECK(listed->bytes == counted.bytes);
      CHECK(listed->unseen == counted.unseen);
      CHECK(listed->deleted == counted.deleted);
      CHECK(listed->uidnext > prev_uid);
      CHECK(listed->highest_modseq >= max_modseq);
      CHECK(listed->uidnext >= last_uid[box]);  // never back, even after a lost batch
      CHECK(listed->highest_modseq >= last_highest[box]);
      last_uid[box] = listed->uidnext;
      last_highest[box] = listed->highest_modseq;
    }
  }
}

TEST_CASE("bench: list_index over 100,000 messages", "[mailbox][.bench]") {
  Fixture t;
  constexpr uint32_t kMessages = 100'000;
  const std::string body = "From: x\r\nSubject: y\r\n\r\nhello\r\n";
  for (uint32_t done = 0; done < kMessages;) {
    std::vector<Append> appends;
    std::vector<ImapData> data;
    for (uint32_t i = 0; i < 1000; ++i, ++done) {
      ImapData d;
      d.summary = {
          "Sender " + std::to_string(done) + " <sender" + std::to_string(done) + "@example.org>",
          "Alice <alice@example.com>",
          done % 10 == 0 ? "Bob <bob@example.com>, Carol <carol@example.com>" : "",
          "",
          "Re: [porter-dev] the mailbox store, message number " + std::to_string(done),
          "<" + std::to_string(done) + ".1700000000@mail.example.org>",
          1'700'000'000'000 + done};
      d.structure = {std::string(600, 'e'), std::string(400, 'b'), std::string(200, 'b')};
      Append a;
      a.user = "alice";
      a.mailbox = "INBOX";
      a.parts = {body};
      a.flags.system = done % 3 == 0 ? kSeen : 0;
      a.internal_date_ms = 1'700'000'000'000 + done;
      a.imap = std::move(d);
      appends.push_back(std::move(a));
    }
    rocksdb::WriteBatch batch;
    Changes changes;
    REQUIRE(t.store.stage_appends(batch, appends, changes).is_ok());
    REQUIRE(t.db->raw()->Write(rocksdb::WriteOptions(), &batch).ok());
  }
  REQUIRE(t.db->raw()->Flush(rocksdb::FlushOptions(), t.db->cf(queue::Family::kMailboxIndex)).ok());
  REQUIRE(t.db->raw()->Flush(rocksdb::FlushOptions(), t.db->cf(queue::Family::kMailboxBlobs)).ok());

  auto run = [&](const char* what, auto&& list) {
    std::vector<double> ms;
    for (int i = 0; i < 7; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const size_t n = list();
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      CHECK(n == kMessages);
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%s: %u messages, median %.1f ms (min %.1f, max %.1f)\n", what, kMessages, ms[3],
                ms[0], ms[6]);
  };
  run("list_index", [&] {
    size_t n = 0;
    uint64_t unseen = 0;
    REQUIRE(t.store
                .list_index("alice", "INBOX",
                            [&](uint32_t, const MessageView& m) {
                              ++n;
                              unseen += (m.system_flags & kSeen) ? 0 : 1;
                              return true;
                            })
                .is_ok());
    CHECK(unseen == kMessages - kMessages / 3 - 1);
    return n;
  });
  run("list_index, SUBJECT substring", [&] {
    size_t n = 0, hits = 0;
    REQUIRE(t.store
                .list_index("alice", "INBOX",
                            [&](uint32_t, const MessageView& m) {
                              ++n;
                              hits +=
                                  m.summary.subject.find("number 4242") != std::string_view::npos;
                              return true;
                            })
                .is_ok());
    CHECK(hits == 11);  // 4242 and 42420 .. 42429
    return n;
  });
  run("list_structures", [&] {
    size_t n = 0;
    REQUIRE(t.store
                .list_structures("alice", "INBOX",
                                 [&](uint32_t, const StructureView&) {
                                   ++n;
                                   return true;
                                 })
                .is_ok());
    return n;
  });
}
