#include "mta/mime/transfer_encoding.h"

#include <catch2/catch.hpp>

namespace mime = mta::mime;
using mime::TransferEncoding;

TEST_CASE("transfer encoding: names", "[mime][unit]") {
  CHECK(mime::parse_transfer_encoding("") == TransferEncoding::k7Bit);
  CHECK(mime::parse_transfer_encoding(" 7BIT ") == TransferEncoding::k7Bit);
  CHECK(mime::parse_transfer_encoding("8bit") == TransferEncoding::k8Bit);
  CHECK(mime::parse_transfer_encoding("Binary") == TransferEncoding::kBinary);
  CHECK(mime::parse_transfer_encoding("\tBase64\r\n") == TransferEncoding::kBase64);
  CHECK(mime::parse_transfer_encoding("Quoted-Printable") == TransferEncoding::kQuotedPrintable);
  CHECK(mime::parse_transfer_encoding("x-uuencode") == TransferEncoding::kOther);
}

TEST_CASE("transfer encoding: lenient base64", "[mime][unit]") {
  struct Case {
    std::string in;
    std::string out;
  };
  const auto c = GENERATE(values<Case>({
      {"aGVsbG8=", "hello"},
      {"aGVs\r\nbG8=\r\n", "hello"},
      {"aGVsbG8", "hello"},            // padding missing
      {"aGk=aGk=", "hihi"},            // two encoded chunks glued together
      {" a G V s b G 8 = ", "hello"},  // stray white space
      {"aGVs*bG8=!", "hello"},         // characters outside the alphabet
      {"YQ", "a"},
      {"Y", ""},  // one sextet carries no octet
      {"", ""},
  }));
  CAPTURE(c.in);
  CHECK(mime::decode_base64_lenient(c.in) == c.out);
}

TEST_CASE("transfer encoding: decoding a body", "[mime][unit]") {
  CHECK(mime::decode_transfer_encoding("caf=C3=A9 =\r\nau lait\r\n",
                                       TransferEncoding::kQuotedPrintable) ==
        "caf\xC3\xA9 au lait\r\n");
  SECTION("bare LF soft breaks") {
    CHECK(mime::decode_transfer_encoding("soft=\nbreak\n", TransferEncoding::kQuotedPrintable) ==
          "softbreak\r\n");
  }
  CHECK(mime::decode_transfer_encoding("w6k=", TransferEncoding::kBase64) == "\xC3\xA9");
  for (auto e : {TransferEncoding::k7Bit, TransferEncoding::k8Bit, TransferEncoding::kBinary,
                 TransferEncoding::kOther})
    CHECK(mime::decode_transfer_encoding("as =41 is", e) == "as =41 is");
}
