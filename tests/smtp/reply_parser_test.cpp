#include "mta/smtp/reply_parser.h"

#include <catch2/catch.hpp>

using namespace mta::smtp;

namespace {

// Feeds `wire` in one piece; returns every reply, and the error if one came.
struct Parsed {
  std::vector<core::Reply> replies;
  std::string error;
};

Parsed parse_all(ReplyParser& p, std::string_view wire) {
  Parsed out;
  p.feed(wire);
  while (true) {
    auto r = p.next();
    if (!r) {
      out.error = r.status().message();
      return out;
    }
    if (!r->has_value()) return out;
    out.replies.push_back(**r);
  }
}

Parsed parse_all(std::string_view wire, size_t max_line = 4096, size_t max_lines = 100) {
  ReplyParser p(max_line, max_lines);
  return parse_all(p, wire);
}

}  // namespace

TEST_CASE("reply_parser: single and multi-line replies", "[smtp][unit]") {
  struct Row {
    std::string wire;
    int code;
    std::string enhanced;
    std::string text;
  };
  const auto row = GENERATE(values<Row>({
      {"220 mx.example.com ESMTP\r\n", 220, "", "mx.example.com ESMTP"},
      {"250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 100\r\n", 250, "",
       "mx.example.com\nPIPELINING\nSIZE 100"},
      {"550 5.1.1 No such user\r\n", 550, "5.1.1", "No such user"},
      {"550-5.1.1 No such\r\n550 5.1.1 user here\r\n", 550, "5.1.1", "No such\nuser here"},
      {"451 4.3.0\r\n", 451, "4.3.0", ""},
      {"250\r\n", 250, "", ""},
      {"250 \r\n", 250, "", ""},
      {"250 ok\n", 250, "", "ok"},                    // bare LF tolerated
      {"250 5.0.0 odd\r\n", 250, "", "5.0.0 odd"},    // class must match the code
      {"250 2.1.5x\r\n", 250, "", "2.1.5x"},          // not followed by a space
      {"250 2.1234.5 x\r\n", 250, "", "2.1234.5 x"},  // more than three digits
      {"354 End data with <CR><LF>.<CR><LF>\r\n", 354, "", "End data with <CR><LF>.<CR><LF>"},
      {"250-2.0.0 first\r\n250 second\r\n", 250, "2.0.0", "first\nsecond"},
  }));
  CAPTURE(row.wire);
  const Parsed p = parse_all(row.wire);
  REQUIRE(p.error.empty());
  REQUIRE(p.replies.size() == 1);
  CHECK(p.replies[0].code == row.code);
  CHECK(p.replies[0].enhanced == row.enhanced);
  CHECK(p.replies[0].text == row.text);
}

TEST_CASE("reply_parser: need more until the last line, at every split", "[smtp][unit]") {
  const std::string wire = "250-a.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n221 2.0.0 Bye\r\n";
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    ReplyParser p(4096, 100);
    std::vector<core::Reply> got;
    for (std::string_view part :
         {std::string_view(wire).substr(0, cut), std::string_view(wire).substr(cut)}) {
      p.feed(part);
      while (true) {
        auto r = p.next();
        REQUIRE(r.is_ok());
        if (!r->has_value()) break;
        got.push_back(**r);
      }
    }
    REQUIRE(got.size() == 2);
    CHECK(got[0].text == "a.example\nPIPELINING\n8BITMIME");
    CHECK(got[1].code == 221);
    CHECK(got[1].enhanced == "2.0.0");
  }
}

TEST_CASE("reply_parser: byte by byte yields nothing before the end", "[smtp][unit]") {
  const std::string wire = "550-5.7.1 line one\r\n550 5.7.1 line two\r\n";
  ReplyParser p(4096, 100);
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    p.feed(wire.substr(i, 1));
    auto r = p.next();
    REQUIRE(r.is_ok());
    REQUIRE_FALSE(r->has_value());
  }
  p.feed(wire.substr(wire.size() - 1));
  auto r = p.next();
  REQUIRE(r.is_ok());
  REQUIRE(r->has_value());
  CHECK((*r)->text == "line one\nline two");
}

TEST_CASE("reply_parser: protocol errors", "[smtp][unit]") {
  struct Row {
    std::string wire;
    std::string error;
  };
  const auto row = GENERATE(values<Row>({
      {"hello\r\n", "malformed reply line"},
      {"25\r\n", "malformed reply line"},
      {"2500 x\r\n", "malformed reply line"},
      {"150 x\r\n", "malformed reply line"},
      {"650 x\r\n", "malformed reply line"},
      {"2x0 x\r\n", "malformed reply line"},
      {"250-a\r\n251 b\r\n", "different codes"},
      {"250 " + std::string(20, 'x') + "\r\n", "longer than 16 octets"},
      {"250 " + std::string(20, 'x'), "longer than 16 octets"},  // caught before the line end
      {"250-a\r\n250-b\r\n250-c\r\n250 d\r\n", "longer than 3 lines"},
  }));
  CAPTURE(row.wire);
  ReplyParser p(16, 3);
  const Parsed got = parse_all(p, row.wire);
  CHECK(got.replies.empty());
  CHECK_THAT(got.error, Catch::Contains(row.error));
  // The error sticks: later good input does not revive the stream.
  const Parsed again = parse_all(p, "250 ok\r\n");
  CHECK(again.replies.empty());
  CHECK_THAT(again.error, Catch::Contains(row.error));
}

TEST_CASE("reply_parser: a line of exactly the limit is fine", "[smtp][unit]") {
  const Parsed p = parse_all("250 " + std::string(12, 'x') + "\r\n", 16, 3);
  REQUIRE(p.error.empty());
  REQUIRE(p.replies.size() == 1);
  CHECK(p.replies[0].text == std::string(12, 'x'));
}

TEST_CASE("reply_parser: clear drops buffered bytes and a partial reply", "[smtp][unit]") {
  ReplyParser p(4096, 100);
  p.feed("250-partial\r\n250 inj");
  auto r = p.next();
  REQUIRE(r.is_ok());
  REQUIRE_FALSE(r->has_value());
  p.clear();
  const Parsed got = parse_all(p, "220 fresh\r\n");
  REQUIRE(got.error.empty());
  REQUIRE(got.replies.size() == 1);
  CHECK(got.replies[0].code == 220);
  CHECK(got.replies[0].text == "fresh");
}
