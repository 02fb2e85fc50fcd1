#pragma once
// Fixed-width big-endian integers, as the queue's keys and values store them (big-endian
// so that keys sort by number). Pure functions.

#include <cstdint>
#include <string>
#include <string_view>

namespace queue {

// Appends the low `bytes` bytes of v, most significant first.
inline void put_fixed_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// The number in `in` (at most 8 bytes), most significant byte first.
inline uint64_t get_fixed_be(std::string_view in) {
  uint64_t v = 0;
  for (char c : in) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

}  // namespace queue
