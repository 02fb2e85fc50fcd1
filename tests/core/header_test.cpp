#include "core/header.h"

#include <catch2/catch.hpp>

TEST_CASE("header: end of section and fields", "[core][unit]") {
  const std::string msg =
      "From: A <a@b.example>\r\nSubject: hello\r\n  world\r\nX-Odd : v\r\n\r\nbody\r\n";
  auto end = core::header_end(msg);
  REQUIRE(end);
  CHECK(msg.substr(*end) == "body\r\n");
  auto fields = core::parse_header_fields(std::string_view(msg).substr(0, *end));
  REQUIRE(fields.size() == 3);
  CHECK(fields[1].name == "Subject");
  CHECK(core::unfold(fields[1].value) == "hello  world");
  CHECK(fields[2].name == "X-Odd");
  CHECK(core::find_field(fields, "subject") == &fields[1]);
  CHECK(core::find_field(fields, "Date") == nullptr);
}

TEST_CASE("header: a section that has not ended, and one without blank line", "[core][unit]") {
  CHECK_FALSE(core::header_end("From: a\r\nSubj"));
  const std::string no_blank = "From: a\r\nthis is body\r\n";
  CHECK(core::header_end(no_blank) == 9);
}
