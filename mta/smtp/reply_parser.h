#pragma once
// A push parser for SMTP replies as a server sends them (RFC 5321 §4.2), for the client side.
//
// feed() appends bytes split anywhere; next() returns the next complete reply, nullopt when
// more bytes are needed, or an error. Multi-line replies ("250-a", "250 b") become one
// core::Reply whose text lines are joined by '\n'. An RFC 3463 enhanced status code at the
// start of the first line ("550 5.1.1 ...") goes into Reply::enhanced and is removed from
// every line that repeats it (RFC 2034 §3 repeats it on each line); it is recognised whether
// or not the server advertised ENHANCEDSTATUSCODES, but only when its class digit matches the
// reply code's. When there is none, enhanced stays empty: the caller decides what to derive.
//
// Tolerated: a bare LF as line end, a last line of just the three digits. Refused (a protocol
// error, after which the parser stays failed): a line that is not "ddd", "ddd " or "ddd-"
// followed by text with a first digit of 2 to 5, codes that differ between the lines of one
// reply, a line longer than max_line octets (without its line end), more than max_lines lines.
//
// Lifetime: one per connection; not thread-safe. Memory is bounded by max_line * max_lines.

#include <optional>
#include <string>
#include <string_view>

#include "core/reply.h"
#include "core/status.h"

namespace mta::smtp {

class ReplyParser {
 public:
  ReplyParser(size_t max_line, size_t max_lines);

  void feed(std::string_view bytes);
  // Consumes one reply from the buffer. After an error every later call returns it again.
  core::Result<std::optional<core::Reply>> next();
  // Forgets buffered bytes and any partial reply (STARTTLS: nothing sent in clear before the
  // handshake may be read as if it came over TLS, RFC 3207 §4.2).
  void clear();

 private:
  core::Status fail(std::string message);

  size_t max_line_;
  size_t max_lines_;
  std::string in_;    // from the first line not yet parsed
  size_t lines_ = 0;  // lines of the reply being assembled in partial_
  core::Reply partial_;
  core::Status error_;
};

}  // namespace mta::smtp
