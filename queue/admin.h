#pragma once
// The read side of queue administration: which messages match a filter (`porter queue list`,
// the admin API's list), and the shape of the queue by destination and age (Postfix's
// qshape). Changes to the queue (hold, release, delete, bounce, flush) are not here: they go
// through the delivery loop (queue::Scheduler, mta::DeliveryService).
//
// Every function reads the envelopes family through one RocksDB iterator, which reads one
// consistent state (its implicit snapshot) without a lock and without writing, so any thread
// may call them while delivery runs; a message that changes meanwhile is seen as it was when
// the scan began. Scans do not fill the block cache, which stays the delivery loop's.
//
// Thread safety: any thread (RocksDB's guarantee); the Db must outlive the call.
// Limits: a scan reads and decodes every record (about 100,000 per second per core); there is
// no secondary index. Records that cannot be decoded are skipped and their IDs reported, so
// that one bad record does not hide the rest of the queue. Ages are measured from the time
// the message was queued (record `created`); a clock stepped backwards counts as age 0.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "queue/db.h"
#include "queue/record.h"

namespace queue {

// Every field set must match (AND). Text comparisons ignore ASCII case. The recipient
// fields look at pending recipients only: delivered and failed ones are no longer the
// queue's business.
struct ListFilter {
  // A substring of the sender address "local@domain"; "<>" matches only the null sender.
  std::optional<std::string> sender;
  // A substring of some pending recipient's address.
  std::optional<std::string> recipient;
  // Some pending recipient's domain, exactly ("example.com" does not match "a.example.com").
  std::optional<std::string> domain;
  std::optional<MessageState> state;
  std::optional<int64_t> min_age_ms;  // queued at least this long ago
  std::optional<int64_t> max_age_ms;  // queued at most this long ago
  // A substring of some pending recipient's last reply ("Greylisted", "4.7.1", "timed out").
  std::optional<std::string> error;
  size_t limit = 1000;  // at most this many matches per page
  // Paging: start after this queue ID (the `next_after` of the previous page).
  std::optional<std::string> after;
};

struct ListPage {
  size_t matched = 0;  // messages handed to `visit` on this page
  size_t scanned = 0;  // records read
  // The cursor for the next page when this one ended at `limit` (the next page may be
  // empty); nullopt when the scan reached the end of the queue.
  std::optional<std::string> next_after;
  std::vector<std::string> unreadable;  // IDs of records that could not be decoded
};

// Hands every matching record to `visit`, in ID (= arrival) order, up to filter.limit, or
// until `visit` returns false (which ends the page as the limit does). kInvalid for a limit
// of 0 or a negative age; other errors are RocksDB's.
core::Result<ListPage> list_messages(const Db& db, const ListFilter& filter, int64_t now_ms,
                                     const std::function<bool(const MessageRecord&)>& visit);

// "active", "deferred", "held" (state_name's words); kInvalid naming the accepted words.
core::Result<MessageState> parse_state(std::string_view text);
// "90s", "10m", "2h", "3d", "1w" as milliseconds: digits and exactly one unit; kInvalid
// otherwise (a bare number is refused rather than guessed at).
core::Result<int64_t> parse_age(std::string_view text);

// qshape's age buckets, in minutes since the message was queued: 0-5, 5-10, 10-20, 20-40,
// 40-80, 80-160, 160-320 and 320+ (lower bound included, upper excluded).
inline constexpr size_t kAgeBuckets = 8;
inline constexpr std::array<int64_t, kAgeBuckets - 1> kAgeBucketBoundsMinutes = {5,  10,  20, 40,
                                                                                 80, 160, 320};
// "0-5m", "5-10m", ... "320m+": the column titles.
const std::array<std::string_view, kAgeBuckets>& age_bucket_labels();
// The bucket an age falls in (negative ages in the first).
size_t age_bucket(int64_t age_ms);

// Pending recipients for one destination domain, by the age of their message.
struct DomainShape {
  std::string domain;
  uint64_t total = 0;
  std::array<uint64_t, kAgeBuckets> buckets{};
};

struct QueueSummary {
  // One row per recipient domain with pending recipients: most recipients first, then by
  // domain name.
  std::vector<DomainShape> domains;
  DomainShape all;  // every pending recipient (domain "TOTAL")
  uint64_t messages = 0;
  std::array<uint64_t, 3> by_state{};  // messages, indexed by MessageState
  int64_t oldest_age_ms = 0;           // 0 for an empty queue
  std::string oldest_id;               // empty for an empty queue
  std::vector<std::string> unreadable;
};

core::Result<QueueSummary> summary(const Db& db, int64_t now_ms);

}  // namespace queue
