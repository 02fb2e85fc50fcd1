#include "mta/mime/multipart.h"

#include <catch2/catch.hpp>

namespace mime = mta::mime;

TEST_CASE("multipart: Content-Type values", "[mime][unit]") {
  SECTION("type, subtype and parameters") {
    const auto ct = mime::parse_content_type(
        " Multipart/Report; report-type=delivery-status;\r\n\tBoundary=\"a b;\\\"c\\\"\"");
    REQUIRE(ct);
    CHECK(ct->type == "multipart");
    CHECK(ct->subtype == "report");
    CHECK(ct->is("MULTIPART", "report"));
    CHECK(ct->param("report-type") == "delivery-status");
    CHECK(ct->param("boundary") == "a b;\"c\"");
    CHECK_FALSE(ct->param("charset"));
  }
  SECTION("a trailing semicolon is tolerated") {
    const auto ct = mime::parse_content_type("text/plain; charset=utf-8;");
    REQUIRE(ct);
    CHECK(ct->param("charset") == "utf-8");
  }
  SECTION("malformed") {
    const auto bad = GENERATE(as<std::string>{}, "", "text", "text/", "/plain",
                              "text/plain; charset", "text/plain; b=\"open");
    CAPTURE(bad);
    CHECK_FALSE(mime::parse_content_type(bad));
  }
}

TEST_CASE("multipart: entities split into fields and body", "[mime][unit]") {
  const auto e = mime::split_entity("Content-Type: text/plain\r\nX-A: 1\r\n\r\nbody\r\n");
  REQUIRE(e.fields.size() == 2);
  CHECK(e.fields[1].name == "X-A");
  CHECK(e.body == "body\r\n");
  const auto bare = mime::split_entity("\r\nonly body");
  CHECK(bare.fields.empty());
  CHECK(bare.body == "only body");
}

TEST_CASE("multipart: parts between delimiters", "[mime][unit]") {
  const std::string body =
      "preamble\r\n"
      "--b1\r\n"
      "\r\nfirst\r\n"
      "--b1 \t\r\n"
      "Content-Type: text/plain\r\n\r\nsecond\r\n--b1x is not a delimiter\r\n"
      "--b1\r\n"
      "--b1--\r\n"
      "epilogue\r\n";
  const auto parts = mime::split_multipart(body, "b1");
  REQUIRE(parts.is_ok());
  REQUIRE(parts->size() == 3);
  CHECK((*parts)[0] == "\r\nfirst");
  CHECK((*parts)[1] == "Content-Type: text/plain\r\n\r\nsecond\r\n--b1x is not a delimiter");
  CHECK((*parts)[2].empty());
}

TEST_CASE("multipart: missing delimiters are errors", "[mime][unit]") {
  CHECK_FALSE(mime::split_multipart("no delimiter here\r\n", "b").is_ok());
  CHECK_FALSE(mime::split_multipart("--b\r\npart\r\n", "b").is_ok());
  CHECK_FALSE(mime::split_multipart("--b--\r\n", "b").is_ok());
  CHECK_FALSE(mime::split_multipart("--\r\n", "").is_ok());
  const auto no_final_crlf = mime::split_multipart("--b\r\nx\r\n--b--", "b");
  REQUIRE(no_final_crlf.is_ok());
  CHECK(no_final_crlf->size() == 1);
}
