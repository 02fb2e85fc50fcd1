#include "mta/mailbox/record.h"

#include <catch2/catch.hpp>

using namespace mta::mailbox;

namespace {

// A string literal with its NUL bytes, without the terminating one.
template <size_t N>
std::string bytes(const char (&s)[N]) {
  return std::string(s, N - 1);
}

}  // namespace

TEST_CASE("unit: mailbox records round-trip", "[mailbox][unit]") {
  const UserRecord u{7, 1'700'000'123};
  CHECK(decode_user(encode(u)).value() == u);

  MailboxRecord b;
  b.id = 3;
  b.uidvalidity = 1'700'000'000;
  b.uidnext = 4'000'000'000u;
  b.highest_modseq = (1ull << 40) + 5;
  b.messages = 123;
  b.bytes = (5ull << 32) + 1;
  b.special_use = SpecialUse::kArchive;
  b.unseen = 100;
  b.deleted = 3;
  CHECK(decode_mailbox(encode(b)).value() == b);
  MailboxRecord placeholder;
  placeholder.noselect = true;
  CHECK(decode_mailbox(encode(placeholder)).value() == placeholder);

  MessageRecord m;
  m.flags.system = kSeen | kDraft;
  m.flags.keywords = {"$Label1", "NonJunk", std::string(255, 'k')};
  m.internal_date_ms = 1'700'000'000'123;
  m.size = 3 << 20;
  m.modseq = 99;
  m.chunks = 3;
  CHECK(decode_message(encode(m)).value() == m);
  CHECK(decode_message(encode(MessageRecord{})).value() == MessageRecord{});
  m.summary = SearchSummary{"Al <al@example.com>",
                            "b@example.net, c@example.net",
                            "",
                            "",
                            "Caf\xc3\xa9",
                            "<id@x>",
                            -86'400'000};
  CHECK(decode_message(encode(m)).value() == m);
  m.summary = SearchSummary{};
  CHECK(decode_message(encode(m)).value() == m);  // present though empty

  const ImapStructure st{"(NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL)",
                         "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)",
                         "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 5 1)"};
  CHECK(decode_structure(encode(st)).value() == st);
  CHECK(decode_structure(encode(ImapStructure{})).value() == ImapStructure{});
  CHECK(decode_subscription(encode_subscription()).is_ok());
}

TEST_CASE("unit: a message read in place views the record", "[mailbox][unit]") {
  MessageRecord m;
  m.flags = {kSeen, {"a", "$b"}};
  m.size = 9;
  m.modseq = 4;
  m.summary = SearchSummary{"f", "t", "c", "b", "s", "i", 77};
  const std::string bytes = encode(m);
  MessageView v;
  v.keywords = {"stale", "stale", "stale"};  // reused: the old content goes
  REQUIRE(decode_message(bytes, v).is_ok());
  CHECK(v.system_flags == kSeen);
  CHECK(v.keywords == std::vector<std::string_view>{"a", "$b"});
  CHECK(v.size == 9);
  CHECK(v.modseq == 4);
  CHECK(v.has_summary);
  CHECK(v.summary.from == "f");
  CHECK(v.summary.message_id == "i");
  CHECK(v.summary.date_ms == 77);
  CHECK(v.summary.subject.data() >= bytes.data());  // a view, not a copy
  CHECK(v.summary.subject.data() < bytes.data() + bytes.size());
  REQUIRE(decode_message(encode(MessageRecord{}), v).is_ok());
  CHECK_FALSE(v.has_summary);
  CHECK(v.summary.from.empty());
  CHECK(v.keywords.empty());
}

TEST_CASE("unit: version-1 records are still read", "[mailbox][unit]") {
  // As the first store wrote them (docs/mailbox-format.md, version 1).
  const std::string box1 = bytes(
      "\x01"
      "\x00\x00\x00\x02"
      "\x00\x00\x00\x07"
      "\x00\x00\x00\x03"
      "\x00\x00\x00\x00\x00\x00\x00\x05"
      "\x00\x00\x00\x02"
      "\x00\x00\x00\x00\x00\x00\x00\x09"
      "\x04");
  const MailboxRecord b = decode_mailbox(box1).value();
  CHECK(b.id == 2);
  CHECK(b.uidvalidity == 7);
  CHECK(b.uidnext == 3);
  CHECK(b.highest_modseq == 5);
  CHECK(b.messages == 2);
  CHECK(b.bytes == 9);
  CHECK(b.special_use == SpecialUse::kJunk);
  CHECK(b.recount);  // unseen and deleted unknown
  CHECK_FALSE(b.noselect);
  CHECK(encode(b)[0] == char(kMailboxRecordVersion));

  const std::string msg1 = bytes(
      "\x01\x05"
      "\x00\x00\x00\x00\x00\x00\x00\x01"
      "\x00\x00\x00\x00\x00\x00\x00\x02"
      "\x00\x00\x00\x00\x00\x00\x00\x03"
      "\x00\x00\x00\x01"
      "\x00\x01\x02"
      "ab");
  const MessageRecord m = decode_message(msg1).value();
  CHECK(m.flags == Flags{kSeen | kFlagged, {"ab"}});
  CHECK(m.internal_date_ms == 1);
  CHECK(m.size == 2);
  CHECK(m.modseq == 3);
  CHECK(m.chunks == 1);
  CHECK_FALSE(m.summary.has_value());
  // A version-1 record cannot say it has a summary.
  CHECK(decode_message(msg1 + std::string(1, '\0')).status().kind() ==
        core::Status::Kind::kCorrupt);
}

TEST_CASE("unit: mailbox record layout is fixed", "[mailbox][unit]") {
  // docs/mailbox-format.md, byte for byte.
  MailboxRecord b{0x01020304, 0x0a0b0c0d, 2, 3, 4, 5, SpecialUse::kJunk, 6, 7, true};
  CHECK(encode(b) == bytes("\x02"
                           "\x01\x02\x03\x04"
                           "\x0a\x0b\x0c\x0d"
                           "\x00\x00\x00\x02"
                           "\x00\x00\x00\x00\x00\x00\x00\x03"
                           "\x00\x00\x00\x04"
                           "\x00\x00\x00\x00\x00\x00\x00\x05"
                           "\x04"
                           "\x00\x00\x00\x06"
                           "\x00\x00\x00\x07"
                           "\x01"));
  MessageRecord m;
  m.flags = {kSeen | kFlagged, {"ab"}};
  m.internal_date_ms = 1;
  m.size = 2;
  m.modseq = 3;
  m.chunks = 1;
  const std::string fixed = bytes(
      "\x02\x05"
      "\x00\x00\x00\x00\x00\x00\x00\x01"
      "\x00\x00\x00\x00\x00\x00\x00\x02"
      "\x00\x00\x00\x00\x00\x00\x00\x03"
      "\x00\x00\x00\x01"
      "\x00\x01\x02"
      "ab");
  CHECK(encode(m) == fixed + bytes("\x00"));
  m.summary = SearchSummary{"f", "", "", "", "s", "", 258};
  CHECK(encode(m) == fixed + bytes("\x01"
                                   "\x00\x00\x00\x00\x00\x00\x01\x02"
                                   "\x00\x00\x00\x01"
                                   "f"
                                   "\x00\x00\x00\x00"
                                   "\x00\x00\x00\x00"
                                   "\x00\x00\x00\x00"
                                   "\x00\x00\x00\x01"
                                   "s"
                                   "\x00\x00\x00\x00"));
  CHECK(encode(ImapStructure{"e", "bs", ""}) == bytes("\x01"
                                                      "\x00\x00\x00\x01"
                                                      "e"
                                                      "\x00\x00\x00\x02"
                                                      "bs"
                                                      "\x00\x00\x00\x00"));
  CHECK(encode_subscription() == bytes("\x01"));
  CHECK(message_key("al", 1, 2) == bytes("ial\0\0\0\0\1\0\0\0\2"));
  CHECK(structure_key("al", 1, 2) == bytes("eal\0\0\0\0\1\0\0\0\2"));
  CHECK(blob_key("al", 1, 2, 3) == bytes("al\0\0\0\0\1\0\0\0\2\0\0\0\3"));
  CHECK(blob_prefix("al", 1) == bytes("al\0\0\0\0\1"));
  CHECK(mailbox_key("al", "INBOX") == bytes("mal\0INBOX"));
  CHECK(subscription_key("al", "a/b") == bytes("sal\0a/b"));
  CHECK(user_key("al") == "ual");
  CHECK(uid_of_message_key(message_key("al", 1, 0xfffffffe)) == 0xfffffffeu);
  CHECK(uid_of_message_key(structure_key("al", 1, 7)) == 7u);
  CHECK_FALSE(uid_of_message_key("short").has_value());
  CHECK(prefix_end(bytes("ab\0")) == bytes("ab\1"));
  CHECK(prefix_end(bytes("a\xff\xff")) == "b");
  CHECK(prefix_end(bytes("\xff")).empty());
  CHECK(prefix_end(message_prefix("al", 1)) == message_prefix("al", 2));
}

TEST_CASE("unit: mailbox records that are not exactly right are corrupt", "[mailbox][unit]") {
  const std::string box = encode(MailboxRecord{});
  MessageRecord with_keyword;
  with_keyword.flags.keywords = {"abc"};
  const std::string msg = encode(with_keyword);
  const std::string structure = encode(ImapStructure{"e", "b", "c"});
  enum Which { kUser, kBox, kMsg, kStruct, kSub };
  const auto [which, bytes, field] = GENERATE_COPY(table<Which, std::string, std::string>({
      {kBox, "", "version"},
      {kBox, "\x01" + box.substr(1), "trailing"},
      {kBox, "\x03" + box.substr(1), "unknown version 3"},
      {kBox, std::string(1, '\0') + box.substr(1), "unknown version 0"},
      {kBox, box.substr(0, box.size() - 1), "attributes"},
      {kBox, box.substr(0, box.size() - 1) + "\x02", "attributes"},
      {kBox, box.substr(0, 33) + "\x06" + box.substr(34), "special use"},
      {kBox, box + "x", "trailing"},
      {kMsg, msg.substr(0, msg.size() - 2), "keyword"},
      {kMsg, msg.substr(0, msg.size() - 1) + "\x02", "summary present"},
      {kMsg, msg.substr(0, msg.size() - 1) + "\x01", "date"},
      {kMsg, msg.substr(0, msg.size() - 1) + "\x01" + std::string(11, '\0') + "\x05f", "from"},
      {kMsg, "\x02\x20" + msg.substr(2), "flags"},
      {kUser, std::string("\x01\x00", 2), "next mailbox id"},
      {kUser, "\x02" + encode(UserRecord{}).substr(1), "unknown version 2"},
      {kStruct, structure.substr(0, structure.size() - 1), "body"},
      {kStruct, structure.substr(0, 4), "envelope"},
      {kStruct, structure + "x", "trailing"},
      {kStruct, "\x02" + structure.substr(1), "unknown version 2"},
      {kSub, "", "version"},
      {kSub, "\x01x", "trailing"},
  }));
  INFO(field);
  const core::Status s = which == kUser     ? decode_user(bytes).status()
                         : which == kBox    ? decode_mailbox(bytes).status()
                         : which == kMsg    ? decode_message(bytes).status()
                         : which == kStruct ? decode_structure(bytes).status()
                                            : decode_subscription(bytes);
  CHECK(s.kind() == core::Status::Kind::kCorrupt);
  CHECK_THAT(s.message(), Catch::Contains(field));
}

TEST_CASE("unit: flags read as IMAP writes them", "[mailbox][unit]") {
  CHECK(flags_text({}) == "");
  CHECK(flags_text({kDraft | kSeen | kDeleted, {"$Forwarded"}}) ==
        "\\Seen \\Deleted \\Draft $Forwarded");
  CHECK(special_use_attribute(SpecialUse::kJunk) == "\\Junk");
  CHECK(special_use_attribute(SpecialUse::kNone).empty());
}
