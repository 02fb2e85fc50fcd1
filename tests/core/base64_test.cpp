#include "core/base64.h"

#include <catch2/catch.hpp>

TEST_CASE("base64: RFC 4648 vectors round-trip", "[core][unit]") {
  auto [plain, encoded] = GENERATE(table<std::string, std::string>({
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  }));
  CHECK(core::encode_base64(plain) == encoded);
  CHECK(core::decode_base64(encoded) == plain);
}

TEST_CASE("base64: malformed input is refused", "[core][unit]") {
  for (const char* bad : {"Zg=", "Z===", "Zm9v YmFy", "Zm=v", "Zg==Zg==", "!!!!"})
    CHECK_FALSE(core::decode_base64(bad));
}
