#include "mta/mime/search_text.h"

#include <catch2/catch.hpp>

#include "core/address.h"

namespace mime = mta::mime;

TEST_CASE("search text: header values decoded", "[mime][unit]") {
  CHECK(mime::header_text_utf8("Subject: =?utf-8?q?caf=C3=A9?=\r\n au lait\r\n"
                               "From: =?iso-8859-1?q?Andr=E9?= <a@b>\r\n\r\n") ==
        "Subject: caf\xC3\xA9 au lait\nFrom: Andr\xC3\xA9 <a@b>\n");
}

TEST_CASE("search text: text parts decoded and converted", "[mime][unit]") {
  const std::string m =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
      "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n"
      "--b\r\nContent-Type: text/html; charset=\"utf-8\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\nPGI+w6k8L2I+\r\n"
      "--b\r\nContent-Type: application/octet-stream\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\nc2VjcmV0\r\n"
      "--b\r\nContent-Type: message/rfc822\r\n\r\n"
      "Subject: inner\r\nContent-Type: text/plain; charset=\"koi8-r\"\r\n\r\n\xF0\r\n"
      "--b--\r\n";
  const auto tree = mime::parse_message(m);
  const std::string text = mime::body_text_utf8(m, tree, 1 << 20);
  CHECK(text == "caf\xC3\xA9\n<b>\xC3\xA9</b>\n\xD0\x9F\n");
  CHECK(mime::decoded_content(m, tree.root.children[2]) == "secret");
  SECTION("cut at max_bytes on a character boundary") {
    const std::string cut = mime::body_text_utf8(m, tree, 4);
    CHECK(cut == "caf");
    CHECK(core::is_valid_utf8(cut));
  }
}
