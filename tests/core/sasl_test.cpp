#include "core/sasl.h"

#include <catch2/catch.hpp>

#include "core/base64.h"

using core::SaslError;

TEST_CASE("sasl: PLAIN credentials and every way to get them wrong", "[core][unit]") {
  auto b64 = [](std::string_view s) { return core::encode_base64(s); };
  SaslError why = SaslError::kBadBase64;
  SECTION("no authzid") {
    auto c = core::decode_sasl_plain(b64(std::string("\0alice\0s3cret", 13)), &why);
    REQUIRE(c);
    CHECK(c->login == "alice");
    CHECK(c->password == "s3cret");
    CHECK(why == SaslError::kNone);
  }
  SECTION("authzid equal to the login") {
    auto c = core::decode_sasl_plain(b64(std::string("alice\0alice\0pw", 14)), &why);
    REQUIRE(c);
    CHECK(c->password == "pw");
  }
  SECTION("a password with spaces and colons") {
    auto c = core::decode_sasl_plain(b64(std::string("\0bob\0a b:c", 10)));
    REQUIRE(c);
    CHECK(c->password == "a b:c");
  }
  SECTION("refusals") {
    const auto [input, expected] = GENERATE(table<std::string, SaslError>({
        {"!!!not base64", SaslError::kBadBase64},
        {"=", SaslError::kMalformed},
        {core::encode_base64("alice"), SaslError::kMalformed},
        {core::encode_base64(std::string("\0alice", 6)), SaslError::kMalformed},
        {core::encode_base64(std::string("root\0alice\0pw", 13)), SaslError::kOtherAuthzid},
    }));
    CHECK_FALSE(core::decode_sasl_plain(input, &why));
    CHECK(why == expected);
  }
}
