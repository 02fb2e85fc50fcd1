#include "queue/record.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using queue::MessageRecord;
using queue::MessageState;
using queue::RecipientState;
using queue::RecipientStatus;
using Kind = core::Status::Kind;

namespace {

constexpr char kId[] = "0QK3ZJ5V8E2MA4BT";  // 16 characters, as core queue IDs

MessageRecord base_record() {
  MessageRecord r;
  r.id = kId;
  r.envelope.sender = {"a", "b.c"};
  r.envelope.recipients.push_back({{"x", "y.z"}, 0, ""});
  r.status.resize(1);
  r.body_size = 1234;
  r.body_chunks = 1;
  r.created_ms = 1'700'000'000'000;
  r.next_attempt_ms = r.created_ms;
  return r;
}

MessageRecord full_record() {
  MessageRecord r = base_record();
  core::Envelope& e = r.envelope;
  e.sender = {"Bounce.Me", "example.org"};
  e.recipients = {{{"one", "example.net"},
                   core::kNotifySuccess | core::kNotifyFailure,
                   "rfc822;one@example.net"},
                  {{"\"two words\"", "[192.0.2.1]"}, core::kNotifyNever, ""},
                  {{"three", "example.com"}, core::kNotifyDelay, "rfc822;alias@example.com"}};
  e.body = core::BodyType::kBinaryMime;
  e.smtputf8 = false;
  e.ret = core::DsnRet::kFull;
  e.envid = "QQ314159";
  e.declared_size = 52'428'800;
  e.client_ip = "2001:db8::25";
  e.client_helo = "mail.example.org";
  e.auth_user = "alice";
  e.listener = "submissions";
  e.tls = true;
  e.quarantine = true;
  e.received_at_ms = 1'700'000'000'123;
  r.status = {
      {RecipientState::kDelivered, 1, 1'700'000'060'000, "250 2.0.0 Ok: queued as 4XyZ",
       "mx1.example.net[198.51.100.25]:25"},
      {RecipientState::kFailed, 1, 1'700'000'060'500, "550 5.1.1 No such user", "[192.0.2.1]:25"},
      {RecipientState::kPending, 7, 1'700'003'600'000, "451 4.7.1 Greylisted", ""}};
  r.body_size = 3 * 1024 * 1024;
  r.body_chunks = 48;
  r.next_attempt_ms = 1'700'007'200'000;
  r.state = MessageState::kDeferred;
  r.delay_warned = true;
  return r;
}

MessageRecord utf8_record() {
  MessageRecord r = base_record();
  r.envelope.sender = {"用户", "例子.测试"};
  r.envelope.recipients = {{{"δοκιμή", "παράδειγμα.δοκιμή"}, 0, "utf-8;δοκιμή@παράδειγμα.δοκιμή"},
                           {{"ascii", "example.com"}, 0, ""}};
  r.status.resize(2);
  r.envelope.smtputf8 = true;
  r.envelope.client_helo = "почта.пример";
  r.status[0].last_reply = "550 5.1.1 «нет такого»";
  return r;
}

MessageRecord null_sender_record() {
  MessageRecord r = base_record();
  r.envelope.sender = {};  // a bounce: MAIL FROM:<>
  r.envelope.ret = core::DsnRet::kHeaders;
  r.state = MessageState::kHeld;
  return r;
}

MessageRecord no_recipients_record() {
  MessageRecord r = base_record();
  r.envelope.recipients.clear();
  r.status.clear();
  r.body_size = 0;
  r.body_chunks = 0;
  return r;
}

MessageRecord extremes_record() {
  MessageRecord r = full_record();
  r.envelope.declared_size = std::numeric_limits<uint64_t>::max();
  r.envelope.received_at_ms = std::numeric_limits<int64_t>::min();
  r.created_ms = std::numeric_limits<int64_t>::max();
  r.next_attempt_ms = -1;
  r.status[0].attempts = std::numeric_limits<uint32_t>::max();
  r.status[1].last_attempt_ms = std::numeric_limits<int64_t>::min();
  r.body_size = std::numeric_limits<uint64_t>::max();
  r.body_chunks = std::numeric_limits<uint32_t>::max();
  r.status[2].last_reply = std::string(300, 'r') + std::string("\0\r\n", 3);  // long, odd bytes
  r.envelope.envid = std::string("a\0b", 3);
  return r;
}

}  // namespace

TEST_CASE("record: round trip keeps every field", "[queue][unit]") {
  using Maker = MessageRecord (*)();
  const auto [name, make] = GENERATE(table<const char*, Maker>({
      {"minimal", base_record},
      {"full, with DSN fields and delivery state", full_record},
      {"UTF-8 addresses", utf8_record},
      {"null sender", null_sender_record},
      {"no recipients", no_recipients_record},
      {"extreme values", extremes_record},
  }));
  INFO(name);
  const MessageRecord r = make();
  const std::string bytes = queue::encode_record(r);
  REQUIRE(!bytes.empty());
  CHECK(static_cast<uint8_t>(bytes[0]) == queue::kRecordVersion);
  auto back = queue::decode_record(bytes);
  INFO(back.status().to_string());
  REQUIRE(back.is_ok());
  CHECK(*back == r);
  CHECK(back->status.size() == back->envelope.recipients.size());
}

TEST_CASE("record: unknown versions are refused", "[queue][unit]") {
  const int version = GENERATE(0, 3, 255);
  std::string bytes = queue::encode_record(base_record());
  bytes[0] = static_cast<char>(version);
  auto r = queue::decode_record(bytes);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().kind() == Kind::kCorrupt);
  CHECK_THAT(r.status().message(),
             Catch::Contains("unknown format version " + std::to_string(version)));
}

TEST_CASE("record: version 1 records (no quarantine byte) are still read", "[queue][unit]") {
  MessageRecord r = full_record();
  r.envelope.quarantine = false;
  std::string v2 = queue::encode_record(r);
  // Field 14a sits right before "received at"; find it by encoding with and without it.
  MessageRecord q = r;
  q.envelope.quarantine = true;
  const std::string v2q = queue::encode_record(q);
  size_t at = 0;
  while (at < v2.size() && v2[at] == v2q[at]) ++at;
  REQUIRE(at < v2.size());
  std::string v1 = v2.substr(0, at) + v2.substr(at + 1);
  v1[0] = 1;
  auto back = queue::decode_record(v1);
  INFO(back.status().to_string());
  REQUIRE(back.is_ok());
  CHECK(*back == r);
  auto back_q = queue::decode_record(v2q);
  REQUIRE(back_q.is_ok());
  CHECK(back_q->envelope.quarantine);
}

TEST_CASE("record: truncated, padded or out-of-range input is corrupt", "[queue][unit]") {
  const std::string good = queue::encode_record(full_record());

  SECTION("every proper prefix") {
    for (size_t n = 0; n < good.size(); ++n) {
      auto r = queue::decode_record(std::string_view(good).substr(0, n));
      INFO("prefix of " << n << " bytes");
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().kind() == Kind::kCorrupt);
    }
  }
  SECTION("a trailing byte") {
    auto r = queue::decode_record(good + '\0');
    REQUIRE_FALSE(r.is_ok());
    CHECK_THAT(r.status().message(), Catch::Contains("trailing bytes"));
  }
  SECTION("an enum out of range") {
    // version, id (1+16), sender local "a" (1+1), sender domain "b.c" (1+3), then body type.
    std::string bytes = queue::encode_record(base_record());
    REQUIRE(bytes[24] == static_cast<char>(core::BodyType::k7Bit));
    bytes[24] = 3;
    auto r = queue::decode_record(bytes);
    REQUIRE_FALSE(r.is_ok());
    CHECK_THAT(r.status().message(), Catch::Contains("body type at byte 24: value 3 out of range"));
  }
  SECTION("lengths and counts that lie") {
    const auto [bytes, why] = GENERATE(table<std::string, std::string>({
        {std::string("\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11),
         "id at byte 1: truncated"},
        {std::string("\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11), "varint overflows"},
        {std::string("\x02\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12), "varint overflows"},
    }));
    auto r = queue::decode_record(bytes);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().kind() == Kind::kCorrupt);
    CHECK_THAT(r.status().message(), Catch::Contains(why));
  }
  SECTION("a recipient count larger than the record") {
    MessageRecord rec = no_recipients_record();
    rec.created_ms = rec.next_attempt_ms = 0;
    std::string bytes = queue::encode_record(rec);
    // Six one-byte message fields follow the recipient count.
    const size_t at = bytes.size() - 7;
    REQUIRE(bytes[at] == '\0');
    bytes.replace(at, 1, "\xe8\x07");  // 1000 recipients
    auto r = queue::decode_record(bytes);
    REQUIRE_FALSE(r.is_ok());
    CHECK_THAT(r.status().message(),
               Catch::Contains("recipient count at byte " + std::to_string(at) +
                               ": count exceeds the record"));
  }
}

TEST_CASE("record: damaged bytes never crash the decoder", "[queue][unit]") {
  const std::string good = queue::encode_record(full_record());
  const int value = GENERATE(0x00, 0x01, 0x7f, 0x80, 0xff);
  for (size_t i = 1; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(value);
    auto r = queue::decode_record(bad);
    INFO("byte " << i << " set to " << value);
    CHECK((r.is_ok() || r.status().kind() == Kind::kCorrupt));
  }
}

TEST_CASE("record: body keys sort chunks in numeric order", "[queue][unit]") {
  const std::vector<uint32_t> chunks = {
      0, 1, 255, 256, 65535, 65536, 16'777'216, std::numeric_limits<uint32_t>::max()};
  std::string prev;
  for (uint32_t c : chunks) {
    const std::string key = queue::body_key(kId, c);
    CHECK(key.size() == 16 + 4);
    CHECK(key > prev);
    prev = key;
    const auto parsed = queue::parse_body_key(key);
    REQUIRE(parsed);
    CHECK(parsed->id == kId);
    CHECK(parsed->chunk == c);
  }
  CHECK_FALSE(queue::parse_body_key("abcd"));
}

TEST_CASE("record: schedule keys sort by due time, then ID", "[queue][unit]") {
  const std::vector<std::pair<int64_t, std::string>> order = {
      {0, "0000000000000001"},
      {1, "0000000000000000"},
      {255, "0000000000000000"},
      {256, "0000000000000000"},
      {1'700'000'000'000, "0000000000000000"},
      {1'700'000'000'000, "ZZZZZZZZZZZZZZZZ"},
      {1'700'000'000'001, "0000000000000000"},
      {std::numeric_limits<int64_t>::max(), "0000000000000000"},
  };
  std::string prev;
  for (const auto& [due, id] : order) {
    const std::string key = queue::schedule_key(due, id);
    CHECK(key.size() == 8 + id.size());
    CHECK(key > prev);
    prev = key;
    const auto parsed = queue::parse_schedule_key(key);
    REQUIRE(parsed);
    CHECK(parsed->due_ms == due);
    CHECK(parsed->id == id);
  }
  CHECK(queue::schedule_key(-5, kId) == queue::schedule_key(0, kId));
  CHECK_FALSE(queue::parse_schedule_key("12345678"));
  CHECK_FALSE(queue::parse_schedule_key(std::string("\x80\0\0\0\0\0\0\0X", 9)));
}
