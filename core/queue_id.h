#pragma once
// Queue IDs: unique, sortable by arrival, safe in file names and log lines.
//
// An ID is 16 characters of Crockford base32 (0-9, A-Z without I L O U) encoding 80 bits:
// 44 bits of milliseconds since the Unix epoch, then a 36-bit sequence. The sequence
// starts at a random value for each process and is shared by all threads, so IDs made in
// the same millisecond by different threads or an earlier run of the daemon do not collide.
// Because the alphabet is in ASCII order and the width fixed, byte order is arrival order.
//
// Thread safety: next() may be called from any thread.

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace core {

class QueueIdGenerator {
 public:
  QueueIdGenerator();
  std::string next(int64_t now_ms);

 private:
  std::atomic<uint64_t> seq_;
  std::atomic<int64_t> last_ms_{0};
};

constexpr size_t kQueueIdLength = 16;
bool is_valid_queue_id(std::string_view id);
// Milliseconds since the epoch at which the ID was made.
int64_t queue_id_time_ms(std::string_view id);

}  // namespace core
