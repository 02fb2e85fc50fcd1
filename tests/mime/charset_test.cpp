#include "mta/mime/charset.h"

#include <catch2/catch.hpp>

#include "core/address.h"

namespace mime = mta::mime;

TEST_CASE("charset: conversions to UTF-8", "[mime][unit]") {
  struct Case {
    std::string charset;
    std::string bytes;
    std::string utf8;
  };
  const auto c = GENERATE(values<Case>({
      {"utf-8", "caf\xC3\xA9", "caf\xC3\xA9"},
      {"UTF8", "plain", "plain"},
      // iso-8859-1 is read as windows-1252: 0x80 is the euro sign there.
      {"ISO-8859-1", "caf\xE9 \x80", "caf\xC3\xA9 \xE2\x82\xAC"},
      {"latin1", "\xFC", "\xC3\xBC"},
      {"iso-8859-15", "\xA4", "\xE2\x82\xAC"},
      {"koi8-r", "\xF0\xD2\xC9\xD7\xC5\xD4", "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"},
      {"windows-1251", "\xCF", "\xD0\x9F"},
      {"Shift_JIS", "\x83\x65\x83\x58\x83\x67", "\xE3\x83\x86\xE3\x82\xB9\xE3\x83\x88"},
      {"iso-2022-jp", "\x1B$BF|K\\8l\x1B(B", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"},
      {"gb2312", "\xC4\xE3\xBA\xC3", "\xE4\xBD\xA0\xE5\xA5\xBD"},
      {"utf-16be", std::string("\0A\0B", 4), "AB"},
      {"utf-7", "Hi +AOk-", "Hi \xC3\xA9"},
      // RFC 2231 §5 language suffix on a charset.
      {"us-ascii*en", "hello", "hello"},
  }));
  CAPTURE(c.charset);
  const std::string out = mime::to_utf8(c.bytes, c.charset);
  CHECK(out == c.utf8);
  CHECK(core::is_valid_utf8(out));
}

TEST_CASE("charset: what cannot be read becomes U+FFFD", "[mime][unit]") {
  const std::string fffd = "\xEF\xBF\xBD";
  SECTION("unknown charsets keep UTF-8 and replace other 8-bit bytes") {
    for (const char* cs : {"x-no-such-charset", "unknown-8bit", "", "utf-8//IGNORE", "a b"}) {
      CAPTURE(cs);
      CHECK(mime::to_utf8("ok \xC3\xA9", cs) == "ok \xC3\xA9");
      CHECK(mime::to_utf8("bad \xE9!", cs) == "bad " + fffd + "!");
      CHECK_FALSE(mime::is_known_charset(cs));
    }
  }
  SECTION("bytes a known charset does not define") {
    // 0x81 is undefined in windows-1252; a lone ESC sequence start is cut short.
    CHECK(mime::to_utf8("a\x81z", "iso-8859-1") == "a" + fffd + "z");
    CHECK(mime::to_utf8("\x83", "shift_jis") == fffd);
  }
  SECTION("us-ascii labels with 8-bit bytes are treated as UTF-8") {
    CHECK(mime::to_utf8("na\xC3\xAFve", "us-ascii") == "na\xC3\xAFve");
  }
}

TEST_CASE("charset: sanitize_utf8 replaces every ill-formed byte", "[mime][unit]") {
  const std::string r = "\xEF\xBF\xBD";
  struct Case {
    std::string in;
    std::string out;
  };
  const auto c = GENERATE_COPY(values<Case>({
      {"", ""},
      {"ascii", "ascii"},
      {"\xF0\x9F\x98\x82", "\xF0\x9F\x98\x82"},
      {"\xC0\xAF", r + r},                  // overlong "/"
      {"\xED\xA0\x80", r + r + r},          // UTF-16 surrogate
      {"\xE2\x82", r + r},                  // truncated at the end
      {"\xF4\x90\x80\x80", r + r + r + r},  // above U+10FFFF
      {"a\xFF"
       "b",
       "a" + r + "b"},
  }));
  CHECK(mime::sanitize_utf8(c.in) == c.out);
}

TEST_CASE("charset: known charsets", "[mime][unit]") {
  for (const char* cs : {"utf-8", "US-ASCII", "iso-8859-1", "windows-1252", "koi8-r", "big5",
                         "euc-kr", "gbk", "ks_c_5601-1987"}) {
    CAPTURE(cs);
    CHECK(mime::is_known_charset(cs));
  }
}
