#include "policy/dkim_lib.h"

#include <openssl/err.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace policy::dkim_internal {
namespace {

// dkim_chunk() takes a non-const buffer; the message is copied through this much at a time
// rather than handing OpenDKIM a pointer into the caller's read-only bytes.
constexpr size_t kChunkBytes = 16 * 1024;

bool header_section_read(DKIM* dkim) {
  DKIM_SIGINFO** list = nullptr;
  int count = 0;
  return dkim_getsiglist(dkim, &list, &count) == DKIM_STAT_OK;
}

DKIM_STAT feed(DKIM* dkim, std::string_view message, bool header_section_only) {
  std::array<unsigned char, kChunkBytes> buffer;
  while (!message.empty()) {
    const size_t n = std::min(message.size(), buffer.size());
    std::memcpy(buffer.data(), message.data(), n);
    const DKIM_STAT status = dkim_chunk(dkim, buffer.data(), n);
    if (status != DKIM_STAT_OK) return status;
    message.remove_prefix(n);
    if (header_section_only && header_section_read(dkim)) return DKIM_STAT_OK;
  }
  return dkim_chunk(dkim, nullptr, 0);
}

}  // namespace

void HandleFreer::operator()(DKIM* dkim) const {
  dkim_free(dkim);
  ERR_clear_error();
}

std::shared_ptr<DKIM_LIB> make_lib(unsigned flags) {
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (lib == nullptr) return nullptr;
  std::shared_ptr<DKIM_LIB> owned(lib, [](DKIM_LIB* l) { dkim_close(l); });
  if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK)
    return nullptr;
  return owned;
}

DKIM_STAT feed_message(DKIM* dkim, std::string_view message) {
  return feed(dkim, message, /*header_section_only=*/false);
}

DKIM_STAT feed_header_section(DKIM* dkim, std::string_view message) {
  return feed(dkim, message, /*header_section_only=*/true);
}

std::string describe(DKIM* dkim, DKIM_STAT status) {
  const char* name = dkim_getresultstr(status);
  std::string text = name != nullptr ? name : "status " + std::to_string(status);
  const char* detail = dkim != nullptr ? dkim_geterror(dkim) : nullptr;
  if (detail != nullptr && detail[0] != '\0') text += std::string(": ") + detail;
  return text;
}

}  // namespace policy::dkim_internal
