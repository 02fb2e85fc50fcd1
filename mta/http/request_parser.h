#pragma once
// RequestParser: a sans-IO HTTP/1.1 request parser (RFC 9112). feed() bytes as they arrive,
// then call next() until it says NeedMore: each call yields a complete Request, a
// SendContinue hint or a ParseError. It never does I/O and keeps no clock.
//
// Framing is strict because requests may come through proxies that frame differently
// (request smuggling): a request with both Content-Length and Transfer-Encoding, differing
// Content-Lengths, obs-fold, whitespace before a field's colon, a bare LF or a bare CR in
// the head or in chunk framing, or a Transfer-Encoding whose last coding is not "chunked"
// is refused (400); other codings before "chunked" are 501. After an error the parser stays
// failed: the caller answers error.status with "Connection: close" and closes.
//
// Pipelining: bytes after one request stay buffered for the next; the caller decides when to
// ask (one request at a time). Leading empty lines before a request line are skipped
// (RFC 9112 §2.2).
//
// Threading: a plain value, one per connection. Limits: see Limits; trailer fields are
// checked and dropped; absolute-form targets are reduced to path and query (the authority is
// ignored); CONNECT's authority-form is refused (400).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mta/http/headers.h"

namespace mta::http {

struct Limits {
  size_t max_header_bytes = 16 * 1024;  // the field lines (and, apart, the trailer lines): 431
  size_t max_target_bytes = 8 * 1024;   // the request-target: 414
  size_t max_body_bytes = 1024 * 1024;  // after de-chunking: 413
};

struct Request {
  std::string method;  // case-sensitive, as sent (RFC 9110 §9.1)
  std::string target;  // the request-target as sent
  // The target's path, not percent-decoded ("/v1/users/a%40b" stays so: a decoded "%2F"
  // would change the route); "*" for "OPTIONS *". Decode segments with percent_decode().
  std::string path;
  std::string query;                                              // after '?', as sent; "" if none
  std::vector<std::pair<std::string, std::string>> query_params;  // decoded, in order
  int version_minor = 1;  // HTTP/1.0 or HTTP/1.1 (a higher 1.x is treated as 1.1)
  Headers headers;
  std::string body;  // de-chunked
  // The connection may carry another request: HTTP/1.1 unless "Connection: close",
  // HTTP/1.0 only with "Connection: keep-alive".
  bool keep_alive = true;
  // Set by HttpServer, not by the parser: who sent it ("unix" over a unix-domain socket,
  // where the file's mode is the access control) and whether TLS carried it.
  std::string peer_ip;
  bool tls = false;

  bool from_unix_socket() const { return peer_ip == "unix"; }
  // The first value of a query parameter.
  std::optional<std::string_view> query_param(std::string_view name) const;
};

// Why a request was refused, and the status to answer with: 400, 413, 414, 417, 431, 501
// or 505.
struct ParseError {
  int status = 400;
  std::string reason;  // for logs and the response body: "bare LF in the header section"
};

// Nothing complete yet: feed more bytes.
struct NeedMore {};
// The head is complete, valid, announced "Expect: 100-continue" and no body byte has come:
// the client waits for an interim "100 Continue" (RFC 9110 §10.1.1). Call next() again.
struct SendContinue {};

using ParseStep = std::variant<NeedMore, SendContinue, Request, ParseError>;

class RequestParser {
 public:
  explicit RequestParser(Limits limits = {});

  void feed(std::string_view bytes);
  ParseStep next();
  // Bytes fed and not yet part of a returned request (a partial or pipelined one).
  size_t buffered_bytes() const { return buf_.size() - pos_; }
  // Between requests with nothing buffered: closing now cuts no request short.
  bool idle() const { return state_ == State::kStart && buffered_bytes() == 0; }

 private:
  // kStart -> kHeaders -> (kBody | kChunkSize) -> back to kStart with a Request;
  // kChunkSize -> kChunkData -> kChunkEnd -> kChunkSize, and a zero-size chunk -> kTrailers;
  // any -> kFailed (final).
  enum class State {
    kStart,
    kHeaders,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkEnd,
    kTrailers,
    kFailed
  };
  enum class Line { kOk, kNeedMore, kTooLong, kBad };

  Line take_line(size_t max_bytes, std::string_view* line);
  std::optional<ParseError> parse_request_line(std::string_view line);
  std::optional<ParseError> parse_field(std::string_view line, bool trailer);
  std::optional<ParseError> finish_head();
  std::optional<ParseError> parse_chunk_size(std::string_view line);
  ParseError fail(int status, std::string reason);
  Request complete();

  Limits limits_;
  State state_ = State::kStart;
  std::string buf_;
  size_t pos_ = 0;   // first byte not yet consumed
  size_t scan_ = 0;  // where the search for the next LF resumes
  size_t head_bytes_ = 0;
  uint64_t remaining_ = 0;  // of the body or of the current chunk
  bool expect_continue_ = false;
  Request cur_;
  ParseError error_;
};

// Decodes %XX escapes (and '+' as a space when plus_is_space, for query strings); nullopt
// for a malformed escape.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);

}  // namespace mta::http
