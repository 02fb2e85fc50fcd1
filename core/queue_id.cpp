#include "core/queue_id.h"

#include <random>

namespace core {
namespace {
constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int decode_char(char c) {
  for (int i = 0; i < 32; ++i)
    if (kAlphabet[i] == c) return i;
  return -1;
}
}  // namespace

QueueIdGenerator::QueueIdGenerator() {
  std::random_device rd;
  seq_ = (static_cast<uint64_t>(rd()) << 4) ^ rd();
}

std::string QueueIdGenerator::next(int64_t now_ms) {
  // Never go backwards in time: a clock step back would break arrival order.
  int64_t last = last_ms_.load();
  while (now_ms > last && !last_ms_.compare_exchange_weak(last, now_ms)) {
  }
  const uint64_t ms = static_cast<uint64_t>(std::max(now_ms, last)) & ((1ULL << 44) - 1);
  const uint64_t seq = seq_.fetch_add(1) & ((1ULL << 36) - 1);
  // 80 bits = ms(44) | seq(36), written 5 bits at a time from the top.
  std::string out(kQueueIdLength, '0');
  for (int i = 0; i < 16; ++i) {
    const int shift = 75 - 5 * i;  // bit offset of this character in the 80-bit value
    uint64_t v;
    if (shift >= 36) {
      v = ms >> (shift - 36);
    } else if (shift + 5 <= 36) {
      v = seq >> shift;
    } else {  // straddles the two fields
      v = (ms << (36 - shift)) | (seq >> shift);
    }
    out[i] = kAlphabet[v & 31];
  }
  return out;
}

bool is_valid_queue_id(std::string_view id) {
  if (id.size() != kQueueIdLength) return false;
  for (char c : id)
    if (decode_char(c) < 0) return false;
  return true;
}

int64_t queue_id_time_ms(std::string_view id) {
  // The first 44 bits: 8 characters give 40 bits, the 9th's top 4 bits the rest.
  uint64_t v = 0;
  for (int i = 0; i < 9 && i < static_cast<int>(id.size()); ++i)
    v = (v << 5) | static_cast<uint64_t>(std::max(decode_char(id[i]), 0));
  return static_cast<int64_t>(v >> 1);
}

}  // namespace core
