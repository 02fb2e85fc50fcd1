// Random and mutated input must never crash, hang or blow up the output. The generator is
// seeded, so a failure reproduces; keep any input that ever failed as a corpus message.

#include <catch2/catch.hpp>
#include <chrono>
#include <random>

#include "core/address.h"
#include "mta/mime/encoded_words.h"
#include "mta/mime/imap_section.h"
#include "mta/mime/imap_structure.h"
#include "mta/mime/search_text.h"
#include "tests/mime/corpus.h"

namespace mime = mta::mime;

namespace {

void check_part(const mime::Part& p, mime::ByteRange within, size_t depth) {
  REQUIRE(depth <= mime::kMaxMimeDepth);
  REQUIRE(p.header.begin >= within.begin);
  REQUIRE(p.header.end == p.body.begin);
  REQUIRE(p.body.begin <= p.body.end);
  REQUIRE(p.body.end <= within.end);
  if (p.kind == mime::PartKind::kMessage) REQUIRE(p.children.size() == 1);
  if (p.kind == mime::PartKind::kMultipart) REQUIRE(!p.children.empty());
  if (p.kind == mime::PartKind::kLeaf) REQUIRE(p.children.empty());
  size_t last = p.body.begin;
  for (const auto& c : p.children) {
    REQUIRE(c.header.begin >= last);  // in order, not overlapping
    check_part(c, p.body, depth + 1);
    last = c.body.end;
  }
}

void exercise(const std::string& m) {
  const auto tree = mime::parse_message(m);
  check_part(tree.root, {0, m.size()}, 0);
  REQUIRE(tree.part_count <= mime::kMaxMimeParts);
  for (bool utf8 : {false, true}) {
    const std::string bs = mime::imap_body_structure(m, tree.root, true, utf8);
    const std::string body = mime::imap_body_structure(m, tree.root, false, utf8);
    const std::string env = mime::imap_envelope(m, tree.root, utf8);
    REQUIRE(bs.size() <= 300 * (m.size() + 100));
    REQUIRE(body.size() <= bs.size());
    REQUIRE(env.size() <= 20 * (m.size() + 100));
    REQUIRE(bs.front() == '(');
    REQUIRE(bs.back() == ')');
  }
  for (const char* spec : {"", "1", "1.1", "2.MIME", "1.2.3", "HEADER", "TEXT", "2.HEADER",
                           "1.TEXT", "HEADER.FIELDS (From Subject)", "1.HEADER.FIELDS.NOT (To)"}) {
    auto s = mime::parse_section(spec);
    REQUIRE(s.is_ok());
    auto r = mime::find_section(m, tree, *s);
    // HEADER.FIELDS may add a line end to a last field that had none, and the empty line.
    if (r.is_ok()) REQUIRE(r->view(m).size() <= m.size() + 4);
  }
  const std::string text = mime::body_text_utf8(m, tree, 4096);
  REQUIRE(text.size() <= 4096);
  REQUIRE(core::is_valid_utf8(text));
  REQUIRE(core::is_valid_utf8(mime::header_text_utf8(tree.root.header.of(m))));
}

const std::vector<std::string> kInserts = {"\r\n",
                                           "\n",
                                           "\r",
                                           "--",
                                           "--b\r\n",
                                           "--=_alt_7f3a",
                                           "--=_alt_7f3a--",
                                           "--outer\r\n",
                                           "\r\n\r\n",
                                           "Content-Type: multipart/mixed; boundary=b\r\n\r\n",
                                           "Content-Type: message/rfc822\r\n\r\n",
                                           "=?utf-8?q?",
                                           "?=",
                                           "=?utf-8?b?",
                                           "\"",
                                           "(",
                                           ")",
                                           "<",
                                           ">",
                                           "@",
                                           ":",
                                           ";",
                                           ",",
                                           "\\",
                                           "*0*=",
                                           "''%",
                                           std::string(1, '\0'),
                                           "\xFF",
                                           "\xC3",
                                           "Content-Transfer-Encoding: base64\r\n",
                                           "boundary=\"",
                                           "\t"};

std::string mutate(std::string m, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 5);
  const int steps = 1 + static_cast<int>(rng() % 8);
  for (int s = 0; s < steps; ++s) {
    const size_t at = m.empty() ? 0 : rng() % (m.size() + 1);
    switch (op(rng)) {
      case 0:  // flip a byte
        if (!m.empty()) m[at % m.size()] = static_cast<char>(rng());
        break;
      case 1:  // insert a structural string
        m.insert(at, kInserts[rng() % kInserts.size()]);
        break;
      case 2:  // cut
        m.erase(at, rng() % 64);
        break;
      case 3:  // truncate
        m.resize(at);
        break;
      case 4: {  // duplicate a slice somewhere else
        if (m.empty()) break;
        const size_t from = rng() % m.size();
        const std::string slice = m.substr(from, rng() % 200);
        m.insert(at, slice);
        break;
      }
      default:  // random bytes
        for (int i = 0, n = static_cast<int>(rng() % 16); i < n; ++i)
          m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng()));
        break;
    }
  }
  return m;
}

}  // namespace

TEST_CASE("mime fuzz: mutated corpus messages", "[mime][unit]") {
  std::vector<std::string> seeds;
  for (const auto& name : mime_test::corpus_names()) seeds.push_back(mime_test::load_corpus(name));
  REQUIRE(seeds.size() >= 10);
  for (const auto& s : seeds) exercise(s);
  std::mt19937 rng(20240305);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int runs = 0;
  while (runs < 200000 && std::chrono::steady_clock::now() < deadline) {
    std::string m = mutate(seeds[rng() % seeds.size()], rng);
    // Now and then mutate a mutant further, to get further from well-formed mail.
    if (rng() % 4 == 0) m = mutate(std::move(m), rng);
    exercise(m);
    ++runs;
  }
  CHECK(runs > 100);
}

TEST_CASE("mime fuzz: random bytes and hostile shapes", "[mime][unit]") {
  SECTION("random bytes, mostly structural characters") {
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
      std::string m(rng() % 2000, '\0');
      for (char& c : m) c = static_cast<char>(rng() % 4 ? "-\r\n=?:;\"()<>@ab"[rng() % 16] : rng());
      exercise(m);
    }
  }
  SECTION("a huge header") {
    std::string m;
    for (int i = 0; i < 50000; ++i)
      m += "Received: from x by y; Tue, 5 Mar 2024 10:15:02 +0100\r\n";
    m += "Subject: " + std::string(1 << 20, 'a') + "\r\n\r\nbody\r\n";
    exercise(m);
    const auto tree = mime::parse_message(m);
    CHECK(tree.root.body.of(m) == "body\r\n");
  }
  SECTION("many encoded words and addresses") {
    std::string m = "Subject:";
    for (int i = 0; i < 20000; ++i) m += " =?utf-8?b?w6k=?=";
    m += "\r\nTo:";
    for (int i = 0; i < 20000; ++i) m += " a" + std::to_string(i) + "@x.test,";
    m += "\r\n\r\n";
    exercise(m);
    const auto tree = mime::parse_message(m);
    const std::string env = mime::imap_envelope(m, tree.root, true);
    CHECK(env.find("(NIL NIL \"a19999\" \"x.test\")") != std::string::npos);
  }
  SECTION("deep nesting of every container kind") {
    std::string m;
    for (int i = 0; i < 5000; ++i)
      m += i % 2 ? "Content-Type: message/rfc822\r\n\r\n"
                 : "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n";
    exercise(m);
  }
}
