#pragma once
// Response: what a handler answers (status, header fields, body), and its serialization to
// HTTP/1.1 wire bytes.
//
// serialize() owns the framing fields: Content-Length, Date and Connection are written by it
// and any the handler set are replaced, so a handler cannot desynchronise the stream. Fields
// with a name that is not a token or a value holding CR, LF or NUL are dropped (no response
// splitting). 1xx, 204 and 304 responses carry neither a body nor Content-Length.
//
// Threading: plain values; any thread may build a Response.
// Limits: no chunked responses: the whole body is in memory.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "mta/http/headers.h"

namespace mta::http {

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
};

// application/json; the body is dump()ed compactly, with invalid UTF-8 replaced (U+FFFD)
// rather than thrown about.
Response json(int status, const nlohmann::json& body);
Response text(int status, std::string body,
              std::string_view content_type = "text/plain; charset=utf-8");

struct WireOptions {
  int64_t now_ms = 0;          // for the Date field
  bool close = false;          // "Connection: close": the last response on the connection
  bool keep_alive_10 = false;  // "Connection: keep-alive", for an HTTP/1.0 client that asked
  bool head = false;           // the answer to HEAD: fields as for GET, no body
};
std::string serialize(const Response& response, const WireOptions& options);

// The interim response a client waiting on "Expect: 100-continue" needs.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// "Not Found" for 404 and the other codes of RFC 9110 §15; "Unknown" otherwise.
std::string_view reason_phrase(int status);
// IMF-fixdate (RFC 9110 §5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(int64_t unix_ms);

}  // namespace mta::http
