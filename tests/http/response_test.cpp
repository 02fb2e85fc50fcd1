#include "mta/http/response.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace mta::http {
namespace {

constexpr int64_t kRfcExampleMs = 784'111'777'000;  // RFC 9110 §5.6.7's example date

TEST_CASE("unit: http_date writes IMF-fixdate in GMT", "[http][unit]") {
  auto [ms, text] = GENERATE(table<int64_t, std::string>({
      {kRfcExampleMs, "Sun, 06 Nov 1994 08:49:37 GMT"},
      {kRfcExampleMs + 999, "Sun, 06 Nov 1994 08:49:37 GMT"},
      {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
      {1'709'164'800'000, "Thu, 29 Feb 2024 00:00:00 GMT"},
      {4'102'444'799'000, "Thu, 31 Dec 2099 23:59:59 GMT"},
  }));
  CHECK(http_date(ms) == text);
}

TEST_CASE("unit: a JSON response is framed with Date, Content-Length and Connection",
          "[http][unit]") {
  const Response r = json(201, {{"id", "0QK3"}});
  CHECK(r.headers.get("Content-Type") == "application/json");
  WireOptions wire;
  wire.now_ms = kRfcExampleMs;
  SECTION("keep-alive") {
    CHECK(serialize(r, wire) ==
          "HTTP/1.1 201 Created\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
          "Content-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"id\":\"0QK3\"}\n");
  }
  SECTION("the last response") {
    wire.close = true;
    CHECK(serialize(r, wire) ==
          "HTTP/1.1 201 Created\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
          "Content-Type: application/json\r\nContent-Length: 14\r\nConnection: close\r\n\r\n"
          "{\"id\":\"0QK3\"}\n");
  }
  SECTION("an HTTP/1.0 client that asked for keep-alive") {
    wire.keep_alive_10 = true;
    CHECK(serialize(r, wire).find("\r\nConnection: keep-alive\r\n\r\n") != std::string::npos);
  }
  SECTION("HEAD: the same fields, no body") {
    wire.head = true;
    CHECK(serialize(r, wire) ==
          "HTTP/1.1 201 Created\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
          "Content-Type: application/json\r\nContent-Length: 14\r\n\r\n");
  }
}

TEST_CASE("unit: bodiless statuses carry neither body nor Content-Length", "[http][unit]") {
  const int status = GENERATE(204, 304);
  Response r = text(status, "ignored");
  const std::string wire = serialize(r, WireOptions{});
  CHECK(wire.find("Content-Length") == std::string::npos);
  CHECK(wire.ends_with("\r\n\r\n"));
}

TEST_CASE("unit: framing fields and unsafe fields from a handler are not written", "[http][unit]") {
  Response r = text(200, "abc", "text/csv");
  r.headers.add("Content-Length", "999");
  r.headers.add("Connection", "keep-alive");
  r.headers.add("Transfer-Encoding", "chunked");
  r.headers.add("X-Split", "a\r\nSet-Cookie: evil=1");
  r.headers.add("Bad Name", "v");
  r.headers.add("X-Ok", "fine");
  const std::string wire = serialize(r, WireOptions{});
  CHECK(wire.find("999") == std::string::npos);
  CHECK(wire.find("chunked") == std::string::npos);
  CHECK(wire.find("keep-alive") == std::string::npos);
  CHECK(wire.find("evil") == std::string::npos);
  CHECK(wire.find("Bad Name") == std::string::npos);
  CHECK(wire.find("\r\nContent-Type: text/csv\r\nX-Ok: fine\r\nContent-Length: 3\r\n\r\nabc") !=
        std::string::npos);
}

TEST_CASE("unit: json() replaces invalid UTF-8 instead of throwing", "[http][unit]") {
  const Response r = json(200, {{"s", "a\xff"}});
  CHECK(r.body == "{\"s\":\"a\xef\xbf\xbd\"}\n");
}

TEST_CASE("unit: reason phrases", "[http][unit]") {
  CHECK(reason_phrase(413) == "Content Too Large");
  CHECK(reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(reason_phrase(299) == "Unknown");
}

}  // namespace
}  // namespace mta::http
