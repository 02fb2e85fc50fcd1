#include "mta/mime/encoded_words.h"

#include <catch2/catch.hpp>

namespace mime = mta::mime;

TEST_CASE("encoded words: RFC 2047 section 8 examples", "[mime][unit]") {
  struct Case {
    std::string in;
    std::string out;
  };
  const auto c = GENERATE(values<Case>({
      {"(=?ISO-8859-1?Q?a?=)", "(a)"},
      {"(=?ISO-8859-1?Q?a?= b)", "(a b)"},
      {"(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"},
      {"(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"},
      {"(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"},
      {"(=?ISO-8859-1?Q?a_b?=)", "(a b)"},
      {"(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"},
      {"=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"},
      {"=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xC3\xA9 Pirard"},
      {"=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
       " =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
       "If you can read this you understand the example."},
  }));
  CAPTURE(c.in);
  CHECK(mime::decode_encoded_words(c.in) == c.out);
}

TEST_CASE("encoded words: what real mail does", "[mime][unit]") {
  const std::string fffd = "\xEF\xBF\xBD";
  SECTION("a character split across two words in one charset is joined") {
    CHECK(mime::decode_encoded_words("=?UTF-8?B?4oI=?= =?utf-8?B?rA==?=") == "\xE2\x82\xAC");
  }
  SECTION("words glued to text and inside quotes are decoded") {
    CHECK(mime::decode_encoded_words("Re:=?utf-8?q?caf=C3=A9?=!") == "Re:caf\xC3\xA9!");
    CHECK(mime::decode_encoded_words("\"=?utf-8?q?caf=C3=A9?=\" <a@b>") == "\"caf\xC3\xA9\" <a@b>");
  }
  SECTION("white space between a word and text stays") {
    CHECK(mime::decode_encoded_words("x =?utf-8?q?y?= z") == "x y z");
  }
  SECTION("several charsets in one value") {
    CHECK(mime::decode_encoded_words("=?koi8-r?B?8NLJ18XU?= =?Shift_JIS?B?g2WDWINn?=") ==
          "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88");
  }
  SECTION("malformed words stay as they are") {
    for (const char* s : {"=?utf-8?x?abc?=", "=?utf-8?q?no end", "=??q?x?=", "=?utf-8?q?a b?=",
                          "=?", "=?utf-8", "=?utf-8?", "=?utf-8?q", "a=?b"}) {
      CAPTURE(s);
      CHECK(mime::decode_encoded_words(s) == s);
    }
  }
  SECTION("unknown charsets and raw 8-bit bytes") {
    CHECK(mime::decode_encoded_words("=?x-unknown?q?a=FFb?=") == "a" + fffd + "b");
    CHECK(mime::decode_encoded_words("raw \xC3\xA9 and \xE9") == "raw \xC3\xA9 and " + fffd);
  }
  SECTION("a hostile run of word starts is read in linear time") {
    std::string s;
    for (int i = 0; i < 100000; ++i) s += "=?a?q?a";
    CHECK(mime::decode_encoded_words(s) == s);
  }
  SECTION("header values are unfolded first") {
    CHECK(mime::decode_header_value(" =?utf-8?q?a?=\r\n =?utf-8?q?b?=\r\n") == "ab");
  }
}

TEST_CASE("encoded words: RFC 2231 parameters", "[mime][unit]") {
  using P = mime::Params;
  SECTION("RFC 2231 section 3 continuations") {
    const P merged = mime::merge_rfc2231(
        {{"url*0", "ftp://"}, {"url*1", "cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"}});
    CHECK(merged == P{{"url", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"}});
  }
  SECTION("RFC 2231 section 4 charset and language") {
    const P merged =
        mime::merge_rfc2231({{"title*", "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"}});
    CHECK(merged == P{{"title*", "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"}});
    CHECK(mime::param_utf8(merged, "title") == "This is ***fun***");
  }
  SECTION("RFC 2231 section 4.1 mixed sections, out of order") {
    const P merged = mime::merge_rfc2231({{"title*1*", "%2A%2A%2Afun%2A%2A%2A%20"},
                                          {"title*0*", "us-ascii'en'This%20is%20even%20more%20"},
                                          {"title*2", "isn't it!"}});
    REQUIRE(merged.size() == 1);
    CHECK(merged[0].first == "title*");
    CHECK(merged[0].second ==
          "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!");
    CHECK(mime::param_utf8(merged, "TITLE") == "This is even more ***fun*** isn't it!");
  }
  SECTION("plain parameters keep their order; the first of a name wins") {
    const P merged = mime::merge_rfc2231({{"charset", "utf-8"},
                                          {"name*0", "a"},
                                          {"format", "flowed"},
                                          {"name*1", "b"},
                                          {"charset", "latin1"}});
    CHECK(merged == P{{"charset", "utf-8"}, {"name", "ab"}, {"format", "flowed"}});
  }
  SECTION("both a plain and an extended form") {
    const P merged =
        mime::merge_rfc2231({{"filename", "fallback.txt"}, {"filename*", "utf-8''%E2%82%AC.txt"}});
    CHECK(merged.size() == 2);
    CHECK(mime::param_utf8(merged, "filename") == "\xE2\x82\xAC.txt");
  }
  SECTION("RFC 2047 words in a plain value (a common violation)") {
    CHECK(mime::param_utf8({{"filename", "=?UTF-8?B?w6l0w6kudHh0?="}}, "filename") ==
          "\xC3\xA9t\xC3\xA9.txt");
    CHECK_FALSE(mime::param_utf8({{"a", "b"}}, "filename"));
  }
  SECTION("odd names are plain names") {
    const P merged = mime::merge_rfc2231({{"a*b", "1"}, {"c*01x", "2"}, {"d*1000", "3"}});
    CHECK(merged == P{{"a*b", "1"}, {"c*01x", "2"}});
  }
  SECTION("values") {
    CHECK(mime::decode_rfc2231_value("iso-8859-1''caf%E9") == "caf\xC3\xA9");
    CHECK(mime::decode_rfc2231_value("no-quotes%41") == "no-quotesA");
    CHECK(mime::decode_rfc2231_value("utf-8''%zz%4") == "%zz%4");
    CHECK(mime::decode_rfc2231_value("x-bogus''%E9") == "\xEF\xBF\xBD");
  }
}
