#include "mta/mime/compose.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "mta/mime/address_list.h"
#include "mta/mime/encoded_words.h"
#include "mta/mime/header_fold.h"
#include "mta/mime/header_section.h"
#include "mta/mime/mime_tree.h"
#include "mta/mime/transfer_encoding.h"

namespace mime = mta::mime;

namespace {

constexpr int64_t kDate = 1'700'000'000'000;  // Tue, 14 Nov 2023 22:13:20 +0000

core::Address addr(std::string local, std::string domain) {
  return core::Address{std::move(local), std::move(domain)};
}

mime::Composition basic() {
  mime::Composition c;
  c.from = addr("alice", "example.org");
  c.from_name = "Alice";
  c.to = {{"Bob", addr("bob", "example.net")}};
  c.subject = "Hello";
  c.text = "Hi Bob.\r\n";
  c.message_id = "<1.porter@example.org>";
  c.date_ms = kDate;
  return c;
}

std::string compose_ok(const mime::Composition& c, uint64_t seed = 42) {
  auto r = mime::compose(c, seed);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return *r;
}

std::string crlf_to_lf(std::string s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i)
    if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
  return out;
}

// Every line ends in CRLF and is at most 998 octets; header lines at most `header_width`.
void check_lines(const std::string& msg, size_t header_width = mime::kFoldWidth) {
  size_t start = 0;
  bool in_header = true;
  while (start < msg.size()) {
    const size_t lf = msg.find('\n', start);
    REQUIRE(lf != std::string::npos);
    REQUIRE(lf > start);
    REQUIRE(msg[lf - 1] == '\r');
    const std::string line = msg.substr(start, lf - 1 - start);
    CHECK(line.find('\r') == std::string::npos);
    CHECK(line.size() <= mime::kMaxLineOctets);
    if (line.empty()) in_header = false;
    if (line.rfind("--", 0) == 0) in_header = true;  // a part's header section follows
    if (in_header) {
      INFO(line);
      CHECK(line.size() <= header_width);
    }
    start = lf + 1;
  }
}

std::string field(std::string_view entity, std::string_view name) {
  const mime::HeaderSection h = mime::read_header_section(entity);
  const mime::FieldLines* f = mime::find_field(h.fields, name);
  return f ? std::string(f->value) : std::string("<absent>");
}

std::string structure(const mime::Part& p) {
  std::string s = p.type.type + "/" + p.type.subtype;
  if (p.children.empty()) return s;
  s += "(";
  for (size_t i = 0; i < p.children.size(); ++i) s += (i ? "," : "") + structure(p.children[i]);
  return s + ")";
}

std::string content(std::string_view msg, const mime::Part& p) {
  return mime::decode_transfer_encoding(p.body.of(msg), p.transfer_encoding());
}

std::vector<const mime::Part*> leaves(const mime::Part& p) {
  if (p.children.empty()) return {&p};
  std::vector<const mime::Part*> out;
  for (const auto& c : p.children)
    for (const mime::Part* l : leaves(c)) out.push_back(l);
  return out;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i < 256 ? i : rng() & 0xFF);
  return s;
}

// Each RFC 2047 word in the header section, as written.
std::vector<std::string> encoded_words(std::string_view msg) {
  const std::string_view header = msg.substr(0, msg.find("\r\n\r\n"));
  std::vector<std::string> words;
  for (size_t at = header.find("=?"); at != std::string_view::npos; at = header.find("=?", at)) {
    const size_t end = header.find_first_of(" \r\n,", at);
    words.emplace_back(header.substr(at, end - at));
    at = end;
  }
  return words;
}

mime::Attachment attachment(std::string filename, std::string type, std::string bytes) {
  return mime::Attachment{std::move(filename), std::move(type), std::move(bytes), std::nullopt};
}

}  // namespace

TEST_CASE("compose: the structure follows the bodies and attachments", "[mime][unit]") {
  const auto [text, html, attached, inline_image, expected] =
      GENERATE(table<bool, bool, bool, bool, std::string>({
          {true, false, false, false, "text/plain"},
          {false, true, false, false, "text/html"},
          {true, true, false, false, "multipart/alternative(text/plain,text/html)"},
          {true, false, true, false, "multipart/mixed(text/plain,application/pdf)"},
          {true, true, true, false,
           "multipart/mixed(multipart/alternative(text/plain,text/html),application/pdf)"},
          {false, true, false, true, "multipart/related(text/html,image/png)"},
          {true, true, true, true,
           "multipart/mixed(multipart/related(multipart/alternative(text/plain,text/html),"
           "image/png),application/pdf)"},
      }));
  mime::Composition c = basic();
  c.text = text ? std::optional<std::string>("Plain text.\r\n") : std::nullopt;
  c.html =
      html ? std::optional<std::string>("<p>HTML <img src=\"cid:logo\"></p>\r\n") : std::nullopt;
  if (attached) c.attachments.push_back(attachment("r.pdf", "application/pdf", "%PDF-1.4"));
  if (inline_image) {
    c.attachments.push_back(attachment("logo.png", "image/png", random_bytes(300, 1)));
    c.attachments.back().content_id = "logo";
  }
  const std::string msg = compose_ok(c);
  check_lines(msg);
  const mime::MessageTree tree = mime::parse_message(msg);
  CHECK(structure(tree.root) == expected);
  CHECK(field(msg, "MIME-Version") == " 1.0");
  for (const mime::Part* leaf : leaves(tree.root)) {
    if (leaf->type.type != "text") continue;
    CHECK(leaf->type.param("charset") == "utf-8");
    CHECK(content(msg, *leaf) == (leaf->type.subtype == "plain" ? *c.text : *c.html));
  }
  if (tree.root.type.subtype == "related")
    CHECK(tree.root.type.param("type") == (text ? "multipart/alternative" : "text/html"));
}

TEST_CASE("compose: the header section", "[mime][unit]") {
  mime::Composition c = basic();
  c.cc = {{"", addr("carol", "example.net")}, {"Dave", addr("dave", "example.net")}};
  c.reply_to = {{"Help Desk", addr("help", "example.org")}};
  const std::string msg = compose_ok(c);
  CHECK(msg.rfind("From: Alice <alice@example.org>\r\n"
                  "To: Bob <bob@example.net>\r\n"
                  "Cc: carol@example.net, Dave <dave@example.net>\r\n"
                  "Reply-To: Help Desk <help@example.org>\r\n"
                  "Subject: Hello\r\n"
                  "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                  "Message-ID: <1.porter@example.org>\r\n"
                  "MIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: 7bit\r\n"
                  "\r\n"
                  "Hi Bob.\r\n",
                  0) == 0);
  CHECK(msg.size() == msg.find("Hi Bob.\r\n") + 9);

  SECTION("no Bcc, and undisclosed recipients without To and Cc") {
    c.to.clear();
    c.cc.clear();
    const std::string m = compose_ok(c);
    CHECK(field(m, "To") == " undisclosed-recipients:;");
    CHECK(field(m, "Cc") == "<absent>");
    CHECK(field(m, "Bcc") == "<absent>");
  }
  SECTION("message id gets its brackets, the subject may be empty") {
    c.message_id = "x.y@host.example";
    c.subject = "";
    const std::string m = compose_ok(c);
    CHECK(field(m, "Message-ID") == " <x.y@host.example>");
    CHECK(field(m, "Subject") == "<absent>");
  }
  SECTION("the same seed gives the same bytes, another seed another boundary") {
    c.html = "<p>x</p>";
    CHECK(compose_ok(c, 7) == compose_ok(c, 7));
    CHECK(compose_ok(c, 7) != compose_ok(c, 8));
  }
}

TEST_CASE("compose: the subject decodes back to the text given", "[mime][unit]") {
  const std::string subject =
      GENERATE(std::string("Plain ASCII subject"), std::string("Grüße aus Köln"),
               std::string("Re: 日本語のテスト and some ASCII words  with two spaces"),
               std::string("\xF0\x9F\x93\xA6 your parcel \xF0\x9F\x9A\x9A is on its way"),
               std::string("looks like =?utf-8?q?an_encoded?= word"), std::string("tab\tinside"),
               std::string(150, 'x') + " then a long run",
               std::string("a long ASCII subject that goes on and on, past the seventy-eight "
                           "octets a line should hold, so that it must be folded somewhere"));
  std::string long_utf8;
  for (int i = 0; i < 60; ++i) long_utf8 += "Ünïcödé ";
  for (const std::string& s : {subject, long_utf8 + "end"}) {
    mime::Composition c = basic();
    c.subject = s;
    const std::string msg = compose_ok(c);
    check_lines(msg);
    INFO(msg.substr(0, msg.find("\r\n\r\n")));
    CHECK(mime::decode_header_value(field(msg, "Subject")) == s);
    for (const std::string& w : encoded_words(msg)) {
      CHECK(w.size() <= 75);
      CHECK(w.substr(w.size() - 2) == "?=");
    }
    CHECK(mime::is_ascii(msg));
  }
}

TEST_CASE("compose: display names are quoted or encoded", "[mime][unit]") {
  const auto [name, written] = GENERATE(table<std::string, std::string>({
      {"Bob Smith", "Bob Smith <bob@example.net>"},
      {"Smith, Bob", "\"Smith, Bob\" <bob@example.net>"},
      {"Bob \"the\" O'Brien \\x", "\"Bob \\\"the\\\" O'Brien \\\\x\" <bob@example.net>"},
      {"Bob  two spaces", "\"Bob  two spaces\" <bob@example.net>"},
      {"José Müller", "=?utf-8?B?Sm9zw6kgTcO8bGxlcg==?= <bob@example.net>"},
      {"Café Oskar Bar", "=?utf-8?Q?Caf=C3=A9_Oskar_Bar?= <bob@example.net>"},
      {"=?utf-8?q?x?=", "=?utf-8?B?PT91dGYtOD9xP3g/PQ==?= <bob@example.net>"},
  }));
  mime::Composition c = basic();
  c.to = {{name, addr("bob", "example.net")}, {"Second", addr("s", "example.net")}};
  const std::string msg = compose_ok(c);
  check_lines(msg);
  CHECK(field(msg, "To") == " " + written + ", Second <s@example.net>");
  const auto list = mime::parse_address_list(field(msg, "To"));
  REQUIRE(list.size() == 2);
  CHECK(mime::decode_encoded_words(list[0].name) == name);
  CHECK(list[0].mailbox == "bob");
  CHECK(list[0].host == "example.net");
}

TEST_CASE("compose: long address lists fold within 78 octets", "[mime][unit]") {
  mime::Composition c = basic();
  c.to.clear();
  for (int i = 0; i < 40; ++i) {
    std::string name = i % 3 == 0 ? "Ünïcödé Person Number " : "Person, Number ";
    c.to.push_back({name + std::to_string(i), addr("p" + std::to_string(i), "example.net")});
  }
  c.from_name = std::string(40, 'A') + " " + std::string(40, 'B') + " Ünïcödé";
  const std::string msg = compose_ok(c);
  check_lines(msg);
  const auto list = mime::parse_address_list(field(msg, "To"));
  REQUIRE(list.size() == c.to.size());
  for (size_t i = 0; i < list.size(); ++i) {
    CHECK(mime::decode_encoded_words(list[i].name) == c.to[i].name);
    CHECK(list[i].mailbox + "@" + list[i].host == c.to[i].address.str());
  }
  const auto from = mime::parse_address_list(field(msg, "From"));
  REQUIRE(from.size() == 1);
  CHECK(mime::decode_encoded_words(from[0].name) == c.from_name);
}

TEST_CASE("compose: SMTPUTF8 addresses only when allowed", "[mime][unit]") {
  mime::Composition c = basic();
  c.to = {{"Ünïcödé", addr("用户", "例子.广告")}};
  auto refused = mime::compose(c, 1);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().message() == "to[0]: a non-ASCII address needs SMTPUTF8");
  c.smtputf8 = true;
  const std::string msg = compose_ok(c);
  CHECK(field(msg, "To") == " =?utf-8?B?w5xuw69jw7Zkw6k=?= <用户@例子.广告>");
}

TEST_CASE("compose: extra header fields", "[mime][unit]") {
  mime::Composition c = basic();
  const std::string long_ascii =
      "<https://example.org/unsubscribe?id=" + std::string(120, 'q') + ">, <mailto:u@example.org>";
  c.headers = {{"X-Campaign", "spring  sale"},
               {"List-Unsubscribe", long_ascii},
               {"X-Note", "Grüße aus Köln, " + std::string(100, 'z')},
               {"X-Empty", ""}};
  const std::string msg = compose_ok(c);
  check_lines(msg, 998);
  const size_t mime_version = msg.find("MIME-Version:");
  CHECK(msg.find("X-Campaign: spring  sale\r\nList-Unsubscribe:") < mime_version);
  CHECK(mime::unfold_value(field(msg, "List-Unsubscribe")) == long_ascii);
  CHECK(mime::decode_header_value(field(msg, "X-Note")) == c.headers[2].second);
  CHECK(field(msg, "X-Empty") == "");
}

TEST_CASE("compose: text bodies are 7bit or quoted-printable", "[mime][unit]") {
  const auto [text, encoding, decoded] = GENERATE(table<std::string, std::string, std::string>({
      {"short lines\r\nonly\r\n", "7bit", "short lines\r\nonly\r\n"},
      {"bare LF\nand bare CR\rand both\r\n", "7bit", "bare LF\r\nand bare CR\r\nand both\r\n"},
      {std::string(77, 'a') + "\r\n", "quoted-printable", std::string(77, 'a') + "\r\n"},
      {"Grüße\n", "quoted-printable", "Grüße\r\n"},
      {std::string("nul\0byte\r\n", 10), "quoted-printable", std::string("nul\0byte\r\n", 10)},
      {std::string(5000, 'w') + "\r\n", "quoted-printable", std::string(5000, 'w') + "\r\n"},
  }));
  mime::Composition c = basic();
  c.text = text;
  c.html = "<p>" + text + "</p>\r\n";
  const std::string msg = compose_ok(c);
  check_lines(msg);
  const mime::MessageTree tree = mime::parse_message(msg);
  REQUIRE(tree.root.children.size() == 2);
  for (const mime::Part& part : tree.root.children) {
    CHECK(part.encoding == encoding);
    for (size_t i = 0, start = 0; i < part.body.size(); ++i) {
      if (msg[part.body.begin + i] != '\n') continue;
      CHECK(i - start <= 77);  // 76 and the CR
      start = i + 1;
    }
  }
  CHECK(content(msg, tree.root.children[0]) == decoded);
  CHECK(content(msg, tree.root.children[1]) == "<p>" + decoded + "</p>\r\n");

  SECTION("a single part ends in CRLF") {
    c.html.reset();
    c.text = "no line break at the end";
    const std::string m = compose_ok(c);
    CHECK(m.substr(m.size() - 26) == "no line break at the end\r\n");
  }
}

TEST_CASE("compose: attachments come back byte for byte", "[mime][unit]") {
  const size_t size = GENERATE(0, 1, 2, 3, 56, 57, 58, 256, 1000, 100'000);
  mime::Composition c = basic();
  c.attachments.push_back(attachment("data.bin", "application/octet-stream",
                                     random_bytes(size, static_cast<uint32_t>(size))));
  c.attachments.push_back(attachment("second.bin", "", random_bytes(size + 1, 99)));
  const std::string msg = compose_ok(c);
  check_lines(msg);
  const mime::MessageTree tree = mime::parse_message(msg);
  REQUIRE(tree.root.children.size() == 3);
  for (size_t i = 0; i < 2; ++i) {
    const mime::Part& part = tree.root.children[i + 1];
    const mime::Attachment& a = c.attachments[i];
    CHECK(part.encoding == "base64");
    CHECK(content(msg, part) == a.bytes);
    CHECK(part.type.type + "/" + part.type.subtype == "application/octet-stream");
    CHECK(mime::param_utf8(part.type.params, "name") == a.filename);
    REQUIRE(part.disposition);
    CHECK(part.disposition->type == "attachment");
    CHECK(mime::param_utf8(part.disposition->params, "filename") == a.filename);
    CHECK_FALSE(part.id);
    std::string_view body = part.body.of(msg);
    for (size_t start = 0; start < body.size();) {
      const size_t end = std::min(body.find("\r\n", start), body.size());
      CHECK(end - start <= 76);
      start = end + 2;
    }
  }
}

TEST_CASE("compose: filenames and types of attachments", "[mime][unit]") {
  const std::string filename = GENERATE(
      std::string("report.pdf"), std::string("my \"quoted\" report\\v2.pdf"),
      std::string("Übersicht.pdf"), std::string("日本語のファイル名") + std::string(60, 'x'),
      std::string(200, 'a') + "ü.txt");
  mime::Composition c = basic();
  c.attachments.push_back(
      attachment(filename, "text/csv; charset=\"iso-8859-1\"; name=old", "a,b\r\n"));
  const std::string msg = compose_ok(c);
  check_lines(msg, mime::is_ascii(filename) ? 998 : mime::kFoldWidth);
  const mime::MessageTree tree = mime::parse_message(msg);
  REQUIRE(tree.root.children.size() == 2);
  const mime::Part& part = tree.root.children[1];
  CHECK(part.type.is("text", "csv"));
  CHECK(part.type.param("charset") == "iso-8859-1");
  CHECK(mime::param_utf8(part.type.params, "name") == filename);
  REQUIRE(part.disposition);
  CHECK(mime::param_utf8(part.disposition->params, "filename") == filename);
  CHECK(content(msg, part) == "a,b\r\n");
  CHECK(mime::is_ascii(msg));
}

TEST_CASE("compose: inline attachments carry a Content-ID", "[mime][unit]") {
  const std::string id = GENERATE(std::string("logo"), std::string("<logo.1@example.org>"));
  mime::Composition c = basic();
  c.text.reset();
  c.html = "<img src=\"cid:logo\">";
  c.attachments.push_back(attachment("logo.png", "image/png", random_bytes(500, 3)));
  c.attachments.back().content_id = id;
  const std::string msg = compose_ok(c);
  const mime::MessageTree tree = mime::parse_message(msg);
  REQUIRE(tree.root.children.size() == 2);
  const mime::Part& image = tree.root.children[1];
  CHECK(image.id == (id.front() == '<' ? id : "<" + id + ">"));
  REQUIRE(image.disposition);
  CHECK(image.disposition->type == "inline");
  CHECK(content(msg, image) == c.attachments[0].bytes);
}

TEST_CASE("compose: boundaries occur in no part", "[mime][unit]") {
  mime::Composition c = basic();
  c.html = "<p>x</p>";
  const std::string first = compose_ok(c, 5);
  const auto boundary = mime::parse_message(first).root.type.param("boundary");
  REQUIRE(boundary);
  CHECK(boundary->size() <= 70);
  // Text holding the very boundary the same seed draws first: another one must be drawn.
  c.text = "--" + *boundary + "\r\n--" + *boundary + "--\r\n";
  c.attachments.push_back(attachment("b.txt", "text/plain", "--" + *boundary + "\r\n"));
  const std::string msg = compose_ok(c, 5);
  check_lines(msg);
  const mime::MessageTree tree = mime::parse_message(msg);
  CHECK(structure(tree.root) ==
        "multipart/mixed(multipart/alternative(text/plain,text/html),text/plain)");
  const std::vector<const mime::Part*> parts = leaves(tree.root);
  REQUIRE(parts.size() == 3);
  CHECK(content(msg, *parts[0]) == *c.text);
  CHECK(content(msg, *parts[2]) == c.attachments[0].bytes);
  for (const mime::Part* multipart : {&tree.root, &tree.root.children[0]}) {
    const auto b = multipart->type.param("boundary");
    REQUIRE(b);
    CHECK(*b != *boundary);
    for (const mime::Part* leaf : parts)
      CHECK(msg.substr(leaf->header.begin, leaf->body.end - leaf->header.begin).find(*b) ==
            std::string::npos);
  }
}

TEST_CASE("compose: errors name the field", "[mime][unit]") {
  using Edit = void (*)(mime::Composition&);
  const auto [edit, message] = GENERATE(table<Edit, std::string>({
      {[](mime::Composition& c) { c.from = {}; }, "from: not an address (empty)"},
      {[](mime::Composition& c) { c.from_name = std::string("A\0B", 3); },
       "from: display name has a NUL byte"},
      {[](mime::Composition& c) {
         c.to = {{"", addr("a", "example.net")}, {"", addr("b", "example.net")}, {"", {}}};
       },
       "to[2]: not an address (empty)"},
      {[](mime::Composition& c) { c.to[0].address = addr("bob", "bad..domain"); },
       "to[0]: not an address (malformed domain"},
      {[](mime::Composition& c) { c.to[0].address = addr("bøb", "example.net"); },
       "to[0]: a non-ASCII address needs SMTPUTF8"},
      {[](mime::Composition& c) {
         c.cc = {{"Eve\nBcc: x@y", addr("e", "example.net")}};
       },
       "cc[0]: display name has a line break"},
      {[](mime::Composition& c) {
         c.reply_to = {{std::string(257, 'n'), addr("r", "x.org")}};
       },
       "reply_to[0]: display name longer than 256 octets"},
      {[](mime::Composition& c) { c.subject = "a\r\nBcc: x@y"; }, "subject: has a line break"},
      {[](mime::Composition& c) { c.subject = "bell\a"; }, "subject: has a control character"},
      {[](mime::Composition& c) { c.subject = "\xC3("; }, "subject: is not UTF-8"},
      {[](mime::Composition& c) { c.subject = std::string(999, 's'); },
       "subject: longer than 998 octets"},
      {[](mime::Composition& c) { c.text.reset(); }, "text or html is required"},
      {[](mime::Composition& c) { c.text = "\xFF"; }, "text: is not UTF-8"},
      {[](mime::Composition& c) { c.html = "\xC0\x80"; }, "html: is not UTF-8"},
      {[](mime::Composition& c) {
         c.headers = {{"X-Foo", "a\r\nBcc: x@y"}};
       },
       "headers.X-Foo: value has a line break"},
      {[](mime::Composition& c) {
         c.headers = {{"X-Ok", "1"}, {"X-Foo", std::string("a\0b", 3)}};
       },
       "headers.X-Foo: value has a NUL byte"},
      {[](mime::Composition& c) {
         c.headers = {{"X Foo", "v"}};
       },
       "headers.X Foo: not a valid header field name"},
      {[](mime::Composition& c) {
         c.headers = {{"X:Foo", "v"}};
       },
       "headers.X:Foo: not a valid header field name"},
      {[](mime::Composition& c) {
         c.headers = {{"", "v"}};
       },
       "headers.: not a valid header field name"},
      {[](mime::Composition& c) {
         c.headers = {{std::string(77, 'X'), "v"}};
       },
       "headers." + std::string(77, 'X') + ": name longer than 76 octets"},
      {[](mime::Composition& c) {
         c.headers = {{"bcc", "x@y"}};
       },
       "headers.bcc: is set by Porter and cannot be given"},
      {[](mime::Composition& c) {
         c.headers = {{"Content-Type", "text/html"}};
       },
       "headers.Content-Type: is set by Porter and cannot be given"},
      {[](mime::Composition& c) {
         c.headers = {{"DKIM-Signature", "v=1"}};
       },
       "headers.DKIM-Signature: is set by Porter and cannot be given"},
      {[](mime::Composition& c) {
         c.headers = {{"X-Long", std::string(901, 'l')}};
       },
       "headers.X-Long: value has more than 900 octets without white space"},
      {[](mime::Composition& c) { c.attachments = {attachment("", "", "x")}; },
       "attachments[0].filename: empty"},
      {[](mime::Composition& c) {
         c.attachments = {attachment("a", "", "x"), attachment("b\r\n", "", "x")};
       },
       "attachments[1].filename: has a line break"},
      {[](mime::Composition& c) { c.attachments = {attachment(std::string(256, 'f'), "", "")}; },
       "attachments[0].filename: longer than 255 octets"},
      {[](mime::Composition& c) { c.attachments = {attachment("a", "pdf", "x")}; },
       "attachments[0].content_type: not a MIME type (type/subtype)"},
      {[](mime::Composition& c) { c.attachments = {attachment("a", "text/plain\r\nX: y", "")}; },
       "attachments[0].content_type: not a MIME type (type/subtype)"},
      {[](mime::Composition& c) { c.attachments = {attachment("a", "multipart/mixed", "x")}; },
       "attachments[0].content_type: multipart and message types cannot be attached"},
      {[](mime::Composition& c) {
         c.attachments = {attachment("a", "image/png", "x")};
         c.attachments[0].content_id = "a b";
       },
       "attachments[0].content_id: not a valid Content-ID"},
      {[](mime::Composition& c) { c.message_id = ""; }, "message_id: not a msg-id <left@right>"},
      {[](mime::Composition& c) { c.message_id = "<no-at-sign>"; },
       "message_id: not a msg-id <left@right>"},
  }));
  mime::Composition c = basic();
  edit(c);
  INFO(message);
  const auto r = mime::compose(c, 1);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().kind() == core::Status::Kind::kInvalid);
  INFO(r.status().message());
  CHECK(r.status().message().rfind(message, 0) == 0);
}

TEST_CASE("compose: reserved header field names", "[mime][unit]") {
  for (const char* name : {"From", "to", "CC", "Bcc", "Date", "message-id", "MIME-Version",
                           "Content-Type", "content-disposition", "Content-Anything", "Subject",
                           "Reply-To", "Received", "Return-Path", "DKIM-Signature"})
    CHECK(mime::is_reserved_field(name));
  for (const char* name : {"X-Mailer", "List-Unsubscribe", "Sender", "Content", "Precedence"})
    CHECK_FALSE(mime::is_reserved_field(name));
}

// An independent reader: Python's email package with its strict, modern policy.
TEST_CASE("compose: Python's email package reads what compose writes", "[mime][unit]") {
  const int variant = GENERATE(0, 1, 2);
  mime::Composition c = basic();
  c.from_name = "Shop, Inc. \"Ünïcödé\"";
  c.to = {{"José Müller", addr("jose", "example.net")},
          {"", addr("plain", "example.net")},
          {"O'Brien, Pat", addr("pat", "example.net")}};
  c.cc = {{"Ca \\ rol", addr("carol", "example.net")}};
  c.reply_to = {{"Help", addr("help", "example.org")}};
  c.subject =
      variant == 0 ? "Hello" : "Grüße, 日本語 and a long subject line " + std::string(80, 'y');
  c.headers = {{"X-Campaign", "spring"}, {"X-Note", "Ünïcödé note"}};
  if (variant >= 1) c.html = "<p>Grüße <img src=\"cid:logo\"></p>\n";
  if (variant == 2) {
    c.text = "Line one\nGrüße " + std::string(100, 'l') + "\n";
    c.attachments.push_back(attachment("Übersicht " + std::string(80, 'u') + ".bin",
                                       "application/octet-stream", random_bytes(3000, 11)));
    c.attachments.push_back(attachment("logo.png", "image/png", random_bytes(700, 12)));
    c.attachments.back().content_id = "logo";
    c.attachments.push_back(attachment("plain \"name\".pdf", "application/pdf", "%PDF"));
  }
  const std::string msg = compose_ok(c);
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("porter_compose_" + std::to_string(::getpid()) + "_" + std::to_string(variant) + ".eml");
  std::ofstream(file, std::ios::binary) << msg;
  const std::string script =
      std::filesystem::path(PORTER_MIME_CORPUS).parent_path() / "compose_check.py";
  const std::string command = "/usr/bin/python3 '" + script + "' '" + file.string() + "'";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = ::pclose(pipe);
  std::filesystem::remove(file);
  INFO(output);
  REQUIRE(status == 0);
  const nlohmann::json j = nlohmann::json::parse(output);

  CHECK(j["defects"].empty());
  CHECK(j["subject"] == c.subject);
  CHECK(j["from"] == nlohmann::json::array({{{"name", c.from_name}, {"addr", c.from.str()}}}));
  const auto people = [](const std::vector<mime::Mailbox>& list) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& m : list) a.push_back({{"name", m.name}, {"addr", m.address.str()}});
    return a;
  };
  CHECK(j["to"] == people(c.to));
  CHECK(j["cc"] == people(c.cc));
  CHECK(j["reply_to"] == people(c.reply_to));
  CHECK(j["headers"]["X-Campaign"] == "spring");
  CHECK(j["headers"]["X-Note"] == "Ünïcödé note");
  CHECK(j["text"] == crlf_to_lf(*c.text));
  if (c.html) CHECK(j["html"] == crlf_to_lf(*c.html));
  CHECK(j["structure"] == structure(mime::parse_message(msg).root));
  REQUIRE(j["attachments"].size() == c.attachments.size());
  // Python lists them in tree order: the inline image (inside related) comes first.
  for (const auto& a : c.attachments) {
    bool found = false;
    for (const auto& got : j["attachments"]) {
      if (got["filename"] != a.filename) continue;
      found = true;
      std::string hex;
      for (unsigned char ch : a.bytes) {
        static constexpr char kHex[] = "0123456789abcdef";
        hex += kHex[ch >> 4];
        hex += kHex[ch & 15];
      }
      CHECK(got["hex"] == hex);
      CHECK(got["content_type"] == a.content_type);
      CHECK(got["disposition"] == (a.content_id ? "inline" : "attachment"));
    }
    CHECK(found);
  }
}
