#include "core/address.h"

#include <catch2/catch.hpp>

TEST_CASE("address: paths and mailboxes", "[core][unit]") {
  auto [path, utf8, ok] = GENERATE(table<std::string, bool, bool>({
      {"<a@b.example>", false, true},
      {"<A.B+tag@Sub.Example.COM>", false, true},
      {"<@relay.example:a@b.example>", false, true},
      {"<\"john doe\"@b.example>", false, true},
      {"<a@[192.0.2.1]>", false, true},
      {"<a@[IPv6:2001:db8::1]>", false, true},
      {"<a@[300.1.1.1]>", false, false},
      {"<a@b..example>", false, false},
      {"<a@-b.example>", false, false},
      {"<.a@b.example>", false, false},
      {"<a@>", false, false},
      {"<@b.example>", false, false},
      {"a@b.example", false, false},
      {"<jöran@bücher.example>", false, false},
      {"<jöran@bücher.example>", true, true},
      {"<a\xff@b.example>", true, false},
  }));
  CAPTURE(path);
  CHECK(core::parse_path(path, utf8, false).is_ok() == ok);
}

TEST_CASE("address: domain folded, local part kept", "[core][unit]") {
  auto a = core::parse_path("<Mixed.Case@EXAMPLE.Org>", false, false);
  REQUIRE(a);
  CHECK(a->local == "Mixed.Case");
  CHECK(a->domain == "example.org");
  CHECK(a->str() == "Mixed.Case@example.org");
  CHECK_FALSE(a->needs_utf8());
}

TEST_CASE("address: null path and length limits", "[core][unit]") {
  CHECK(core::parse_path("<>", false, true)->empty());
  CHECK_FALSE(core::parse_path("<>", false, false));
  CHECK_FALSE(core::parse_path("<" + std::string(65, 'a') + "@b.example>", false, false));
  CHECK(core::parse_path("<" + std::string(64, 'a') + "@b.example>", false, false));
  CHECK_FALSE(core::parse_mailbox("a@" + std::string(64, 'b') + ".example", false));
}

TEST_CASE("address: UTF-8 validation", "[core][unit]") {
  CHECK(core::is_valid_utf8("plain"));
  CHECK(core::is_valid_utf8("bücher €"));
  CHECK_FALSE(core::is_valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(core::is_valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(core::is_valid_utf8("\xe2\x82"));          // truncated
}
