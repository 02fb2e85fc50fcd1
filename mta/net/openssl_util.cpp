#include "mta/net/openssl_util.h"

#include <openssl/err.h>

#include <cstring>

namespace net::detail {

std::string openssl_errors(std::string_view fallback) {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    // System errors carry errno as their reason, which OpenSSL does not name itself.
    const char* reason =
        ERR_SYSTEM_ERROR(e) ? std::strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
    char buf[256];
    if (reason == nullptr) {
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
    // A failed fopen() queues the same cause at several layers; say it once.
    if (out.find(reason) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out.empty() ? std::string(fallback) : out;
}

}  // namespace net::detail
