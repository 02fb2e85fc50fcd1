#pragma once
// http_request: one blocking HTTP/1.1 request over libcurl, for the `porter` command line
// talking to a running server's admin API (usually over its unix socket).
//
// Threading: any thread; each call makes and frees its own curl handle (curl_global_init
// runs once, on first use). It blocks for up to timeout_ms.
// Limits: no redirects, no cookies, no retries, no proxy (environment proxies are ignored);
// the whole response body is held in memory.

#include <string>
#include <string_view>

#include "core/status.h"
#include "mta/http/headers.h"

namespace mta::http {

// Where the server is: a unix-domain socket, or a base URL ("http://127.0.0.1:8080",
// "https://mx.example.org:8443") that the request path is appended to.
struct Endpoint {
  std::string unix_path;
  std::string base_url;
  std::string ca_file;  // https: trust anchors instead of the system store; "" = system
  bool verify_peer = true;

  static Endpoint unix_socket(std::string path) { return Endpoint{std::move(path), {}, {}, true}; }
  static Endpoint url(std::string base) { return Endpoint{{}, std::move(base), {}, true}; }
};

struct ClientResponse {
  int status = 0;
  Headers headers;  // of the final response (interim 100s are skipped)
  std::string body;
};

// Sends `method path` with `body` (sent whenever non-empty, or for POST/PUT/PATCH) and the
// extra header fields. Any status is a response; an error means no response came: kInvalid
// for an unusable endpoint or path, kTemporary when nothing answers (connection refused, no
// such socket, timeout), kIo for the rest, each naming the endpoint and curl's reason.
core::Result<ClientResponse> http_request(const Endpoint& endpoint, std::string_view method,
                                          std::string_view path, std::string_view body = {},
                                          const Headers& headers = {}, int timeout_ms = 30'000);

}  // namespace mta::http
