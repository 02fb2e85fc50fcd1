#include "mta/mime/mime_tree.h"

#include <catch2/catch.hpp>

#include "tests/mime/corpus.h"

namespace mime = mta::mime;
using mime_test::crlf;
using mime::PartKind;


TEST_CASE("mime tree: a message without MIME fields", "[mime][unit]") {
  const std::string m = crlf("From: a@b\nSubject: hi\n\nline 1\nline 2\n");
  const auto t = mime::parse_message(m);
  const mime::Part& r = t.root;
  CHECK(r.kind == PartKind::kLeaf);
  CHECK(r.header == mime::ByteRange{0, m.find("line 1")});
  CHECK(r.body.of(m) == "line 1\r\nline 2\r\n");
  CHECK(r.type.type == "text");
  CHECK(r.type.subtype == "plain");
  CHECK(r.type.param("charset") == "us-ascii");
  CHECK(r.encoding == "7bit");
  CHECK(r.lines == 2);
  CHECK(t.part_count == 1);
  CHECK_FALSE(t.limited);
}

TEST_CASE("mime tree: MIME fields of a part", "[mime][unit]") {
  const std::string m = crlf(
      "Content-Type: Application/PDF; name=\"r.pdf\"\n"
      "Content-Transfer-Encoding: BASE64\n"
      "Content-Disposition: attachment; filename*=utf-8''r%C3%A9.pdf\n"
      "Content-ID: <id@x>\n"
      "Content-Description: the\n report\n"
      "Content-Language: en (English), de\n"
      "Content-Location: http://x.test/r.pdf\n"
      "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
      "Content-Type: text/plain\n"
      "\n"
      "JVBERi0=\n");
  const auto t = mime::parse_message(m);
  const mime::Part& r = t.root;
  CHECK(r.type.type == "application");
  CHECK(r.type.subtype == "pdf");
  CHECK(r.type.param("name") == "r.pdf");
  CHECK(r.encoding == "base64");
  CHECK(r.transfer_encoding() == mime::TransferEncoding::kBase64);
  REQUIRE(r.disposition);
  CHECK(r.disposition->type == "attachment");
  CHECK(r.disposition->params == mime::Params{{"filename*", "utf-8''r%C3%A9.pdf"}});
  CHECK(r.id == "<id@x>");
  CHECK(r.description == "the report");
  CHECK(r.languages == std::vector<std::string>{"en", "de"});
  CHECK(r.location == "http://x.test/r.pdf");
  CHECK(r.md5 == "Q2hlY2sgSW50ZWdyaXR5IQ==");
  CHECK(r.lines == 0);  // counted for text and message parts only
}

TEST_CASE("mime tree: defaults for missing and broken fields", "[mime][unit]") {
  SECTION("unreadable Content-Type and encoding") {
    const auto t = mime::parse_message(
        crlf("Content-Type: garbage\nContent-Transfer-Encoding: ?invalid\n\nx"));
    CHECK(t.root.type.type == "text");
    CHECK(t.root.type.param("charset") == "us-ascii");
    CHECK(t.root.encoding == "7bit");
  }
  SECTION("digest parts default to message/rfc822, unless their type is broken") {
    const std::string m = crlf(
        "Content-Type: multipart/digest; boundary=d\n\n"
        "--d\n\nSubject: one\n\nbody\n"
        "--d\nContent-Type: bogus\n\nSubject: two\n"
        "--d--\n");
    const auto t = mime::parse_message(m);
    REQUIRE(t.root.children.size() == 2);
    const mime::Part& first = t.root.children[0];
    CHECK(first.kind == PartKind::kMessage);
    REQUIRE(first.children.size() == 1);
    CHECK(first.children[0].header.of(m) == "Subject: one\r\n\r\n");
    CHECK(first.children[0].body.of(m) == "body");
    CHECK(t.root.children[1].kind == PartKind::kLeaf);
    CHECK(t.root.children[1].type.type == "text");
  }
}

TEST_CASE("mime tree: multipart offsets", "[mime][unit]") {
  const std::string m = crlf(
      "Content-Type: multipart/mixed; boundary=\"o\"\n"
      "\n"
      "preamble\n"
      "--o\n"
      "Content-Type: text/plain\n"
      "\n"
      "one\n"
      "--o\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "Subject: inner\n"
      "Content-Type: multipart/alternative; boundary=i\n"
      "\n"
      "--i\n"
      "\n"
      "a\n"
      "--i\n"
      "Content-Type: text/html\n"
      "\n"
      "<b>\n"
      "--i--\n"
      "--o--\n"
      "epilogue\n");
  const auto t = mime::parse_message(m);
  CHECK(t.part_count == 6);
  const mime::Part& r = t.root;
  REQUIRE(r.kind == PartKind::kMultipart);
  REQUIRE(r.children.size() == 2);
  CHECK(r.body.of(m).substr(0, 8) == "preamble");
  const mime::Part& text = r.children[0];
  CHECK(text.header.of(m) == "Content-Type: text/plain\r\n\r\n");
  CHECK(text.body.of(m) == "one");
  CHECK(text.lines == 0);
  const mime::Part& msg = r.children[1];
  CHECK(msg.kind == PartKind::kMessage);
  CHECK(msg.header.of(m) == "Content-Type: message/rfc822\r\n\r\n");
  CHECK(msg.body.of(m).substr(0, 15) == "Subject: inner\r");
  CHECK(msg.lines == 10);
  REQUIRE(msg.children.size() == 1);
  const mime::Part& inner = msg.children[0];
  CHECK(inner.header.begin == msg.body.begin);
  CHECK(inner.body.end == msg.body.end);
  CHECK(inner.kind == PartKind::kMultipart);
  REQUIRE(inner.children.size() == 2);
  CHECK(inner.children[0].header.of(m) == "\r\n");
  CHECK(inner.children[0].body.of(m) == "a");
  CHECK(inner.children[1].type.subtype == "html");
  CHECK(inner.children[1].body.of(m) == "<b>");
}

TEST_CASE("mime tree: broken multiparts", "[mime][unit]") {
  SECTION("no boundary parameter, or a boundary that never occurs") {
    for (const char* ct : {"multipart/mixed", "multipart/mixed; boundary=absent"}) {
      CAPTURE(ct);
      const std::string m = crlf(std::string("Content-Type: ") + ct + "\n\ntext\n--other\n");
      const auto t = mime::parse_message(m);
      REQUIRE(t.root.kind == PartKind::kMultipart);
      REQUIRE(t.root.children.size() == 1);
      const mime::Part& only = t.root.children[0];
      CHECK(only.header.size() == 0);
      CHECK(only.body == t.root.body);
      CHECK(only.type.type == "text");
      CHECK(only.lines == 2);
    }
  }
  SECTION("no close delimiter") {
    const std::string m =
        crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n");
    const auto t = mime::parse_message(m);
    REQUIRE(t.root.children.size() == 2);
    CHECK(t.root.children[1].body.of(m) == "two\r\n");
  }
  SECTION("bare LF") {
    const std::string m = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--\n";
    const auto t = mime::parse_message(m);
    REQUIRE(t.root.children.size() == 1);
    CHECK(t.root.children[0].body.of(m) == "one");
  }
  SECTION("empty message and header only") {
    for (const char* m : {"", "Subject: x", "Subject: x\r\n\r\n", "\r\n"}) {
      const auto t = mime::parse_message(m);
      CHECK(t.root.body.size() == 0);
      CHECK(t.root.kind == PartKind::kLeaf);
    }
  }
}

TEST_CASE("mime tree: depth and part limits", "[mime][unit]") {
  SECTION("nesting deeper than kMaxMimeDepth becomes a leaf, without overflowing the stack") {
    const int depth = 20000;
    std::string m;
    for (int i = 0; i < depth; ++i) m += "Content-Type: message/rfc822\r\n\r\n";
    m += "Subject: bottom\r\n\r\nx";
    const auto t = mime::parse_message(m);
    CHECK(t.limited);
    const mime::Part* p = &t.root;
    size_t levels = 0;
    while (!p->children.empty()) {
      p = &p->children.front();
      ++levels;
    }
    CHECK(levels == mime::kMaxMimeDepth);
    CHECK(p->kind == PartKind::kLeaf);
    CHECK(p->type.is("message", "rfc822"));
  }
  SECTION("nested multiparts") {
    std::string m;
    for (int i = 0; i < 300; ++i)
      m += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
           std::to_string(i) + "\r\n";
    const auto t = mime::parse_message(m);
    CHECK(t.limited);
    CHECK(t.part_count == mime::kMaxMimeDepth + 1);
  }
  SECTION("more than kMaxMimeParts parts") {
    std::string m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
    for (int i = 0; i < 20000; ++i) m += "--b\r\n\r\nx\r\n";
    m += "--b--\r\n";
    const auto t = mime::parse_message(m);
    CHECK(t.part_count == mime::kMaxMimeParts);
    CHECK(t.root.children.size() == mime::kMaxMimeParts - 1);
    // The last part holds the rest of the body.
    CHECK(t.root.children.back().body.end == m.size());
  }
}
