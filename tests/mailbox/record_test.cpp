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
  CHECK(decode_mailbox(encode(b)).value() == b);

  MessageRecord m;
  m.flags.system = kSeen | kDraft;
  m.flags.keywords = {"$Label1", "NonJunk", std::string(255, 'k')};
  m.internal_date_ms = 1'700'000'000'123;
  m.size = 3 << 20;
  m.modseq = 99;
  m.chunks = 3;
  CHECK(decode_message(encode(m)).value() == m);
  CHECK(decode_message(encode(MessageRecord{})).value() == MessageRecord{});
}

TEST_CASE("unit: mailbox record layout is fixed", "[mailbox][unit]") {
  // docs/mailbox-format.md, byte for byte.
  MailboxRecord b{0x01020304, 0x0a0b0c0d, 2, 3, 4, 5, SpecialUse::kJunk};
  CHECK(encode(b) == bytes("\x01"
                           "\x01\x02\x03\x04"
                           "\x0a\x0b\x0c\x0d"
                           "\x00\x00\x00\x02"
                           "\x00\x00\x00\x00\x00\x00\x00\x03"
                           "\x00\x00\x00\x04"
                           "\x00\x00\x00\x00\x00\x00\x00\x05"
                           "\x04"));
  MessageRecord m;
  m.flags = {kSeen | kFlagged, {"ab"}};
  m.internal_date_ms = 1;
  m.size = 2;
  m.modseq = 3;
  m.chunks = 1;
  CHECK(encode(m) == bytes("\x01\x05"
                           "\x00\x00\x00\x00\x00\x00\x00\x01"
                           "\x00\x00\x00\x00\x00\x00\x00\x02"
                           "\x00\x00\x00\x00\x00\x00\x00\x03"
                           "\x00\x00\x00\x01"
                           "\x00\x01\x02"
                           "ab"));
  CHECK(message_key("al", 1, 2) == bytes("ial\0\0\0\0\1\0\0\0\2"));
  CHECK(blob_key("al", 1, 2, 3) == bytes("al\0\0\0\0\1\0\0\0\2\0\0\0\3"));
  CHECK(mailbox_key("al", "INBOX") == bytes("mal\0INBOX"));
  CHECK(user_key("al") == "ual");
  CHECK(uid_of_message_key(message_key("al", 1, 0xfffffffe)) == 0xfffffffeu);
  CHECK_FALSE(uid_of_message_key("short").has_value());
}

TEST_CASE("unit: mailbox records that are not exactly right are corrupt", "[mailbox][unit]") {
  const std::string box = encode(MailboxRecord{});
  MessageRecord with_keyword;
  with_keyword.flags.keywords = {"abc"};
  const std::string msg = encode(with_keyword);
  enum Which { kUser, kBox, kMsg };
  const auto [which, bytes, field] = GENERATE_COPY(table<Which, std::string, std::string>({
      {kBox, "", "version"},
      {kBox, "\x02" + box.substr(1), "unknown version 2"},
      {kBox, box.substr(0, box.size() - 1), "special use"},
      {kBox, box.substr(0, box.size() - 1) + "\x06", "special use"},
      {kBox, box + "x", "trailing"},
      {kMsg, msg.substr(0, msg.size() - 1), "keyword"},
      {kMsg, "\x01\x20" + msg.substr(2), "flags"},
      {kUser, std::string("\x01\x00", 2), "next mailbox id"},
  }));
  INFO(field);
  const core::Status s = which == kUser  ? decode_user(bytes).status()
                         : which == kBox ? decode_mailbox(bytes).status()
                                         : decode_message(bytes).status();
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
