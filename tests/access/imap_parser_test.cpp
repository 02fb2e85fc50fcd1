#include "mta/access/imap_parser.h"

#include <catch2/catch.hpp>

#include <string>

using mta::access::ImapLimits;
using mta::access::ImapReader;
using mta::access::ImapValue;
using Kind = ImapReader::Event::Kind;

namespace {

// Feeds `bytes` and returns the next event.
ImapReader::Event read(ImapReader& r, std::string_view bytes) {
  r.feed(bytes);
  return r.next();
}

ImapReader::Event one(std::string_view bytes) {
  ImapReader r;
  return read(r, bytes);
}

}  // namespace

TEST_CASE("imap reader: tag, name and simple arguments", "[access][unit]") {
  auto e = one("a1 SELECT INBOX\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.tag == "a1");
  CHECK(e.command.name == "SELECT");
  REQUIRE(e.command.args.size() == 1);
  CHECK(e.command.args[0].is_atom("inbox"));

  e = one("x noop\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.name == "NOOP");
  CHECK(e.command.args.empty());

  e = one("7 uid fetch 1:* (FLAGS)\n");  // a bare LF is tolerated
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.name == "UID FETCH");
  REQUIRE(e.command.args.size() == 2);
  CHECK(e.command.args[0].text == "1:*");
  REQUIRE(e.command.args[1].kind == ImapValue::Kind::kList);
  CHECK(e.command.args[1].items[0].text == "FLAGS");
}

TEST_CASE("imap reader: quoted strings, NIL and nested lists", "[access][unit]") {
  auto e = one("t LOGIN \"al ice\" \"p\\\"w\\\\d\"\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.args[0].kind == ImapValue::Kind::kString);
  CHECK(e.command.args[0].text == "al ice");
  CHECK(e.command.args[1].text == "p\"w\\d");

  e = one("t ID (\"name\" \"x\" \"version\" NIL)\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  REQUIRE(e.command.args[0].items.size() == 4);
  CHECK(e.command.args[0].items[3].kind == ImapValue::Kind::kNil);

  e = one("t SEARCH OR (FROM a SUBJECT \"b c\") (NOT (SEEN))\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  REQUIRE(e.command.args.size() == 3);
  CHECK(e.command.args[1].items[3].text == "b c");
  CHECK(e.command.args[2].items[1].items[0].text == "SEEN");

  e = one("t STATUS \"\" ()\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.args[0].text.empty());
  CHECK(e.command.args[1].items.empty());
}

TEST_CASE("imap reader: bracketed sections are one atom", "[access][unit]") {
  auto e = one("f FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.512> BODY[1.2.MIME] UID)\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  const auto& items = e.command.args[1].items;
  REQUIRE(items.size() == 3);
  CHECK(items[0].text == "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.512>");
  CHECK(items[1].text == "BODY[1.2.MIME]");
  CHECK(items[2].text == "UID");
}

TEST_CASE("imap reader: synchronising literals ask to continue", "[access][unit]") {
  ImapReader r;
  auto e = read(r, "a APPEND INBOX (\\Seen) {12}\r\n");
  REQUIRE(e.kind == Kind::kContinue);
  CHECK(r.next().kind == Kind::kNone);
  e = read(r, "Hello");
  CHECK(e.kind == Kind::kNone);
  e = read(r, "\r\nWorld\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  REQUIRE(e.command.args.size() == 3);
  CHECK(e.command.args[1].items[0].text == "\\Seen");
  CHECK(e.command.args[2].kind == ImapValue::Kind::kString);
  CHECK(e.command.args[2].literal);
  CHECK(e.command.args[2].text == "Hello\r\nWorld");
}

TEST_CASE("imap reader: LITERAL+ and literal8 need no continuation", "[access][unit]") {
  ImapReader r;
  auto e = read(r, "a LOGIN {5+}\r\nalice {3+}\r\npw!\r\nb NOOP\r\n");
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.args[0].text == "alice");
  CHECK(e.command.args[1].text == "pw!");
  e = r.next();
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.name == "NOOP");

  e = one(std::string("c APPEND INBOX ~{3+}\r\n\0\1\2\r\n", 27));
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.args[1].binary);
  CHECK(e.command.args[1].text == std::string("\0\1\2", 3));
}

TEST_CASE("imap reader: bytes arriving one at a time", "[access][unit]") {
  const std::string wire = "z1 APPEND \"Sent Items\" {4+}\r\nabcd\r\nz2 LOGOUT\r\n";
  ImapReader r;
  std::vector<std::string> names;
  for (char c : wire) {
    r.feed(std::string_view(&c, 1));
    for (auto e = r.next(); e.kind != Kind::kNone; e = r.next()) {
      REQUIRE(e.kind == Kind::kCommand);
      names.push_back(e.command.name);
      if (e.command.name == "APPEND") CHECK(e.command.args[1].text == "abcd");
    }
  }
  CHECK(names == std::vector<std::string>{"APPEND", "LOGOUT"});
}

TEST_CASE("imap reader: bad input is an error with the tag, and reading goes on",
          "[access][unit]") {
  const auto [wire, tag, reason] = GENERATE(table<std::string, std::string, std::string>({
      {"\r\n", "*", "Empty command line"},
      {"* NOOP\r\n", "*", "Missing or invalid tag"},
      {"a\r\n", "*", "Missing or invalid tag"},
      {"a (NOOP)\r\n", "a", "Missing or invalid command name"},
      {"a LOGIN \"unterminated\r\n", "a", "Unterminated quoted string"},
      {"a SEARCH (FROM x\r\n", "a", "Unbalanced parenthesis"},
      {"a SEARCH FROM x)\r\n", "a", "Unbalanced parenthesis"},
      {"a SEARCH FROM x\"y\"\r\n", "a", "Expected a space between arguments"},
      {"a LOGIN \"bad\\escape\"\r\n", "a", "Bad escape in quoted string"},
      {"a FETCH 1 BODY[TEXT\r\n", "a", "Unbalanced bracket"},
      {"a  NOOP\r\n", "a", "Missing or invalid command name"},
      {std::string("a NO\0OP\r\n", 9), "a", "NUL in command line"},
  }));
  ImapReader r;
  auto e = read(r, wire + "b NOOP\r\n");
  REQUIRE(e.kind == Kind::kError);
  CHECK(e.error.tag == tag);
  CHECK(e.error.reason == reason);
  e = r.next();
  REQUIRE(e.kind == Kind::kCommand);
  CHECK(e.command.tag == "b");
}

TEST_CASE("imap reader: limits", "[access][unit]") {
  ImapLimits limits;
  limits.max_line = 100;
  limits.max_literal = 10;
  limits.max_depth = 3;
  limits.max_values = 20;
  SECTION("a synchronising literal over the limit is refused before its bytes") {
    ImapReader r(limits);
    auto e = read(r, "a APPEND INBOX {11}\r\n");
    REQUIRE(e.kind == Kind::kError);
    CHECK(e.error.tag == "a");
    CHECK(e.error.reason == "Literal too big (at most 10 octets)");
    CHECK(read(r, "b NOOP\r\n").kind == Kind::kCommand);
  }
  SECTION("a non-synchronising one is read and thrown away, with the rest of its command") {
    ImapReader r(limits);
    auto e = read(r, "a APPEND INBOX {20+}\r\n01234567890123456789 more {2+}\r\nxy\r\nb NOOP\r\n");
    REQUIRE(e.kind == Kind::kError);
    CHECK(e.error.tag == "a");
    e = r.next();
    REQUIRE(e.kind == Kind::kCommand);
    CHECK(e.command.tag == "b");
  }
  SECTION("an endless line") {
    ImapReader r(limits);
    CHECK(read(r, std::string(150, 'x')).kind == Kind::kNone);
    CHECK(read(r, std::string(150, 'x')).kind == Kind::kNone);
    auto e = read(r, "\r\nb NOOP\r\n");
    REQUIRE(e.kind == Kind::kError);
    CHECK(e.error.reason == "Command line too long");
    CHECK(r.next().kind == Kind::kCommand);
  }
  SECTION("nesting and argument count") {
    ImapReader r(limits);
    auto e = read(r, "a X ((((1))))\r\n");
    REQUIRE(e.kind == Kind::kError);
    CHECK(e.error.reason == "Lists nested too deeply");
    std::string many = "a X";
    for (int i = 0; i < 25; ++i) many += " 1";
    e = read(r, many + "\r\n");
    REQUIRE(e.kind == Kind::kError);
    CHECK(e.error.reason == "Too many arguments");
  }
}

TEST_CASE("imap reader: raw lines for AUTHENTICATE and IDLE", "[access][unit]") {
  ImapReader r;
  r.feed("dGVzdA==\r\nDONE\r\n");
  CHECK(r.next_line() == "dGVzdA==");
  CHECK(r.next_line() == "DONE");
  CHECK_FALSE(r.next_line());
}

TEST_CASE("imap sequence sets", "[access][unit]") {
  auto s = mta::access::parse_sequence_set("1:4,7,9:*");
  REQUIRE(s);
  CHECK(s->contains(1, 20));
  CHECK(s->contains(4, 20));
  CHECK_FALSE(s->contains(5, 20));
  CHECK(s->contains(7, 20));
  CHECK(s->contains(20, 20));
  auto reversed = mta::access::parse_sequence_set("*:3");
  REQUIRE(reversed);
  CHECK(reversed->contains(3, 5));
  CHECK(reversed->contains(5, 5));
  CHECK_FALSE(reversed->contains(2, 5));
  CHECK(mta::access::parse_sequence_set("$")->saved);
  for (const char* bad : {"", "0", "1:", ":2", "1,,2", "a", "1:0", "4294967296", "01"})
    CHECK_FALSE(mta::access::parse_sequence_set(bad));
}
