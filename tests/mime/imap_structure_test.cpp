#include "mta/mime/imap_structure.h"

#include <catch2/catch.hpp>

#include "tests/mime/corpus.h"

namespace mime = mta::mime;
using mime_test::crlf;

namespace {
std::string str(std::string_view s, bool utf8 = false) {
  std::string out;
  mime::append_imap_string(out, s, utf8);
  return out;
}
std::string envelope(std::string_view lf_message) {
  const std::string m = crlf(lf_message);
  return mime::imap_envelope(m, mime::parse_message(m).root, false);
}
std::string bodystructure(std::string_view lf_message, bool extended = true) {
  const std::string m = crlf(lf_message);
  return mime::imap_body_structure(m, mime::parse_message(m).root, extended, false);
}
}  // namespace

TEST_CASE("imap structure: strings", "[mime][unit]") {
  CHECK(str("") == "\"\"");
  CHECK(str("plain text") == "\"plain text\"");
  CHECK(str("a \"q\" \\ b") == "\"a \\\"q\\\" \\\\ b\"");
  CHECK(str("two\r\nlines") == "{10}\r\ntwo\r\nlines");
  CHECK(str("caf\xC3\xA9") == "{5}\r\ncaf\xC3\xA9");
  CHECK(str("caf\xC3\xA9", true) == "\"caf\xC3\xA9\"");
  CHECK(str("caf\xE9", true) == "{4}\r\ncaf\xE9");  // not UTF-8: still a literal
  CHECK(str(std::string("n\0ul", 4)) == "\"nul\"");
  std::string n;
  mime::append_imap_nstring(n, std::nullopt, false);
  mime::append_imap_nstring(n, std::string("x"), false);
  CHECK(n == "NIL\"x\"");
}

TEST_CASE("imap structure: ENVELOPE", "[mime][unit]") {
  SECTION("every field") {
    CHECK(envelope("Message-ID: <msg@id>\n"
                   "In-Reply-To: <reply@to.id>\n"
                   "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
                   "Subject: subject\n header\n"
                   "From: From Real <fromuser@fromdomain.org>\n"
                   "To: To Real <touser@todomain.org>\n"
                   "Cc: Cc Real <ccuser@ccdomain.org>\n"
                   "Bcc: Bcc Real <bccuser@bccdomain.org>\n"
                   "Sender: Sender Real <senderuser@senderdomain.org>\n"
                   "Reply-To: ReplyTo Real <replytouser@replytodomain.org>\n"
                   "\n"
                   "body\n") ==
          "(\"Thu, 15 Feb 2007 01:02:03 +0200\" \"subject header\" "
          "((\"From Real\" NIL \"fromuser\" \"fromdomain.org\")) "
          "((\"Sender Real\" NIL \"senderuser\" \"senderdomain.org\")) "
          "((\"ReplyTo Real\" NIL \"replytouser\" \"replytodomain.org\")) "
          "((\"To Real\" NIL \"touser\" \"todomain.org\")) "
          "((\"Cc Real\" NIL \"ccuser\" \"ccdomain.org\")) "
          "((\"Bcc Real\" NIL \"bccuser\" \"bccdomain.org\")) "
          "\"<reply@to.id>\" \"<msg@id>\")");
  }
  SECTION("Sender and Reply-To absent or empty fall back to From") {
    const std::string from = "((\"Real Name\" NIL \"user\" \"domain\"))";
    const std::string expected =
        "(NIL NIL " + from + " " + from + " " + from + " NIL NIL NIL NIL NIL)";
    CHECK(envelope("From: user@domain (Real Name)\n\n") == expected);
    CHECK(envelope("From: user@domain (Real Name)\nSender: \nReply-To: (none)\n\n") == expected);
  }
  SECTION("groups") {
    CHECK(envelope("To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n"
                   "Cc: group:;, group2: (foo) ;\n\n") ==
          "(NIL NIL NIL NIL NIL "
          "((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")"
          "(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)) "
          "((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) "
          "NIL NIL NIL)");
  }
  SECTION("routes, missing parts, empty and 8-bit values") {
    CHECK(envelope("From: <@route:user@domain>\nTo: localonly, @host\nSubject:\n\n") ==
          "(NIL \"\" ((NIL \"@route\" \"user\" \"domain\")) ((NIL \"@route\" \"user\" \"domain\")) "
          "((NIL \"@route\" \"user\" \"domain\")) "
          "((NIL NIL \"localonly\" \"MISSING_DOMAIN\")(NIL NIL \"MISSING_MAILBOX\" \"host\")) "
          "NIL NIL NIL NIL)");
    const std::string m = "Subject: caf\xC3\xA9\r\n\r\n";
    const auto root = mime::parse_message(m).root;
    CHECK(mime::imap_envelope(m, root, false) ==
          "(NIL {5}\r\ncaf\xC3\xA9 NIL NIL NIL NIL NIL NIL NIL NIL)");
    CHECK(mime::imap_envelope(m, root, true) ==
          "(NIL \"caf\xC3\xA9\" NIL NIL NIL NIL NIL NIL NIL NIL)");
  }
  SECTION("the first of repeated fields counts; names are case-insensitive") {
    CHECK(envelope("SUBJECT: one\nsubject: two\n\n") ==
          "(NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL)");
  }
}

TEST_CASE("imap structure: BODY and BODYSTRUCTURE of single parts", "[mime][unit]") {
  SECTION("RFC 9051 defaults: text/plain, us-ascii, 7bit") {
    // "hello\r\nworld\r\n": 14 octets, 2 lines.
    CHECK(bodystructure("Subject: x\n\nhello\nworld\n") ==
          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 2 NIL NIL NIL NIL)");
    CHECK(bodystructure("Subject: x\n\nhello\nworld\n", false) ==
          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 14 2)");
  }
  SECTION("text without a charset gets the default one after its parameters") {
    CHECK(
        bodystructure("Content-Type: text/html; Format=flowed\n\n<p>\n") ==
        "(\"TEXT\" \"HTML\" (\"FORMAT\" \"flowed\" \"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1 "
        "NIL NIL NIL NIL)");
  }
  SECTION("a basic part with every extension field") {
    CHECK(bodystructure("Content-Type: image/png; name=a.png\n"
                        "Content-ID: <img@x>\n"
                        "Content-Description: a picture\n"
                        "Content-Transfer-Encoding: base64\n"
                        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
                        "Content-Disposition: inline; filename=\"a.png\"\n"
                        "Content-Language: en, fi\n"
                        "Content-Location: http://x.test/a.png\n"
                        "\n"
                        "iVBORw0K\n") ==
          "(\"IMAGE\" \"PNG\" (\"NAME\" \"a.png\") \"<img@x>\" \"a picture\" \"BASE64\" 10 "
          "\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"INLINE\" (\"FILENAME\" \"a.png\")) (\"en\" \"fi\") "
          "\"http://x.test/a.png\")");
  }
  SECTION("a disposition without parameters, one language") {
    CHECK(
        bodystructure("Content-Type: application/octet-stream\n"
                      "Content-Disposition: attachment\n"
                      "Content-Language: de\n\nab") ==
        "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 2 NIL (\"ATTACHMENT\" NIL) \"de\" "
        "NIL)");
  }
  SECTION("8-bit parameter values become literals") {
    CHECK(bodystructure("Content-Type: application/pdf; name=\"\xC3\xA9.pdf\"\n\n") ==
          "(\"APPLICATION\" \"PDF\" (\"NAME\" {6}\r\n\xC3\xA9.pdf) NIL NIL \"7BIT\" 0 NIL NIL NIL "
          "NIL)");
  }
}

TEST_CASE("imap structure: multipart and message/rfc822", "[mime][unit]") {
  const std::string lf =
      "From: sub@domain.org\n"
      "Content-Type: multipart/mixed; boundary=\"foo bar\"\n"
      "\n"
      "--foo bar\n"
      "Content-Type: text/plain\n"
      "\n"
      "hello\n"
      "\n"
      "--foo bar\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "From: inner@domain.org\n"
      "Subject: submsg\n"
      "Content-Type: multipart/alternative; boundary=sub1\n"
      "\n"
      "--sub1\n"
      "Content-Type: text/html\n"
      "Content-Transfer-Encoding: 8bit\n"
      "\n"
      "<p>Hello</p>\n"
      "--sub1--\n"
      "\n"
      "--foo bar--\n";
  // Octets and lines of each body, by hand (CRLF line ends):
  //   text/plain "hello\r\n": 7 octets, 1 line;
  //   text/html "<p>Hello</p>": 12 octets, 0 lines;
  //   message/rfc822: 4 header lines with CRLF (24+17+52+2 = 95) + "--sub1\r\n" (8) +
  //   2 part header lines (25+33) + "\r\n" (2) + "<p>Hello</p>\r\n" (14) + "--sub1--\r\n" (10)
  //   = 187 octets, 10 lines (the CRLF after them belongs to the delimiter "--foo bar--").
  const std::string inner_env =
      "(NIL \"submsg\" ((NIL NIL \"inner\" \"domain.org\")) ((NIL NIL \"inner\" \"domain.org\")) "
      "((NIL NIL \"inner\" \"domain.org\")) NIL NIL NIL NIL NIL)";
  CHECK(bodystructure(lf) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 7 1 NIL NIL NIL NIL)"
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 187 " +
            inner_env +
            " ((\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"8BIT\" 12 0 NIL NIL NIL NIL)"
            " \"ALTERNATIVE\" (\"BOUNDARY\" \"sub1\") NIL NIL NIL) 10 NIL NIL NIL NIL)"
            " \"MIXED\" (\"BOUNDARY\" \"foo bar\") NIL NIL NIL)");
  CHECK(bodystructure(lf, false) ==
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 7 1)"
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 187 " +
            inner_env +
            " ((\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"8BIT\" 12 0)"
            " \"ALTERNATIVE\") 10) \"MIXED\")");
}

TEST_CASE("imap structure: containers cut by the depth limit", "[mime][unit]") {
  std::string m;
  for (size_t i = 0; i <= mime::kMaxMimeDepth; ++i) m += "Content-Type: message/rfc822\r\n\r\n";
  const auto t = mime::parse_message(m);
  const std::string bs = mime::imap_body_structure(m, t.root, true, false);
  CHECK(bs.find("(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 0 NIL NIL NIL NIL)") !=
        std::string::npos);
  size_t count = 0;
  for (size_t at = bs.find("\"RFC822\""); at != std::string::npos;
       at = bs.find("\"RFC822\"", at + 1))
    ++count;
  CHECK(count == mime::kMaxMimeDepth);
}
