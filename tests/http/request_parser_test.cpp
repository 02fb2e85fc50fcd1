#include "mta/http/request_parser.h"

#include <catch2/catch.hpp>

namespace mta::http {
namespace {

// Feeds everything and collects steps until NeedMore or an error.
std::vector<ParseStep> parse_all(RequestParser& p, std::string_view bytes) {
  p.feed(bytes);
  std::vector<ParseStep> out;
  for (;;) {
    ParseStep s = p.next();
    if (std::holds_alternative<NeedMore>(s)) break;
    const bool error = std::holds_alternative<ParseError>(s);
    out.push_back(std::move(s));
    if (error) break;
  }
  return out;
}

Request parse_one(std::string_view bytes, Limits limits = {}) {
  RequestParser p(limits);
  std::vector<ParseStep> steps = parse_all(p, bytes);
  REQUIRE(steps.size() == 1);
  if (const auto* e = std::get_if<ParseError>(&steps[0])) FAIL(e->status << " " << e->reason);
  REQUIRE(std::holds_alternative<Request>(steps[0]));
  CHECK(p.idle());
  return std::get<Request>(std::move(steps[0]));
}

ParseError parse_error(std::string_view bytes, Limits limits = {}) {
  RequestParser p(limits);
  std::vector<ParseStep> steps = parse_all(p, bytes);
  REQUIRE(!steps.empty());
  const auto* e = std::get_if<ParseError>(&steps.back());
  REQUIRE(e != nullptr);
  // Failed for good: more input changes nothing.
  p.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const ParseStep again = p.next();
  REQUIRE(std::holds_alternative<ParseError>(again));
  CHECK(std::get<ParseError>(again).status == e->status);
  return *e;
}

TEST_CASE("unit: well-formed requests parse into their parts", "[http][unit]") {
  struct Case {
    std::string raw;
    std::string method, path, query, body;
    int minor;
    bool keep_alive;
  };
  const Case c = GENERATE(values<Case>({
      {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/", "", "", 1, true},
      {"GET /v1/queue?limit=10 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/v1/queue", "limit=10", "", 1,
       true},
      {"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "POST", "/inject", "",
       "hello", 1, true},
      // Chunk extensions (with BWS and a quoted value) and trailers are accepted, then dropped.
      {"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n"
       "6 ; a=\"b c\"\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
       "PUT", "/c", "", "hello world0123456789", 1, true},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", "POST", "/", "",
       "", 1, true},
      {"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n", "GET", "/", "", "", 1,
       false},
      {"GET / HTTP/1.0\r\n\r\n", "GET", "/", "", "", 0, false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", "/", "", "", 0, true},
      {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", "GET", "/", "", "", 1, true},
      {"GET http://example.org:8080/a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/a/b", "c=d", "",
       1, true},
      {"GET https://example.org?c=d HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/", "c=d", "", 1, true},
      {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "OPTIONS", "*", "", "", 1, true},
      {"\r\n\r\nDELETE /v1/users/a%40b HTTP/1.1\r\nHost: x\r\n\r\n", "DELETE", "/v1/users/a%40b",
       "", "", 1, true},
      {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc", "POST",
       "/", "", "abc", 1, true},
  }));
  CAPTURE(c.raw);
  const Request r = parse_one(c.raw);
  CHECK(r.method == c.method);
  CHECK(r.path == c.path);
  CHECK(r.query == c.query);
  CHECK(r.body == c.body);
  CHECK(r.version_minor == c.minor);
  CHECK(r.keep_alive == c.keep_alive);
}

TEST_CASE("unit: header fields are trimmed and looked up in any case", "[http][unit]") {
  const Request r = parse_one(
      "GET /x HTTP/1.1\r\nHost: a\r\nX-Token:  s3cr\xc3\xa9t \t\r\nAccept: a\r\n"
      "accept: b\r\nX-Empty:\r\n\r\n");
  CHECK(r.headers.get("x-token") == "s3cr\xc3\xa9t");
  CHECK(r.headers.get("HOST") == "a");
  CHECK(r.headers.get_all("Accept") == std::vector<std::string_view>{"a", "b"});
  CHECK(r.headers.get("X-Empty") == "");
  CHECK_FALSE(r.headers.get("X-Missing").has_value());
  CHECK(r.headers.fields().size() == 5);
}

TEST_CASE("unit: query parameters are split and percent-decoded in order", "[http][unit]") {
  const Request r =
      parse_one("GET /s?q=a%40b+c&flag&empty=&q=2&&x%3Dy=%26 HTTP/1.1\r\nHost: h\r\n\r\n");
  using P = std::pair<std::string, std::string>;
  CHECK(r.query_params ==
        std::vector<P>{{"q", "a@b c"}, {"flag", ""}, {"empty", ""}, {"q", "2"}, {"x=y", "&"}});
  CHECK(r.query_param("q") == "a@b c");
  CHECK_FALSE(r.query_param("nope").has_value());
}

TEST_CASE("unit: percent_decode decodes escapes and refuses broken ones", "[http][unit]") {
  auto [in, plus, out] = GENERATE(table<std::string, bool, std::optional<std::string>>({
      {"a%40b", false, "a@b"},
      {"a+b", false, "a+b"},
      {"a+b", true, "a b"},
      {"%2F%2f", false, "//"},
      {"%", false, std::nullopt},
      {"%4", false, std::nullopt},
      {"%G0", false, std::nullopt},
      {"", false, ""},
  }));
  CHECK(percent_decode(in, plus) == out);
}

TEST_CASE("unit: each malformed request gets its status", "[http][unit]") {
  Limits small;
  small.max_header_bytes = 256;
  small.max_target_bytes = 64;
  small.max_body_bytes = 16;
  const std::string host = "Host: x\r\n";
  auto [raw, status] = GENERATE_REF(table<std::string, int>({
      // Bare LF or CR anywhere in the head.
      {"GET / HTTP/1.1\nHost: x\n\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHo\rst: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", 400},
      // Smuggling shapes.
      {"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},  // obs-fold
      {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 1, 2\r\n\r\nab", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\nx", 400},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n", 400},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1\nx\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1 x\r\nx\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + "1000000000000000\r\n",
       400},
      // Malformed request lines and fields.
      {"GET / HTTP/1.1\r\n\r\n", 400},  // no Host
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
      {"GET / http/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET /?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET a HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"CONNECT example.org:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
      {std::string("GET / HTTP/1.1\r\nHost: x\r\nA: b\0c\r\n\r\n", 36), 400},
      // The other statuses.
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 17\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n8\r\n",
       413},
      {"GET /" + std::string(64, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431},
      {"POST / HTTP/1.1\r\n" + host +
           "Transfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(300, 'a') + "\r\n\r\n",
       431},
      {"POST / HTTP/1.1\r\n" + host + "Expect: 200-ok\r\n\r\n", 417},
  }));
  CAPTURE(raw);
  const ParseError e = parse_error(raw, small);
  CHECK(e.status == status);
  CHECK_FALSE(e.reason.empty());
}

TEST_CASE("unit: limits are exact and enforced before the end arrives", "[http][unit]") {
  Limits l;
  l.max_header_bytes = 100;
  l.max_target_bytes = 20;
  l.max_body_bytes = 10;
  // "Host: x\r\n" (9) + "X: <pad>\r\n" (5 + pad) + "\r\n" (2) == 100 exactly.
  const auto head = [](size_t pad) {
    return "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(pad, 'p') + "\r\n\r\n";
  };
  SECTION("header section") {
    CHECK(parse_one(head(84), l).headers.get("X")->size() == 84);
    CHECK(parse_error(head(85), l).status == 431);
    // No end of line in sight: refused once the line can no longer fit, not when it ends.
    RequestParser p(l);
    // 99 bytes of field line: it may still end in time.
    CHECK(parse_all(p, "GET / HTTP/1.1\r\nX: " + std::string(96, 'a')).empty());
    const auto steps = parse_all(p, "a");
    REQUIRE(steps.size() == 1);
    CHECK(std::get<ParseError>(steps[0]).status == 431);
  }
  SECTION("target") {
    CHECK(
        parse_one("GET /" + std::string(19, 't') + " HTTP/1.1\r\nHost: x\r\n\r\n", l).path.size() ==
        20);
    CHECK(parse_error("GET /" + std::string(20, 't') + " HTTP/1.1\r\nHost: x\r\n\r\n", l).status ==
          414);
    RequestParser p(l);
    const auto steps = parse_all(p, "GET /" + std::string(200, 't'));
    REQUIRE(steps.size() == 1);
    CHECK(std::get<ParseError>(steps[0]).status == 414);
  }
  SECTION("body") {
    const std::string pre = "POST / HTTP/1.1\r\nHost: x\r\n";
    CHECK(parse_one(pre + "Content-Length: 10\r\n\r\n0123456789", l).body.size() == 10);
    CHECK(parse_error(pre + "Content-Length: 11\r\n\r\n", l).status == 413);
    CHECK(parse_one(pre + "Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
                    l)
              .body.size() == 10);
    CHECK(parse_error(pre + "Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n", l).status ==
          413);
  }
}

TEST_CASE("unit: a pipelined pair parses the same at every split point", "[http][unit]") {
  const std::string first = "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
  const std::string second =
      "PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
  const std::string both = first + second;
  for (size_t split = 0; split <= both.size(); ++split) {
    CAPTURE(split);
    RequestParser p;
    std::vector<ParseStep> steps = parse_all(p, std::string_view(both).substr(0, split));
    for (ParseStep& s : parse_all(p, std::string_view(both).substr(split))) {
      steps.push_back(std::move(s));
    }
    REQUIRE(steps.size() == 2);
    const auto* a = std::get_if<Request>(&steps[0]);
    const auto* b = std::get_if<Request>(&steps[1]);
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    CHECK(a->path == "/a");
    CHECK(a->body == "body");
    CHECK(a->keep_alive);
    CHECK(b->method == "PUT");
    CHECK(b->body == "abcde");
    CHECK_FALSE(b->keep_alive);
    CHECK(p.idle());
  }
  // And one byte at a time: requests come out exactly when their last byte arrives.
  RequestParser p;
  size_t got = 0;
  for (size_t i = 0; i < both.size(); ++i) {
    const auto steps = parse_all(p, std::string_view(both).substr(i, 1));
    got += steps.size();
    if (i + 1 == first.size()) CHECK(got == 1);
  }
  CHECK(got == 2);
}

TEST_CASE("unit: Expect: 100-continue asks for an interim response once", "[http][unit]") {
  const std::string head =
      "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
  SECTION("the body has not come yet") {
    RequestParser p;
    auto steps = parse_all(p, head);
    REQUIRE(steps.size() == 1);
    CHECK(std::holds_alternative<SendContinue>(steps[0]));
    steps = parse_all(p, "abc");
    REQUIRE(steps.size() == 1);
    CHECK(std::get<Request>(steps[0]).body == "abc");
  }
  SECTION("the body came along anyway") {
    RequestParser p;
    const auto steps = parse_all(p, head + "abc");
    REQUIRE(steps.size() == 1);
    CHECK(std::holds_alternative<Request>(steps[0]));
  }
  SECTION("HTTP/1.0 ignores it") {
    RequestParser p;
    const auto steps = parse_all(p,
                                 "POST / HTTP/1.0\r\nExpect: 100-continue\r\n"
                                 "Content-Length: 1\r\n\r\n");
    CHECK(steps.empty());
  }
}

}  // namespace
}  // namespace mta::http
