#include "mta/mime/header_section.h"

#include <catch2/catch.hpp>

namespace mime = mta::mime;

TEST_CASE("header section: fields, folding and the end of the section", "[mime][unit]") {
  SECTION("CRLF") {
    const std::string m = "Subject: a\r\n b\r\nX-Y:z\r\n\r\nbody";
    const auto h = mime::read_header_section(m);
    CHECK(h.body_start == m.find("body"));
    REQUIRE(h.fields.size() == 2);
    CHECK(h.fields[0].name == "Subject");
    CHECK(h.fields[0].value == " a\r\n b");
    CHECK(h.fields[0].lines == "Subject: a\r\n b\r\n");
    CHECK(h.fields[1].value == "z");
    CHECK(mime::find_field(h.fields, "x-y") == &h.fields[1]);
    CHECK(mime::find_field(h.fields, "From") == nullptr);
  }
  SECTION("bare LF") {
    const std::string m = "A: 1\n\tcont\nB: 2\n\nbody\n";
    const auto h = mime::read_header_section(m);
    CHECK(h.body_start == m.find("body"));
    REQUIRE(h.fields.size() == 2);
    CHECK(h.fields[0].value == " 1\n\tcont");
    CHECK(h.fields[0].lines == "A: 1\n\tcont\n");
  }
  SECTION("a line that is no field starts the body") {
    const std::string m = "A: 1\r\nnot a field\r\nB: 2\r\n";
    const auto h = mime::read_header_section(m);
    CHECK(h.body_start == m.find("not"));
    CHECK(h.fields.size() == 1);
  }
  SECTION("an empty first line: no fields") {
    const auto h = mime::read_header_section("\r\nbody");
    CHECK(h.body_start == 2);
    CHECK(h.fields.empty());
  }
  SECTION("no empty line: the section runs to the end") {
    const std::string m = "A: 1\r\nB: 2";
    const auto h = mime::read_header_section(m);
    CHECK(h.body_start == m.size());
    REQUIRE(h.fields.size() == 2);
    CHECK(h.fields[1].lines == "B: 2");
  }
  SECTION("a continuation before any field is skipped; obsolete space before the colon") {
    const auto h = mime::read_header_section(" stray\r\nSubject : x\r\n\r\n");
    REQUIRE(h.fields.size() == 1);
    CHECK(h.fields[0].name == "Subject");
    CHECK(h.fields[0].value == " x");
  }
  SECTION("8-bit bytes in values") {
    const auto h = mime::read_header_section("Subject: caf\xC3\xA9\r\n\r\n");
    REQUIRE(h.fields.size() == 1);
    CHECK(h.fields[0].value == " caf\xC3\xA9");
  }
  SECTION("empty input") {
    const auto h = mime::read_header_section("");
    CHECK(h.body_start == 0);
    CHECK(h.fields.empty());
  }
}

TEST_CASE("header section: unfolding", "[mime][unit]") {
  CHECK(mime::unfold_value(" a\r\n b\n\tc  ") == "a b\tc");
  CHECK(mime::unfold_value(" \r\n ") == "");
  CHECK(mime::unfold_value("x") == "x");
}
