#include "mta/mime/quoted_printable.h"

#include <catch2/catch.hpp>

namespace mime = mta::mime;

TEST_CASE("quoted_printable: encoding", "[mime][unit]") {
  const auto [in, expected] = GENERATE(table<std::string, std::string>({
      {"plain text\r\n", "plain text\r\n"},
      {"a=b\r\n", "a=3Db\r\n"},
      {"caf\xC3\xA9\r\n", "caf=C3=A9\r\n"},
      {"trailing space \r\nand tab\t\r\n", "trailing space=20\r\nand tab=09\r\n"},
      {"no final line break", "no final line break"},
      {"bare\nLF", "bare=0ALF"},
  }));
  CHECK(mime::encode_quoted_printable(in) == expected);
}

TEST_CASE("quoted_printable: long lines get soft breaks and round-trip", "[mime][unit]") {
  std::string in;
  for (int i = 0; i < 50; ++i) in += "\xE2\x82\xAC x=y ";
  in += "\r\nshort\r\n" + std::string(200, 'z') + "\r\n";
  const std::string enc = mime::encode_quoted_printable(in);
  size_t pos = 0;
  while (pos < enc.size()) {
    const size_t eol = enc.find("\r\n", pos);
    REQUIRE(eol != std::string::npos);
    CHECK(eol - pos <= 76);
    for (size_t i = pos; i < eol; ++i) CHECK(static_cast<unsigned char>(enc[i]) < 0x80);
    pos = eol + 2;
  }
  CHECK(mime::decode_quoted_printable(enc) == in);
}

TEST_CASE("quoted_printable: lenient decoding", "[mime][unit]") {
  CHECK(mime::decode_quoted_printable("a=3db=3D=\r\nc") == "a=b=c");
  CHECK(mime::decode_quoted_printable("50% =ZZ off=") == "50% =ZZ off=");
}
