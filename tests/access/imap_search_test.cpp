#include "mta/access/imap_search.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "mta/access/imap_parser.h"

using mta::access::ImapReader;
using mta::access::ImapValue;
using mta::access::SearchContext;
using mta::access::SearchMessage;
using mta::access::SearchOp;
using mta::access::SearchProgram;

namespace {

// The arguments of "t SEARCH <text>", read by the real command reader (literals included).
std::vector<ImapValue> args_of(const std::string& text) {
  ImapReader r;
  r.feed("t SEARCH" + (text.empty() ? "" : " " + text) + "\r\n");
  for (;;) {
    auto e = r.next();
    if (e.kind == ImapReader::Event::Kind::kContinue) continue;
    REQUIRE(e.kind == ImapReader::Event::Kind::kCommand);
    return e.command.args;
  }
}

core::Result<SearchProgram> parse(const std::string& text) {
  return mta::access::parse_search(args_of(text), 0);
}

SearchProgram program(const std::string& text) {
  auto p = parse(text);
  INFO(text << " -> " << p.status().to_string());
  REQUIRE(p.is_ok());
  return std::move(p).value();
}

int64_t utc_ms(int y, int mon, int d, int h = 0, int min = 0) {
  std::tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mon - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = min;
  return static_cast<int64_t>(timegm(&t)) * 1000;
}

// A message with owned storage; view() counts every loader call.
struct TestMessage {
  uint32_t seq = 1;
  uint32_t uid = 1;
  uint64_t size = 0;
  int64_t internal_date_ms = 0;
  uint64_t modseq = 0;
  uint8_t flags = 0;
  std::vector<std::string> keywords;
  bool recent = false;
  std::string from, to, cc, bcc, subject, message_id;
  int64_t sent_date_ms = 0;
  std::string raw;
  int header_loads = 0;
  int whole_loads = 0;

  SearchMessage view() {
    SearchMessage m;
    m.seq = seq;
    m.uid = uid;
    m.size = size;
    m.internal_date_ms = internal_date_ms;
    m.modseq = modseq;
    m.flags = flags;
    m.keywords = keywords;
    m.recent = recent;
    m.from = from;
    m.to = to;
    m.cc = cc;
    m.bcc = bcc;
    m.subject = subject;
    m.message_id = message_id;
    m.sent_date_ms = sent_date_ms;
    m.header_section = [this] {
      ++header_loads;
      const size_t end = raw.find("\r\n\r\n");
      return raw.substr(0, end == std::string::npos ? raw.size() : end + 4);
    };
    m.whole_message = [this] {
      ++whole_loads;
      return raw;
    };
    return m;
  }
};

TestMessage message_a() {
  TestMessage m;
  m.seq = 1;
  m.uid = 10;
  m.size = 500;
  m.internal_date_ms = utc_ms(2024, 3, 5, 10);
  m.modseq = 7;
  m.flags = mta::access::kSearchFlagged | mta::access::kSearchDraft;
  m.keywords = {"$Forwarded", "Work"};
  m.recent = true;
  m.from = "Alice M\xC3\xBCller <alice@example.org>";
  m.to = "Bob <bob@example.com>";
  m.cc = "Carol <carol@example.net>";
  m.bcc = "dave@example.org";
  m.subject =
      "Quarterly Report \xC3\x9Cn\xC3\xAF"
      "code";
  m.message_id = "<a1@example.org>";
  m.sent_date_ms = utc_ms(2024, 3, 4, 23, 30);
  m.raw =
      "From: Alice =?utf-8?q?M=C3=BCller?= <alice@example.org>\r\n"
      "To: Bob <bob@example.com>\r\n"
      "Subject: =?utf-8?q?Quarterly_Report_=C3=9Cn=C3=AFcode?=\r\n"
      "X-Priority: 1\r\n"
      "X-Note: =?utf-8?b?w5xiZXJzaWNodA==?=\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
      "\r\n"
      "--b1\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "The budget is attached. Gr=C3=BC=C3=9Fe\r\n"
      "--b1\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "c2VjcmV0IHBheWxvYWQ=\r\n"
      "--b1--\r\n";
  return m;
}

TestMessage message_b() {
  TestMessage m;
  m.seq = 2;
  m.uid = 20;
  m.size = 5000;
  m.internal_date_ms = utc_ms(2024, 3, 10, 23, 59);
  m.modseq = 3;
  m.flags = mta::access::kSearchSeen | mta::access::kSearchAnswered | mta::access::kSearchDeleted;
  m.keywords = {"Personal"};
  m.from = "Eve <eve@example.com>";
  m.to = "Frank <frank@example.org>";
  m.subject = "Lunch plans";
  m.message_id = "<b2@example.com>";
  m.raw =
      "From: Eve <eve@example.com>\r\n"
      "To: Frank <frank@example.org>\r\n"
      "Subject: Lunch plans\r\n"
      "X-Mailer: Foo\r\n"
      "\r\n"
      "Let's meet at noon.\r\n";
  return m;
}

const std::vector<uint32_t> kSaved = {20};
const SearchContext kContext{2, 20, kSaved};

bool run(const std::string& query, TestMessage& m) {
  const SearchProgram p = program(query);
  return mta::access::matches(p, m.view(), kContext);
}

}  // namespace

TEST_CASE("imap search: every key matches one message and not the other", "[access][unit]") {
  struct Row {
    const char* query;
    bool a;
    bool b;
  };
  const Row row = GENERATE(values<Row>({
      {"ALL", true, true},
      {"NOT ALL", false, false},
      {"ANSWERED", false, true},
      {"UNANSWERED", true, false},
      {"BCC dave", true, false},
      {"BEFORE 6-Mar-2024", true, false},
      {"BEFORE 5-Mar-2024", false, false},
      {"BODY budget", true, false},
      {"BODY noon", false, true},
      {"BODY GR\xC3\x9C\xC3\x9F"
       "E",
       true, false},
      {"BODY secret", false, false},  // a non-text attachment is not searched
      {"CC carol", true, false},
      {"DELETED", false, true},
      {"UNDELETED", true, false},
      {"DRAFT", true, false},
      {"UNDRAFT", false, true},
      {"FLAGGED", true, false},
      {"UNFLAGGED", false, true},
      {"FROM alice", true, false},
      {"FROM \"M\xC3\x9CLLER\"", true, false},
      {"FROM EXAMPLE.COM", false, true},
      {"HEADER X-Priority 1", true, false},
      {"HEADER x-mailer \"\"", false, true},
      {"HEADER X-Note \xC3\xBC"
       "bersicht",
       true, false},
      {"HEADER Subject report", true, false},
      {"HEADER Message-ID b2@", false, true},
      {"HEADER Subject \"\"", true, true},
      {"KEYWORD work", true, false},
      {"KEYWORD $forwarded", true, false},
      {"KEYWORD \\Seen", false, true},
      {"UNKEYWORD Work", false, true},
      {"UNKEYWORD \\Seen", true, false},
      {"LARGER 1000", false, true},
      {"LARGER 500", false, true},
      {"SMALLER 1000", true, false},
      {"SMALLER 500", false, false},
      {"MODSEQ 5", true, false},
      {"MODSEQ \"/flags/\\\\draft\" all 5", true, false},
      {"MODSEQ 0", true, true},
      {"NEW", true, false},
      {"OLD", false, true},
      {"RECENT", true, false},
      {"NOT FROM alice", false, true},
      {"ON 5-Mar-2024", true, false},
      {"ON 10-mar-2024", false, true},
      {"OR FROM alice FROM eve", true, true},
      {"OR FROM nobody SUBJECT lunch", false, true},
      {"SEEN", false, true},
      {"UNSEEN", true, false},
      {"SENTBEFORE 5-Mar-2024", true, false},
      {"SENTON 4-Mar-2024", true, false},
      {"SENTON \"10-Mar-2024\"", false, true},  // no Date: falls back to the internal date
      {"SENTSINCE 5-Mar-2024", false, true},
      {"SINCE 6-Mar-2024", false, true},
      {"SINCE 5-Mar-2024", true, true},
      {"SUBJECT quarterly", true, false},
      {"SUBJECT \"\xC3\x9CN\xC3\x8F\"", true, false},
      {"SUBJECT \"\"", true, true},
      {"TEXT X-PRIORITY", true, false},
      {"TEXT noon", false, true},
      {"TEXT alice", true, false},
      {"TO bob", true, false},
      {"UID 10", true, false},
      {"UID 15:*", false, true},
      {"UID 30:*", false, true},  // "*" is the largest UID, so 20 lies in 20..30
      {"UID $", false, true},
      {"UID 1:*", true, true},
      {"1", true, false},
      {"2:*", false, true},
      {"*", false, true},
      {"$", false, true},
      {"1,2", true, true},
      {"(FROM alice SUBJECT quarterly)", true, false},
      {"(FROM alice SUBJECT lunch)", false, false},
      {"CHARSET UTF-8 FROM alice", true, false},
      {"CHARSET us-ascii FROM eve", false, true},
      {"RETURN (MIN) FROM alice", true, false},
      {"RETURN () CHARSET UTF-8 SEEN", false, true},
      {"from ALICE unseen since 1-Mar-2024", true, false},
  }));
  TestMessage a = message_a();
  TestMessage b = message_b();
  INFO(row.query);
  CHECK(run(row.query, a) == row.a);
  CHECK(run(row.query, b) == row.b);
}

TEST_CASE("imap search: OR and NOT bind one key each, lists group", "[access][unit]") {
  struct Row {
    const char* query;
    bool a;
    bool b;
  };
  const Row row = GENERATE(values<Row>({
      {"NOT FROM alice FROM eve", false, true},               // (NOT a) AND e
      {"OR FROM alice FROM eve SUBJECT lunch", false, true},  // (a OR e) AND lunch
      {"NOT OR FROM alice FROM eve", false, false},
      {"OR NOT FROM alice SEEN", false, true},
      {"OR OR FROM alice FROM zed SUBJECT lunch", true, true},
      {"OR FROM zed OR FROM yves SUBJECT lunch", false, true},
      {"NOT (FROM alice UNSEEN)", false, true},
      {"NOT (FROM alice SEEN)", true, true},
      {"(OR FROM alice FROM eve) (NOT SEEN)", true, false},
      {"((((FROM alice))))", true, false},
      {"NOT NOT FROM alice", true, false},
      {"OR (FROM alice SEEN) (FROM eve SEEN)", false, true},
  }));
  TestMessage a = message_a();
  TestMessage b = message_b();
  INFO(row.query);
  CHECK(run(row.query, a) == row.a);
  CHECK(run(row.query, b) == row.b);
}

TEST_CASE("imap search: strings come as atoms, quoted strings and literals", "[access][unit]") {
  TestMessage a = message_a();
  TestMessage b = message_b();
  SECTION("non-synchronising literal") {
    CHECK(run("FROM {5+}\r\nalice", a));
    CHECK_FALSE(run("FROM {5+}\r\nalice", b));
  }
  SECTION("synchronising literal, 8-bit") {
    CHECK(run("SUBJECT {5}\r\n\xC3\xBCn\xC3\xAF UNSEEN", a));
    CHECK_FALSE(run("SUBJECT {5}\r\n\xC3\xBCn\xC3\xAF SEEN", a));
  }
  SECTION("literal field name and value") { CHECK(run("HEADER {10+}\r\nX-Priority {1+}\r\n1", a)); }
  SECTION("quoted string with an escaped quote") {
    b.subject = "say \"hi\"";
    CHECK(run("SUBJECT \"\\\"HI\\\"\"", b));
  }
  SECTION("NIL is the text NIL") {
    b.subject = "nil and more";
    CHECK(run("SUBJECT NIL", b));
  }
}

TEST_CASE("imap search: case folding beyond ASCII", "[access][unit]") {
  TestMessage b = message_b();
  struct Row {
    const char* haystack;
    const char* needle;
    bool match;
  };
  const Row row = GENERATE(values<Row>({
      {"\xCF\x83\xCE\xBF\xCF\x86\xCE\xAF\xCE\xB1", "\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x8A\xCE\x91",
       true},
      {"\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", "\xD0\x9F\xD0\xA0\xD0\x98", true},
      {"\xD1\x91\xD0\xB6", "\xD0\x81", true},            // Cyrillic yo
      {"o\xC5\x82\xC3\xB3w", "\xC5\x81\xC3\x93", true},  // Polish l-stroke, o-acute
      {"\xE1\xBA\xA1", "\xE1\xBA\xA0", true},            // Vietnamese a-dot
      {"kelvin",
       "\xE2\x84\xAA"
       "ELVIN",
       true},                                                          // Kelvin sign
      {"\xEF\xBD\x81\xEF\xBD\x82", "\xEF\xBC\xA1\xEF\xBC\xA2", true},  // full-width
      {"caf\xC3\xA9", "CAFE", false},                                  // no accent stripping
      {"stra\xC3\x9F"
       "e",
       "STRASSE", false},  // no full folding
      {"abc\xFF\xFE"
       "def",
       "DEF", true},  // ill-formed bytes are skipped
      {"abc", "abcd", false},
  }));
  b.subject = row.haystack;
  const SearchProgram p = mta::access::parse_search(
                              [&] {
                                ImapValue k, v;
                                k.text = "SUBJECT";
                                v.kind = ImapValue::Kind::kString;
                                v.text = row.needle;
                                return std::vector<ImapValue>{k, v};
                              }(),
                              0)
                              .value();
  INFO(row.haystack << " / " << row.needle);
  CHECK(mta::access::matches(p, b.view(), kContext) == row.match);
}

TEST_CASE("imap search: malformed programs are refused with a reason", "[access][unit]") {
  struct Row {
    const char* query;
    const char* reason;
  };
  const Row row = GENERATE(values<Row>({
      {"", "Missing search key"},
      {"FROB", "Unknown search key FROB"},
      {"\"ALL\"", "Unknown search key ALL"},
      {"FROM", "Missing argument to FROM"},
      {"FROM (x)", "FROM needs a string"},
      {"SINCE 32-Jan-2024", "SINCE needs a date"},
      {"SINCE 29-Feb-2023", "SINCE needs a date"},
      {"SINCE 29-Feb-2024 ON 1-Foo-2024", "ON needs a date"},
      {"BEFORE 2024-01-01", "BEFORE needs a date"},
      {"SENTON 1-Jan-24", "SENTON needs a date"},
      {"LARGER abc", "LARGER needs a number"},
      {"SMALLER -1", "SMALLER needs a number"},
      {"LARGER 9223372036854775808", "LARGER needs a number"},
      {"UID abc", "Invalid UID set abc"},
      {"UID 0:3", "Invalid UID set"},
      {"1:x", "Invalid sequence set 1:x"},
      {"()", "Empty parenthesised search key list"},
      {"NOT", "Missing argument to NOT"},
      {"OR FROM a", "Missing argument to OR"},
      {"OR OR FROM a FROM b", "Missing argument to OR"},
      {"HEADER", "Missing argument to HEADER"},
      {"HEADER X-Foo", "HEADER needs a field name and a string"},
      {"HEADER \"\" x", "HEADER needs a field name and a string"},
      {"KEYWORD (a)", "KEYWORD needs a flag keyword"},
      {"UNKEYWORD \"a\"", "UNKEYWORD needs a flag keyword"},
      {"MODSEQ x", "MODSEQ needs a number"},
      {"MODSEQ \"/flags/x\" bogus 5", "MODSEQ entry type must be priv, shared or all"},
      {"MODSEQ \"/flags/x\" all", "Missing argument to MODSEQ"},
      {"RETURN (FOO) ALL", "Unknown RETURN option FOO"},
      {"RETURN ALL", "RETURN needs a list of options"},
      {"CHARSET", "Missing charset"},
      {"CHARSET UTF-8", "Missing search key"},
      {"ALL CHARSET UTF-8", "Unknown search key CHARSET"},
      {"CHARSET UTF-8 RETURN (ALL) ALL", "Unknown search key RETURN"},
  }));
  const auto p = parse(row.query);
  INFO(row.query);
  REQUIRE_FALSE(p.is_ok());
  CHECK(p.status().kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(p.status().message(), Catch::StartsWith(row.reason));
}

TEST_CASE("imap search: an unknown charset is NO [BADCHARSET (UTF-8)]", "[access][unit]") {
  const char* query = GENERATE("CHARSET ISO-8859-1 FROM x", "RETURN (ALL) CHARSET \"koi8-r\" ALL",
                               "CHARSET {5+}\r\nutf-7 ALL");
  const auto p = parse(query);
  REQUIRE_FALSE(p.is_ok());
  CHECK(p.status().kind() == core::Status::Kind::kPermanent);
  CHECK_THAT(p.status().message(), Catch::StartsWith("[BADCHARSET (UTF-8)] "));
}

TEST_CASE("imap search: nesting and size limits", "[access][unit]") {
  auto repeat = [](const std::string& s, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += s;
    return out;
  };
  auto keys = [](size_t n) {
    std::string out = "ALL";
    for (size_t i = 1; i < n; ++i) out += " ALL";
    return out;
  };
  SECTION("NOT chains") {
    CHECK(parse(repeat("NOT ", 32) + "ALL").is_ok());
    const auto p = parse(repeat("NOT ", 33) + "ALL");
    REQUIRE_FALSE(p.is_ok());
    CHECK(p.status().message() == "Search keys nested too deep");
  }
  SECTION("parenthesised lists deeper than the reader allows, built by hand") {
    auto nested = [](size_t depth) {
      ImapValue v;
      v.text = "ALL";
      for (size_t i = 0; i < depth; ++i) {
        ImapValue list;
        list.kind = ImapValue::Kind::kList;
        list.items.push_back(std::move(v));
        v = std::move(list);
      }
      return std::vector<ImapValue>{v};
    };
    CHECK(mta::access::parse_search(nested(32), 0).is_ok());
    const auto p = mta::access::parse_search(nested(33), 0);
    REQUIRE_FALSE(p.is_ok());
    CHECK(p.status().message() == "Search keys nested too deep");
  }
  SECTION("a long OR chain is one level, either way it is written") {
    TestMessage b = message_b();
    const std::string left =
        repeat("OR ", 999) + "FROM zed " + repeat("FROM zed ", 998) + "FROM eve";
    const std::string right = repeat("OR FROM zed ", 999) + "FROM eve";
    for (const std::string& q : {left, right}) {
      const SearchProgram p = program(q);
      REQUIRE(p.root.children.size() == 1);
      CHECK(p.root.children[0].op == SearchOp::kOr);
      CHECK(p.root.children[0].children.size() == 1000);
      CHECK(mta::access::matches(p, b.view(), kContext));
    }
  }
  SECTION("key count") {
    CHECK(parse(keys(10000)).is_ok());
    const auto p = parse(keys(10001));
    REQUIRE_FALSE(p.is_ok());
    CHECK(p.status().message() == "Too many search keys");
  }
}

TEST_CASE("imap search: program shape", "[access][unit]") {
  SECTION("arguments may start after a prefix") {
    auto args = args_of("IGNORED FROM alice");
    const auto p = mta::access::parse_search(args, 1);
    REQUIRE(p.is_ok());
    CHECK(p->root.children.size() == 1);
    CHECK_FALSE(mta::access::parse_search(args, 3).is_ok());
  }
  SECTION("RETURN options") {
    CHECK_FALSE(program("ALL").esearch);
    CHECK(program("ALL").returns == mta::access::kReturnAll);
    CHECK(program("RETURN () ALL").esearch);
    CHECK(program("RETURN () ALL").returns == mta::access::kReturnAll);
    CHECK(program("RETURN (min MAX Count all save) ALL").returns == 31);
    CHECK(program("RETURN (SAVE) ALL").returns == mta::access::kReturnSave);
  }
  SECTION("flags for the caller") {
    const SearchProgram summary = program("FROM a HEADER Subject b HEADER message-id c");
    CHECK_FALSE(summary.needs_header);
    CHECK_FALSE(summary.needs_body);
    CHECK_FALSE(summary.uses_modseq);
    CHECK(program("HEADER Subject \"\"").needs_header);
    CHECK(program("NOT HEADER X-Spam yes").needs_header);
    CHECK(program("OR SEEN BODY x").needs_body);
    CHECK(program("TEXT x").needs_body);
    CHECK(program("NOT MODSEQ 4").uses_modseq);
  }
  SECTION("cheap keys are tried first") {
    const SearchProgram p = program("BODY x HEADER X-A y FROM z SEEN");
    REQUIRE(p.root.children.size() == 4);
    CHECK(p.root.children[0].op == SearchOp::kFlagsSet);
    CHECK(p.root.children[1].op == SearchOp::kFrom);
    CHECK(p.root.children[2].op == SearchOp::kHeader);
    CHECK(p.root.children[3].op == SearchOp::kBody);
  }
}

TEST_CASE("imap search: loaders run only for keys that need them, once", "[access][unit]") {
  TestMessage a = message_a();
  auto eval = [&](const std::string& q) {
    a.header_loads = a.whole_loads = 0;
    return mta::access::matches(program(q), a.view(), kContext);
  };
  SECTION("header-only programs load nothing") {
    CHECK(
        eval("FROM alice SUBJECT report SINCE 1-Mar-2024 UNSEEN HEADER Message-ID a1 "
             "OR TO bob CC carol NOT BCC zed UID 1:* LARGER 10 KEYWORD work"));
    CHECK(a.header_loads == 0);
    CHECK(a.whole_loads == 0);
  }
  SECTION("HEADER loads the header section only") {
    CHECK(eval("HEADER X-Priority 1 HEADER X-Note bersicht NOT HEADER X-Missing \"\""));
    CHECK(a.header_loads == 1);
    CHECK(a.whole_loads == 0);
  }
  SECTION("a failing cheap key spares the body, wherever it was written") {
    CHECK_FALSE(eval("BODY budget TEXT budget FROM nobody"));
    CHECK(a.header_loads == 0);
    CHECK(a.whole_loads == 0);
  }
  SECTION("BODY and TEXT share one load; HEADER after them reads from it") {
    CHECK(eval("BODY budget TEXT alice BODY attached"));
    CHECK(a.whole_loads == 1);
    CHECK(a.header_loads == 0);
    CHECK(eval("TEXT alice NOT (FLAGGED HEADER X-Priority 2)"));
    CHECK(a.whole_loads == 1);
    CHECK(a.header_loads == 1);  // HEADER is tried before TEXT
  }
  SECTION("empty BODY and TEXT strings match without loading") {
    CHECK(eval("BODY \"\" TEXT \"\""));
    CHECK(a.whole_loads == 0);
  }
  SECTION("no loaders: header and body keys never match") {
    SearchMessage m = a.view();
    m.header_section = nullptr;
    m.whole_message = nullptr;
    CHECK_FALSE(mta::access::matches(program("HEADER X-Priority \"\""), m, kContext));
    CHECK_FALSE(mta::access::matches(program("BODY budget"), m, kContext));
    CHECK(mta::access::matches(program("NOT TEXT budget"), m, kContext));
  }
  SECTION("only whole_message: headers are taken from it") {
    SearchMessage m = a.view();
    m.header_section = nullptr;
    CHECK(mta::access::matches(program("HEADER X-Priority 1"), m, kContext));
    CHECK(a.whole_loads == 1);
  }
}

TEST_CASE("imap search: dates are UTC calendar days", "[access][unit]") {
  TestMessage b = message_b();
  struct Row {
    int64_t internal;
    const char* query;
    bool match;
  };
  const Row row = GENERATE(values<Row>({
      {utc_ms(2024, 2, 29, 0, 0), "ON 29-Feb-2024", true},
      {utc_ms(2024, 2, 29, 23, 59), "ON 29-Feb-2024", true},
      {utc_ms(2024, 3, 1, 0, 0), "BEFORE 1-Mar-2024", false},
      {utc_ms(2024, 2, 29, 23, 59), "BEFORE 1-Mar-2024", true},
      {utc_ms(1969, 12, 31, 23, 0), "ON 31-Dec-1969", true},
      {utc_ms(1969, 12, 31, 23, 0), "SINCE 1-Jan-1970", false},
      {utc_ms(2000, 1, 1), "SINCE 01-Jan-2000", true},
      {utc_ms(2100, 12, 31, 12), "ON 31-Dec-2100", true},
  }));
  b.internal_date_ms = row.internal;
  INFO(row.query);
  CHECK(mta::access::matches(program(row.query), b.view(), kContext) == row.match);
}

TEST_CASE("imap search: untagged answers", "[access][unit]") {
  const std::vector<uint32_t> found = {9, 1, 3, 2, 3};
  const std::vector<uint32_t> none;
  SECTION("sequence-set output") {
    CHECK(mta::access::compact_sequence_set(none).empty());
    CHECK(mta::access::compact_sequence_set(std::vector<uint32_t>{5}) == "5");
    CHECK(mta::access::compact_sequence_set(std::vector<uint32_t>{12, 3, 1, 2, 2, 9, 10}) ==
          "1:3,9:10,12");
    CHECK(mta::access::compact_sequence_set(std::vector<uint32_t>{4294967295u, 4294967294u}) ==
          "4294967294:4294967295");
  }
  SECTION("IMAP4rev1 SEARCH") {
    const SearchProgram p = program("ALL");
    CHECK(mta::access::search_response(p, "a", false, false, found) == "* SEARCH 1 2 3 9\r\n");
    CHECK(mta::access::search_response(p, "a", true, false, none) == "* SEARCH\r\n");
    CHECK(mta::access::search_response(p, "a", false, false, found, 917162500) ==
          "* SEARCH 1 2 3 9 (MODSEQ 917162500)\r\n");
    CHECK(mta::access::search_response(p, "a", false, false, none, 5) == "* SEARCH\r\n");
  }
  SECTION("ESEARCH for RETURN, and for every SEARCH under IMAP4rev2") {
    struct Row {
      const char* query;
      bool uid;
      bool rev2;
      bool empty;
      const char* line;
    };
    const Row row = GENERATE(values<Row>({
        {"RETURN (MIN MAX COUNT ALL) ALL", true, false, false,
         "* ESEARCH (TAG \"x\") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9\r\n"},
        {"ALL", false, true, false, "* ESEARCH (TAG \"x\") ALL 1:3,9\r\n"},
        {"ALL", true, true, true, "* ESEARCH (TAG \"x\") UID\r\n"},
        {"RETURN () ALL", false, false, false, "* ESEARCH (TAG \"x\") ALL 1:3,9\r\n"},
        {"RETURN (MIN COUNT) ALL", false, false, true, "* ESEARCH (TAG \"x\") COUNT 0\r\n"},
        {"RETURN (MAX) ALL", true, true, false, "* ESEARCH (TAG \"x\") UID MAX 9\r\n"},
        {"RETURN (SAVE) ALL", false, true, false, ""},
        {"RETURN (SAVE MIN) ALL", false, true, false, "* ESEARCH (TAG \"x\") MIN 1\r\n"},
    }));
    INFO(row.query);
    CHECK(mta::access::search_response(program(row.query), "x", row.uid, row.rev2,
                                       row.empty ? none : found) == row.line);
  }
  SECTION("ESEARCH with MODSEQ, and a tag that needs escaping") {
    CHECK(mta::access::search_response(program("RETURN (ALL) MODSEQ 5"), "a\"b", false, false,
                                       found,
                                       12) == "* ESEARCH (TAG \"a\\\"b\") ALL 1:3,9 MODSEQ 12\r\n");
    CHECK(mta::access::search_response(program("RETURN (COUNT) MODSEQ 5"), "t", false, false, none,
                                       12) == "* ESEARCH (TAG \"t\") COUNT 0\r\n");
  }
  SECTION("what SAVE keeps") {
    auto saved = [&](const std::string& q, const std::vector<uint32_t>& m) {
      return mta::access::result_to_save(program(q), m);
    };
    CHECK(saved("RETURN (SAVE) ALL", found) == std::vector<uint32_t>{1, 2, 3, 9});
    CHECK(saved("RETURN (SAVE MIN MAX) ALL", found) == std::vector<uint32_t>{1, 9});
    CHECK(saved("RETURN (SAVE MAX) ALL", found) == std::vector<uint32_t>{9});
    CHECK(saved("RETURN (SAVE MIN COUNT) ALL", found) == std::vector<uint32_t>{1, 2, 3, 9});
    CHECK(saved("RETURN (SAVE MIN MAX) ALL", {7}) == std::vector<uint32_t>{7});
    CHECK(saved("RETURN (SAVE MIN) ALL", none).empty());
  }
}

TEST_CASE("imap search: random programs parse or fail cleanly, and NOT inverts", "[access][unit]") {
  static const char* const kTokens[] = {"ALL",
                                        "SEEN",
                                        "UNSEEN",
                                        "FROM alice",
                                        "SUBJECT lunch",
                                        "NOT",
                                        "OR",
                                        "(",
                                        ")",
                                        "BODY noon",
                                        "TEXT alice",
                                        "UID 10:*",
                                        "1",
                                        "$",
                                        "NEW",
                                        "KEYWORD work",
                                        "LARGER 600",
                                        "SINCE 6-Mar-2024",
                                        "HEADER X-Priority 1",
                                        "SENTON 4-Mar-2024",
                                        "MODSEQ 5",
                                        "FROM {3+}\r\neve",
                                        "CC \"\""};
  std::minstd_rand rng(20240305);
  TestMessage a = message_a();
  TestMessage b = message_b();
  size_t parsed = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string q;
    const size_t n = 1 + rng() % 8;
    for (size_t i = 0; i < n; ++i) {
      if (!q.empty()) q += ' ';
      q += kTokens[rng() % std::size(kTokens)];
    }
    ImapReader r;
    r.feed("t SEARCH NOT (" + q + ")\r\n");
    auto e = r.next();
    if (e.kind != ImapReader::Event::Kind::kCommand) continue;  // unbalanced parentheses
    const auto negated = mta::access::parse_search(e.command.args, 0);
    const auto plain = mta::access::parse_search(e.command.args[1].items, 0);
    INFO(q);
    REQUIRE(negated.is_ok() == plain.is_ok());
    if (!plain.is_ok()) continue;
    ++parsed;
    for (TestMessage* m : {&a, &b})
      CHECK(mta::access::matches(*negated, m->view(), kContext) !=
            mta::access::matches(*plain, m->view(), kContext));
  }
  CHECK(parsed > 300);
}

TEST_CASE("imap search: throughput on 100,000 messages", "[access][.bench]") {
  constexpr size_t kMessages = 100000;
  std::vector<TestMessage> store(kMessages);
  const int64_t base = utc_ms(2023, 1, 1);
  for (size_t i = 0; i < kMessages; ++i) {
    TestMessage& m = store[i];
    m.seq = static_cast<uint32_t>(i + 1);
    m.uid = static_cast<uint32_t>(i + 1);
    m.size = 2000 + i % 5000;
    m.internal_date_ms = base + static_cast<int64_t>(i) * 600000;  // every 10 minutes
    m.flags = i % 3 == 0 ? 0 : mta::access::kSearchSeen;
    m.from = "Sender Number " + std::to_string(i % 97) + " <user" + std::to_string(i % 97) +
             "@example" + std::to_string(i % 13) + ".com>";
    m.to = "Recipient <rcpt@example.org>";
    m.subject = "Re: Weekly Status Update for Project " + std::to_string(i % 211);
    m.raw = "unused";
  }
  const SearchContext ctx{static_cast<uint32_t>(kMessages), static_cast<uint32_t>(kMessages), {}};
  std::vector<SearchMessage> views;
  views.reserve(kMessages);
  for (TestMessage& m : store) views.push_back(m.view());

  auto lower_has = [](std::string hay, std::string_view needle) {
    for (char& ch : hay) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return hay.find(needle) != std::string::npos;
  };
  const int64_t june = utc_ms(2023, 6, 1);
  struct Query {
    const char* text;  // the first one is the one the brief names
    std::function<bool(const TestMessage&)> expect;
  };
  const std::vector<Query> queries = {
      {"FROM user42@ SUBJECT \"project 7\" SINCE 1-Jun-2023 UNSEEN",
       [&](const TestMessage& m) {
         return lower_has(m.from, "user42@") && lower_has(m.subject, "project 7") && m.flags == 0 &&
                m.internal_date_ms >= june;
       }},
      {"FROM user42@ SUBJECT \"PROJECT 7\"",
       [&](const TestMessage& m) {
         return lower_has(m.from, "user42@") && lower_has(m.subject, "project 7");
       }},
      {"OR SUBJECT \"project 7\" FROM \"sender number 5\"",
       [&](const TestMessage& m) {
         return lower_has(m.subject, "project 7") || lower_has(m.from, "sender number 5");
       }},
  };
  for (const Query& q : queries) {
    const SearchProgram p = program(q.text);
    size_t hits = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const SearchMessage& m : views) hits += mta::access::matches(p, m, ctx) ? 1 : 0;
    const auto elapsed = std::chrono::steady_clock::now() - start;
    const double us = std::chrono::duration<double, std::micro>(elapsed).count();
    std::printf("imap search: %-60s %zu messages, %5zu hits, %6.1f ms, %.3f us per message\n",
                q.text, kMessages, hits, us / 1000, us / kMessages);
    size_t expected = 0;
    for (const TestMessage& m : store) expected += q.expect(m) ? 1 : 0;
    CHECK(hits == expected);
  }
  size_t loads = 0;
  for (const TestMessage& m : store) loads += m.whole_loads + m.header_loads;
  CHECK(loads == 0);
}
