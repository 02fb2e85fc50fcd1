#pragma once
// The persistent form of one queued message and the keys of the queue's column families
// (layout and version rule in docs/queue-format.md).
//
// A MessageRecord is the envelope as accepted plus what delivery has learnt since: one
// RecipientStatus per recipient, when to try next, and where the body is. encode_record()
// writes format version 2 (version 1 lacked the quarantine byte and is still read); decode_record() takes untrusted bytes and returns kCorrupt for
// anything it cannot read exactly (unknown version, truncation, out-of-range values,
// trailing bytes); it never crashes and never guesses.
//
// Thread safety: pure functions on values.
// Limits: a change of layout is a new version byte; old versions keep their decoder.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.h"
#include "core/status.h"

namespace queue {

inline constexpr uint8_t kRecordVersion = 2;

// A recipient only moves forward: kPending (attempts may grow) -> kDelivered | kFailed.
enum class RecipientState : uint8_t { kPending = 0, kDelivered = 1, kFailed = 2 };

struct RecipientStatus {
  RecipientState state = RecipientState::kPending;
  uint32_t attempts = 0;
  int64_t last_attempt_ms = 0;  // Unix time; 0 when never tried
  std::string last_reply;       // "450 4.2.0 Mailbox busy", as the server (or we) said it
  std::string remote_mta;       // who said it, "mx.example.com[192.0.2.1]:25" (DSN Remote-MTA)
  bool operator==(const RecipientStatus&) const = default;
};

// kActive: waiting for its first attempt. kDeferred: waiting after a temporary failure.
// Both have a schedule entry at next_attempt_ms. kHeld: put aside by the administrator, no
// schedule entry until released.
enum class MessageState : uint8_t { kActive = 0, kDeferred = 1, kHeld = 2 };

// "pending", "delivered", "failed" / "active", "deferred", "held", for people and logs.
const char* recipient_state_name(RecipientState s);
const char* state_name(MessageState s);

struct MessageRecord {
  std::string id;  // core queue ID
  core::Envelope envelope;
  std::vector<RecipientStatus> status;  // exactly one per envelope.recipients, same order
  uint64_t body_size = 0;               // bytes over all chunks
  uint32_t body_chunks = 0;             // chunks 0 .. body_chunks-1 in the bodies family
  int64_t next_attempt_ms = 0;          // the due time in this message's schedule key
  MessageState state = MessageState::kActive;
  int64_t created_ms = 0;
  bool delay_warned = false;  // the delay DSN has been sent, do not send it again
  bool operator==(const MessageRecord&) const = default;
};

// Requires record.status.size() == record.envelope.recipients.size().
std::string encode_record(const MessageRecord& record);
core::Result<MessageRecord> decode_record(std::string_view bytes);

// Keys. Queue IDs have a fixed length, so an ID followed by anything never collides with
// another ID.
//   envelopes: id
//   bodies:    id + chunk index (4 bytes, big-endian): a prefix scan yields chunks in order
//   schedule:  due_ms (8 bytes, big-endian) + id: a scan from the front yields what is due
//              first; negative times are stored as 0
std::string body_key(std::string_view id, uint32_t chunk);
std::string schedule_key(int64_t due_ms, std::string_view id);

struct BodyKey {
  std::string_view id;
  uint32_t chunk = 0;
};
struct ScheduleKey {
  int64_t due_ms = 0;
  std::string_view id;
};
// nullopt when the key is too short to be one; the views point into `key`.
std::optional<BodyKey> parse_body_key(std::string_view key);
std::optional<ScheduleKey> parse_schedule_key(std::string_view key);

}  // namespace queue
