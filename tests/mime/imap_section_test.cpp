#include "mta/mime/imap_section.h"

#include <catch2/catch.hpp>

#include "tests/mime/corpus.h"

namespace mime = mta::mime;
using mime_test::crlf;
using Text = mime::SectionSpec::Text;


TEST_CASE("imap section: parsing section specs", "[mime][unit]") {
  struct Case {
    std::string in;
    mime::SectionSpec spec;
  };
  const auto c = GENERATE(values<Case>({
      {"", {{}, Text::kNone, {}}},
      {"1", {{1}, Text::kNone, {}}},
      {"1.2.3", {{1, 2, 3}, Text::kNone, {}}},
      {"header", {{}, Text::kHeader, {}}},
      {"TEXT", {{}, Text::kText, {}}},
      {"4.2.MIME", {{4, 2}, Text::kMime, {}}},
      {"2.HEADER", {{2}, Text::kHeader, {}}},
      {"3.text", {{3}, Text::kText, {}}},
      {"HEADER.FIELDS (From To)", {{}, Text::kHeaderFields, {"From", "To"}}},
      {"header.fields.not (\"X-A\" date)", {{}, Text::kHeaderFieldsNot, {"X-A", "date"}}},
      {"1.HEADER.FIELDS  ( Subject )", {{1}, Text::kHeaderFields, {"Subject"}}},
      {"4294967295", {{4294967295u}, Text::kNone, {}}},
  }));
  CAPTURE(c.in);
  const auto spec = mime::parse_section(c.in);
  REQUIRE(spec.is_ok());
  CHECK(*spec == c.spec);
}

TEST_CASE("imap section: bad section specs", "[mime][unit]") {
  const auto bad = GENERATE(as<std::string>{}, "0", "01", "1.", ".1", "1..2", "MIME", "1.FOO",
                            "HEADER.FIELDS", "HEADER.FIELDS ()", "HEADER.FIELDS (a",
                            "HEADER.FIELDS(a)", "HEADER.FIELDS (a) x", "HEADER.FIELDS (\"a)",
                            "HEADER.FIELDS ({3}", "4294967296", "TEXT.1", "1 ", "HEADERS");
  CAPTURE(bad);
  CHECK_FALSE(mime::parse_section(bad).is_ok());
  std::string deep;
  for (int i = 0; i < 65; ++i) deep += i ? ".1" : "1";
  CHECK_FALSE(mime::parse_section(deep).is_ok());
}

TEST_CASE("imap section: RFC 9051 section 6.4.5 addressing", "[mime][unit]") {
  // The shape of RFC 9051's example, smaller: parts 1, 2, 3 (message/rfc822 holding a
  // multipart of 3.1 and 3.2), 4 (multipart of 4.1 and 4.2, the latter message/rfc822).
  const std::string m = crlf(
      "Subject: top\n"
      "Content-Type: multipart/mixed; boundary=x\n"
      "\n"
      "--x\n"
      "\n"
      "part 1\n"
      "--x\n"
      "Content-Type: application/octet-stream\n"
      "\n"
      "part 2\n"
      "--x\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "Subject: three\n"
      "X-Other: o\n"
      "Content-Type: multipart/alternative; boundary=y\n"
      "\n"
      "--y\n"
      "\n"
      "part 3.1\n"
      "--y\n"
      "Content-Type: text/html\n"
      "\n"
      "part 3.2\n"
      "--y--\n"
      "--x\n"
      "Content-Type: multipart/mixed; boundary=z\n"
      "\n"
      "--z\n"
      "Content-Type: image/gif\n"
      "\n"
      "part 4.1\n"
      "--z\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "Subject: four two\n"
      "\n"
      "part 4.2.1\n"
      "--z--\n"
      "--x--\n");
  const auto tree = mime::parse_message(m);
  const auto get = [&](std::string_view spec) -> std::string {
    auto s = mime::parse_section(spec);
    REQUIRE(s.is_ok());
    auto r = mime::find_section(m, tree, *s);
    if (!r.is_ok()) return "<" + r.status().message() + ">";
    return std::string(r->view(m));
  };
  CHECK(get("") == m);
  CHECK(get("HEADER") == "Subject: top\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n");
  CHECK(get("TEXT").substr(0, 5) == "--x\r\n");
  CHECK(get("1") == "part 1");
  CHECK(get("1.MIME") == "\r\n");
  CHECK(get("2") == "part 2");
  CHECK(get("2.MIME") == "Content-Type: application/octet-stream\r\n\r\n");
  CHECK(get("3").substr(0, 16) == "Subject: three\r\n");
  CHECK(get("3.HEADER") ==
        "Subject: three\r\nX-Other: o\r\nContent-Type: multipart/alternative; boundary=y\r\n\r\n");
  CHECK(get("3.TEXT").substr(0, 5) == "--y\r\n");
  CHECK(get("3.1") == "part 3.1");
  CHECK(get("3.2") == "part 3.2");
  CHECK(get("3.2.MIME") == "Content-Type: text/html\r\n\r\n");
  CHECK(get("3.HEADER.FIELDS (subject X-OTHER)") == "Subject: three\r\nX-Other: o\r\n\r\n");
  CHECK(get("3.HEADER.FIELDS.NOT (Content-Type)") == "Subject: three\r\nX-Other: o\r\n\r\n");
  CHECK(get("HEADER.FIELDS (Nothing)") == "\r\n");
  CHECK(get("4").substr(0, 5) == "--z\r\n");
  CHECK(get("4.1") == "part 4.1");
  CHECK(get("4.2") == "Subject: four two\r\n\r\npart 4.2.1");
  CHECK(get("4.2.HEADER") == "Subject: four two\r\n\r\n");
  CHECK(get("4.2.TEXT") == "part 4.2.1");
  // The encapsulated message is not multipart: its only part is 1, its body.
  CHECK(get("4.2.1") == "part 4.2.1");
  CHECK(get("4.2.1.MIME") == "Subject: four two\r\n\r\n");
  SECTION("sections that do not exist") {
    for (const char* s :
         {"5", "1.1", "3.3", "4.2.2", "4.2.1.1", "2.HEADER", "1.TEXT", "4.HEADER.FIELDS (a)"}) {
      CAPTURE(s);
      auto spec = mime::parse_section(s);
      REQUIRE(spec.is_ok());
      const auto r = mime::find_section(m, tree, *spec);
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().kind() == core::Status::Kind::kNotFound);
    }
  }
}

TEST_CASE("imap section: a single-part message", "[mime][unit]") {
  const std::string m = "Subject: one\r\nFrom: a@b\r\n\r\nthe body\r\n";
  const auto tree = mime::parse_message(m);
  const auto get = [&](std::string_view spec) {
    auto s = mime::parse_section(spec);
    REQUIRE(s.is_ok());
    auto r = mime::find_section(m, tree, *s);
    REQUIRE(r.is_ok());
    return std::string(r->view(m));
  };
  CHECK(get("1") == "the body\r\n");
  CHECK(get("TEXT") == "the body\r\n");
  CHECK(get("1.MIME") == "Subject: one\r\nFrom: a@b\r\n\r\n");
  CHECK(get("HEADER.FIELDS.NOT (subject)") == "From: a@b\r\n\r\n");
  SECTION("a header that ends the message without a line end") {
    const std::string h = "Subject: x";
    const auto t = mime::parse_message(h);
    auto s = mime::parse_section("HEADER.FIELDS (SUBJECT)");
    REQUIRE(s.is_ok());
    auto r = mime::find_section(h, t, *s);
    REQUIRE(r.is_ok());
    CHECK(r->view(h) == "Subject: x\r\n\r\n");
  }
}
