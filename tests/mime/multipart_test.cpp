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

TEST_CASE("multipart: lenient Content-Type values keep the type", "[mime][unit]") {
  using mime::Syntax;
  SECTION("broken parameters are dropped, the rest kept") {
    const auto ct = mime::parse_content_type(
        "text/plain; charset=utf-8; delsp; format=flowed; =x; name=two words.txt",
        Syntax::kLenient);
    REQUIRE(ct);
    CHECK(ct->type == "text");
    CHECK(ct->params ==
          mime::Params{{"charset", "utf-8"}, {"format", "flowed"}, {"name", "two words.txt"}});
    CHECK_FALSE(mime::parse_content_type("text/plain; charset=utf-8; delsp"));
  }
  SECTION("unterminated quotes, 8-bit values, missing semicolons") {
    const auto ct = mime::parse_content_type(
        "application/pdf name=\"x\"; filename=caf\xC3\xA9.pdf; b=\"open", Syntax::kLenient);
    REQUIRE(ct);
    CHECK(ct->params == mime::Params{{"filename", "caf\xC3\xA9.pdf"}, {"b", "open"}});
  }
  SECTION("comments are skipped in both modes") {
    const auto ct = mime::parse_content_type(
        "text/plain (plain text) ; charset=\"us-ascii\" (ascii) ; (nested (comment)) x=y");
    REQUIRE(ct);
    CHECK(ct->params == mime::Params{{"charset", "us-ascii"}, {"x", "y"}});
  }
  SECTION("RFC 2231 continuations are joined") {
    const auto ct = mime::parse_content_type(
        "message/external-body; access-type=URL;\r\n URL*0=\"ftp://\";\r\n URL*1=\"x.test/f\"");
    REQUIRE(ct);
    CHECK(ct->param("url") == "ftp://x.test/f");
  }
  SECTION("no type is no Content-Type") {
    for (const char* v : {"", "text", "/plain", "text/", "; charset=x", "\xC3\xA9/x"}) {
      CAPTURE(v);
      CHECK_FALSE(mime::parse_content_type(v, Syntax::kLenient));
    }
  }
}

TEST_CASE("multipart: Content-Disposition values", "[mime][unit]") {
  const auto d = mime::parse_content_disposition(
      " Attachment;\r\n filename*0*=utf-8''%E2%82%AC; filename*1=\".txt\"; size=12");
  REQUIRE(d);
  CHECK(d->type == "attachment");
  CHECK(d->params == mime::Params{{"filename*", "utf-8''%E2%82%AC.txt"}, {"size", "12"}});
  CHECK(mime::param_utf8(d->params, "filename") == "\xE2\x82\xAC.txt");
  const auto bare = mime::parse_content_disposition("inline");
  REQUIRE(bare);
  CHECK(bare->type == "inline");
  CHECK(bare->params.empty());
  CHECK_FALSE(mime::parse_content_disposition(" ; filename=x"));
}

TEST_CASE("multipart: the lenient splitter", "[mime][unit]") {
  using R = mime::ByteRange;
  SECTION("the same cut as split_multipart, as offsets") {
    const std::string body = "pre\r\n--b\r\none\r\n--b\r\ntwo\r\n--b--\r\nepilogue";
    const auto l = mime::find_parts(body, "b", 100);
    CHECK(l.opened);
    CHECK(l.closed);
    REQUIRE(l.parts.size() == 2);
    CHECK(l.parts[0].of(body) == "one");
    CHECK(l.parts[1].of(body) == "two");
  }
  SECTION("bare LF lines") {
    const std::string body = "--b\nContent-Type: text/plain\n\none\n--b\n\ntwo\n--b--\n";
    const auto l = mime::find_parts(body, "b", 100);
    REQUIRE(l.parts.size() == 2);
    CHECK(l.parts[0].of(body) == "Content-Type: text/plain\n\none");
    CHECK(l.parts[1].of(body) == "\ntwo");
  }
  SECTION("no close delimiter: the last part runs to the end") {
    const std::string body = "--b\r\none\r\n--b\r\ntwo\r\n";
    const auto l = mime::find_parts(body, "b", 100);
    CHECK(l.opened);
    CHECK_FALSE(l.closed);
    REQUIRE(l.parts.size() == 2);
    CHECK(l.parts[1].of(body) == "two\r\n");
    const auto ends_at_delimiter = mime::find_parts("--b", "b", 100);
    CHECK(ends_at_delimiter.parts == std::vector<R>{{3, 3}});
  }
  SECTION("no opening delimiter, or only a close delimiter: no parts") {
    CHECK(mime::find_parts("text\r\n--c\r\n", "b", 100).parts.empty());
    const auto l = mime::find_parts("--b--\r\n--b\r\nx\r\n", "b", 100);
    CHECK(l.closed);
    CHECK_FALSE(l.opened);
    CHECK(l.parts.empty());
    CHECK(mime::find_parts("--\r\n", "", 100).parts.empty());
  }
  SECTION("after max_parts the last part takes the rest") {
    const std::string body = "--b\r\n1\r\n--b\r\n2\r\n--b\r\n3\r\n--b--\r\n";
    const auto l = mime::find_parts(body, "b", 2);
    REQUIRE(l.parts.size() == 2);
    CHECK(l.parts[1].of(body) == "2\r\n--b\r\n3\r\n--b--\r\n");
    CHECK_FALSE(l.closed);
  }
  SECTION("boundaries over 70 characters are accepted here, not by split_multipart") {
    const std::string b(100, 'x');
    const std::string body = "--" + b + "\r\none\r\n--" + b + "--\r\n";
    CHECK(mime::find_parts(body, b, 10).parts.size() == 1);
    CHECK_FALSE(mime::split_multipart(body, b).is_ok());
  }
}
