// The hand-written corpus (corpus/README.md) through the whole MIME stack. Expected
// BODYSTRUCTURE and ENVELOPE strings follow RFC 9051 §7.5.2 and §9; octet and line counts
// were counted on the files independently of this code (split at the delimiter lines, the
// line end before a delimiter belonging to it). The shapes, decoded Subjects and attachment
// file names match what Python's email package reports (corpus_structure.py), except where
// noted.

#include "tests/mime/corpus.h"

#include <catch2/catch.hpp>
#include <functional>
#include <iostream>

#include "mta/mime/header_section.h"
#include "mta/mime/imap_section.h"
#include "mta/mime/imap_structure.h"
#include "mta/mime/search_text.h"

namespace mime = mta::mime;

namespace {

// "multipart/mixed(text/plain,message/rfc822(text/plain))", as corpus_structure.py prints.
std::string shape(const mime::Part& p) {
  std::string s = p.type.type + "/" + p.type.subtype;
  if (p.children.empty()) return s;
  s += '(';
  for (size_t i = 0; i < p.children.size(); ++i) {
    if (i) s += ',';
    s += shape(p.children[i]);
  }
  return s + ')';
}

std::string bodystructure(const std::string& name) {
  const std::string m = mime_test::load_corpus(name);
  return mime::imap_body_structure(m, mime::parse_message(m).root, true, false);
}

std::string envelope(const std::string& name, bool utf8 = false) {
  const std::string m = mime_test::load_corpus(name);
  return mime::imap_envelope(m, mime::parse_message(m).root, utf8);
}

std::string decoded_field(const std::string& name, std::string_view field) {
  const std::string m = mime_test::load_corpus(name);
  const auto hs = mime::read_header_section(m);
  const auto* f = mime::find_field(hs.fields, field);
  return f ? mime::decode_header_value(f->value) : "<absent>";
}

}  // namespace

TEST_CASE("corpus: MIME shapes", "[mime][unit]") {
  std::string deep = "text/plain";
  for (size_t i = 0; i < mime::kMaxMimeDepth; ++i) deep = "multipart/mixed(" + deep + ")";
  // Python nests all 60 levels; Porter stops at kMaxMimeDepth, the 51st is a leaf.
  std::string capped = "multipart/mixed";
  for (size_t i = 0; i < mime::kMaxMimeDepth; ++i) capped = "multipart/mixed(" + capped + ")";
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"addresses.eml", "text/plain"},
      {"alternative.eml", "multipart/alternative(text/plain,text/html)"},
      // Python gives the multipart no parts; Porter one headerless text part with the body.
      {"broken_boundary.eml", "multipart/mixed(text/plain)"},
      {"deep_nesting.eml", capped},
      {"digest.eml", "multipart/digest(message/rfc822(text/plain),message/rfc822(text/plain))"},
      {"eight_bit_headers.eml", "text/plain"},
      {"empty_body.eml", "text/plain"},
      {"encoded_words.eml", "text/plain"},
      {"lf_only.lf.eml", "multipart/mixed(text/plain,text/plain)"},
      {"mixed_attachments.eml", "multipart/mixed(text/plain,application/pdf,image/png)"},
      {"nested_rfc822.eml",
       "multipart/mixed(text/plain,message/rfc822(multipart/alternative(text/plain,text/html)))"},
      {"no_final_boundary.eml", "multipart/mixed(text/plain,text/plain)"},
      {"rfc2231.eml", "multipart/mixed(text/plain,application/octet-stream,text/plain)"},
  };
  std::vector<std::string> names;
  for (const auto& [name, s] : expected) {
    CAPTURE(name);
    const std::string m = mime_test::load_corpus(name);
    CHECK(shape(mime::parse_message(m).root) == s);
    names.push_back(name);
  }
  CHECK(names == mime_test::corpus_names());  // every corpus file has an expected shape
}

TEST_CASE("corpus: BODYSTRUCTURE", "[mime][unit]") {
  SECTION("multipart/alternative with quoted-printable and base64") {
    CHECK(bodystructure("alternative.eml") ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"UTF-8\" \"FORMAT\" \"flowed\") NIL NIL "
          "\"QUOTED-PRINTABLE\" 61 4 NIL NIL NIL NIL)"
          "(\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") NIL NIL \"BASE64\" 106 1 NIL NIL NIL NIL)"
          " \"ALTERNATIVE\" (\"BOUNDARY\" \"=_alt_7f3a\") NIL NIL NIL)");
  }
  SECTION("multipart/mixed with attachments and every extension field") {
    CHECK(bodystructure("mixed_attachments.eml") ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 56 2 NIL NIL NIL NIL)"
          "(\"APPLICATION\" \"PDF\" (\"NAME\" \"report-q1.pdf\") NIL \"Q1 report\" \"BASE64\" 36 "
          "NIL (\"ATTACHMENT\" (\"FILENAME\" \"report-q1.pdf\" \"SIZE\" \"24\")) NIL NIL)"
          "(\"IMAGE\" \"PNG\" NIL \"<chart1@example.com>\" NIL \"BASE64\" 98 NIL (\"INLINE\" NIL) "
          "(\"en\" \"de\") \"http://example.com/chart.png\")"
          " \"MIXED\" (\"BOUNDARY\" \"mixed-boundary-42\") NIL \"en\" NIL)");
  }
  SECTION("a forwarded message/rfc822 with its own multipart") {
    CHECK(bodystructure("nested_rfc822.eml") ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)"
          "(\"MESSAGE\" \"RFC822\" NIL NIL \"forwarded message\" \"7BIT\" 387 "
          "(\"Thu, 7 Mar 2024 11:00:00 +0000\" \"Lunch?\" ((\"Heidi\" NIL \"heidi\" "
          "\"example.net\")) ((\"Heidi\" NIL \"heidi\" \"example.net\")) ((\"Heidi\" NIL \"heidi\" "
          "\"example.net\")) ((\"Frank\" NIL \"frank\" \"example.org\")) NIL NIL NIL "
          "\"<lunch@example.net>\") "
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 0 NIL NIL NIL NIL)"
          "(\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 21 0 NIL NIL NIL NIL)"
          " \"ALTERNATIVE\" (\"BOUNDARY\" \"inner\") NIL NIL NIL) 17 NIL NIL NIL NIL)"
          " \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)");
  }
  SECTION("RFC 2231 parameters keep their extended form") {
    CHECK(bodystructure("rfc2231.eml") ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 16 0 NIL NIL NIL NIL)"
          "(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME*\" \"utf-8''%E2%82%AC-rates.txt\") NIL NIL "
          "\"BASE64\" 12 NIL (\"ATTACHMENT\" (\"FILENAME*\" "
          "\"utf-8''%E2%82%AC%20exchange%20rates%20for%202024.txt\")) NIL NIL)"
          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\" \"TITLE\" \"A long title that is "
          "continued\") NIL NIL \"7BIT\" 6 0 NIL (\"ATTACHMENT\" (\"FILENAME\" "
          "\"=?UTF-8?B?w6l0w6kudHh0?=\")) NIL NIL)"
          " \"MIXED\" (\"BOUNDARY\" \"2231\") NIL NIL NIL)");
  }
  SECTION("multipart/digest parts are message/rfc822 by default") {
    CHECK(bodystructure("digest.eml") ==
          "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 50 (NIL \"one\" ((NIL NIL \"a\" "
          "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" \"example.org\")) "
          "NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 13 "
          "0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)"
          "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 51 (NIL \"two\" ((NIL NIL \"b\" "
          "\"example.org\")) ((NIL NIL \"b\" \"example.org\")) ((NIL NIL \"b\" \"example.org\")) "
          "NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 "
          "0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)"
          " \"DIGEST\" (\"BOUNDARY\" \"dig\") NIL NIL NIL)");
  }
  SECTION("broken boundaries") {
    CHECK(bodystructure("broken_boundary.eml") ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 104 5 NIL NIL NIL NIL)"
          " \"MIXED\" (\"BOUNDARY\" \"declared\") NIL NIL NIL)");
    CHECK(bodystructure("no_final_boundary.eml") ==
          "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL)"
          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 46 1 NIL NIL NIL NIL)"
          " \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)");
  }
  SECTION("bare LF mail: sizes are of the stored bytes") {
    CHECK(
        bodystructure("lf_only.lf.eml") ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 17 1 NIL NIL NIL NIL)"
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"QUOTED-PRINTABLE\" 11 1 NIL NIL "
        "NIL NIL) \"MIXED\" (\"BOUNDARY\" \"lf\") NIL NIL NIL)");
  }
  SECTION("single parts") {
    CHECK(bodystructure("empty_body.eml") ==
          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)");
    CHECK(bodystructure("eight_bit_headers.eml") ==
          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 24 1 NIL NIL NIL NIL)");
  }
}

TEST_CASE("corpus: ENVELOPE", "[mime][unit]") {
  SECTION("encoded words stay encoded") {
    CHECK(envelope("alternative.eml") ==
          "(\"Tue, 5 Mar 2024 10:14:58 +0100\" \"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=\" "
          "((\"=?UTF-8?Q?Anna_M=C3=BCller?=\" NIL \"anna\" \"example.org\")) "
          "((\"=?UTF-8?Q?Anna_M=C3=BCller?=\" NIL \"anna\" \"example.org\")) "
          "((\"=?UTF-8?Q?Anna_M=C3=BCller?=\" NIL \"anna\" \"example.org\")) "
          "((\"Bob Smith\" NIL \"bob\" \"porter.test\")) NIL NIL NIL "
          "\"<20240305101458.A1B2@example.org>\")");
  }
  SECTION("Cc list, In-Reply-To") {
    CHECK(envelope("mixed_attachments.eml") ==
          "(\"Wed, 6 Mar 2024 09:00:00 -0500\" \"Quarterly report\" "
          "((\"Carol Jones\" NIL \"carol\" \"example.com\")) "
          "((\"Carol Jones\" NIL \"carol\" \"example.com\")) "
          "((\"Carol Jones\" NIL \"carol\" \"example.com\")) "
          "((NIL NIL \"team\" \"porter.test\")) "
          "((\"Dave (ops)\" NIL \"dave\" \"example.com\")(NIL NIL \"eve\" \"example.net\")) NIL "
          "\"<q1-draft@example.com>\" \"<q1-report@example.com>\")");
  }
  SECTION("address edge cases") {
    CHECK(
        envelope("addresses.eml") ==
        "(\"Sat, 16 Mar 2024 08:00:00 +0000\" \"address edge cases\" "
        "((\"Pete\" NIL \"pete\" \"silly.test\")) ((\"Pete\" NIL \"pete\" \"silly.test\")) "
        "((\"Joe Q. Public\" \"@relay1.example,@relay2.example\" \"joe\" \"example.com\")) "
        "((NIL NIL \"A Group\" NIL)(\"Ed Jones\" NIL \"c\" \"a.test\")"
        "(NIL NIL \"joe\" \"where.test\")(\"John\" NIL \"jdoe\" \"one.test\")(NIL NIL NIL NIL)) "
        "((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)"
        "(\"quoted \\\"name\\\"\" NIL \"q\" \"x.test\")(NIL NIL \"localonly\" \"MISSING_DOMAIN\")) "
        "((\"Real Name\" NIL \"user\" \"domain\")(NIL \"@route\" \"user2\" \"domain2\")) "
        "\"<a@b>\" \"<c@d>\")");
  }
  SECTION("empty Subject is an empty string, not NIL") {
    CHECK(envelope("empty_body.eml") ==
          "(\"Thu, 14 Mar 2024 08:00:00 +0000\" \"\" ((NIL NIL \"walter\" \"example.com\")) "
          "((NIL NIL \"walter\" \"example.com\")) ((NIL NIL \"walter\" \"example.com\")) "
          "((NIL NIL \"zoe\" \"porter.test\")) NIL NIL NIL NIL)");
  }
  SECTION("8-bit headers: literals, or quoted UTF-8 after ENABLE UTF8=ACCEPT") {
    const std::string name = "J\xC3\xBCrgen Wei\xC3\x9F";
    const std::string subject =
        "Gr\xC3\xBC\xC3\x9F"
        "e, raw UTF-8 in a header";
    const std::string from = "((\"" + name + "\" NIL \"juergen\" \"example.de\"))";
    CHECK(envelope("eight_bit_headers.eml", true) ==
          "(\"Sun, 10 Mar 2024 08:00:00 +0100\" \"" + subject + "\" " + from + " " + from + " " +
              from + " ((NIL NIL \"peggy\" \"porter.test\")) NIL NIL NIL NIL)");
    const std::string lit_from = "(({13}\r\n" + name + " NIL \"juergen\" \"example.de\"))";
    CHECK(envelope("eight_bit_headers.eml", false) ==
          "(\"Sun, 10 Mar 2024 08:00:00 +0100\" {30}\r\n" + subject + " " + lit_from + " " +
              lit_from + " " + lit_from +
              " ((NIL NIL \"peggy\" \"porter.test\")) NIL NIL NIL NIL)");
  }
}

TEST_CASE("corpus: header values decoded for SEARCH", "[mime][unit]") {
  CHECK(decoded_field("alternative.eml", "Subject") ==
        "Gr\xC3\xBC\xC3\x9F"
        "e aus M\xC3\xBCnchen");
  CHECK(decoded_field("alternative.eml", "From") == "Anna M\xC3\xBCller <anna@example.org>");
  // UTF-8 words joined (the euro sign is split across two words), Shift_JIS, and an unknown
  // charset whose 8-bit byte becomes U+FFFD.
  CHECK(decoded_field("encoded_words.eml", "Subject") ==
        "\xF0\x9F\x98\x82 split \xE2\x82\xAC and \xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88"
        "x\xEF\xBF\xBDy");
  CHECK(decoded_field("encoded_words.eml", "From") == "Andr\xC3\xA9 Pirard <PIRARD@vm1.ulg.ac.be>");
  CHECK(decoded_field("encoded_words.eml", "To") ==
        "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 <privet@example.ru>, "
        "undisclosed-recipients:;");
  CHECK(decoded_field("encoded_words.eml", "Cc") ==
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E <nihongo@example.jp>");
  CHECK(decoded_field("eight_bit_headers.eml", "X-Latin1") == "caf\xEF\xBF\xBD");
}

TEST_CASE("corpus: attachment names and body text", "[mime][unit]") {
  const std::string m = mime_test::load_corpus("rfc2231.eml");
  const auto tree = mime::parse_message(m);
  REQUIRE(tree.root.children.size() == 3);
  const mime::Part& pdf = tree.root.children[1];
  REQUIRE(pdf.disposition);
  CHECK(mime::param_utf8(pdf.disposition->params, "filename") ==
        "\xE2\x82\xAC exchange rates for 2024.txt");
  CHECK(mime::param_utf8(pdf.type.params, "name") == "\xE2\x82\xAC-rates.txt");
  CHECK(mime::decoded_content(m, pdf) == "EUR 1.00\n");
  const mime::Part& third = tree.root.children[2];
  CHECK(mime::param_utf8(third.disposition->params, "filename") == "\xC3\xA9t\xC3\xA9.txt");

  const std::string alt = mime_test::load_corpus("alternative.eml");
  CHECK(mime::body_text_utf8(alt, mime::parse_message(alt), 1 << 20) ==
        "Hallo Bob,\r\n\r\nviele Gr\xC3\xBC\xC3\x9F"
        "e aus M\xC3\xBCnchen!\r\n\r\nAnna\n"
        "<html><body><p>Hallo Bob,</p><p>viele Gr\xC3\xBC\xC3\x9F"
        "e aus M\xC3\xBCnchen!</p>"
        "</body></html>\n\n");
  const std::string lf = mime_test::load_corpus("lf_only.lf.eml");
  CHECK(mime::body_text_utf8(lf, mime::parse_message(lf), 1 << 20) ==
        "line one\nline two\nsoftbreak\n");
}

TEST_CASE("corpus: sections of a forwarded message", "[mime][unit]") {
  const std::string m = mime_test::load_corpus("nested_rfc822.eml");
  const auto tree = mime::parse_message(m);
  const auto get = [&](std::string_view spec) -> std::string {
    auto s = mime::parse_section(spec);
    REQUIRE(s.is_ok());
    auto r = mime::find_section(m, tree, *s);
    REQUIRE(r.is_ok());
    return std::string(r->view(m));
  };
  CHECK(get("1") == "See below.\r\n");
  CHECK(get("2.MIME") ==
        "Content-Type: message/rfc822\r\nContent-Description: forwarded message\r\n\r\n");
  CHECK(get("2.HEADER.FIELDS (SUBJECT FROM)") ==
        "From: Heidi <heidi@example.net>\r\nSubject: Lunch?\r\n\r\n");
  CHECK(get("2.1") == "Lunch at noon?");
  CHECK(get("2.2") == "<p>Lunch at noon?</p>");
  CHECK(get("2.2.MIME") == "Content-Type: text/html; charset=us-ascii\r\n\r\n");
  CHECK(get("2.TEXT").substr(0, 9) == "--inner\r\n");
  CHECK(get("2").size() == 387);
  CHECK(get("HEADER.FIELDS (Message-ID)") == "Message-ID: <fwd-lunch@example.org>\r\n\r\n");
}

TEST_CASE("corpus: nesting past the depth limit", "[mime][unit]") {
  const std::string m = mime_test::load_corpus("deep_nesting.eml");
  const auto tree = mime::parse_message(m);
  CHECK(tree.limited);
  CHECK(tree.part_count == mime::kMaxMimeDepth + 1);
  const mime::Part* p = &tree.root;
  while (!p->children.empty()) p = &p->children.front();
  CHECK(p->kind == mime::PartKind::kLeaf);
  CHECK(p->type.param("boundary") == "b50");
  const std::string_view body = p->body.of(m);
  CHECK(body.substr(0, 7) == "--b50\r\n");
  CHECK(body.substr(body.size() - 7) == "--b50--");
  std::string section;
  for (size_t i = 0; i < mime::kMaxMimeDepth; ++i) section += i ? ".1" : "1";
  auto spec = mime::parse_section(section);
  REQUIRE(spec.is_ok());
  auto r = mime::find_section(m, tree, *spec);
  REQUIRE(r.is_ok());
  CHECK(r->view(m) == body);
}

TEST_CASE("corpus: dump for comparing by hand", "[.dump]") {
  for (const auto& name : mime_test::corpus_names()) {
    const std::string m = mime_test::load_corpus(name);
    const auto t = mime::parse_message(m);
    std::cout << name << " " << shape(t.root) << "\nBODYSTRUCTURE "
              << mime::imap_body_structure(m, t.root, true, false) << "\nENVELOPE "
              << mime::imap_envelope(m, t.root, false) << "\n\n";
  }
}
