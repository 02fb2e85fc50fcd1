#include "mta/mailbox/names.h"

#include <catch2/catch.hpp>

using namespace mta::mailbox;

TEST_CASE("unit: mailbox names that are refused say why", "[mailbox][unit]") {
  const auto [name, why] = GENERATE(table<std::string, std::string>({
      {"", "empty"},
      {"/a", "empty level"},
      {"a/", "empty level"},
      {"a//b", "empty level"},
      {".", ". or .."},
      {"a/../b", ". or .."},
      {"a/.", ". or .."},
      {std::string("a\0b", 3), "control"},
      {"a\rb", "control"},
      {"a\nb", "control"},
      {"a\tb", "control"},
      {"a\x7f", "control"},
      {"a\xc2\x85", "control"},           // U+0085, a C1 control
      {"caf\xe9", "not UTF-8"},           // Latin-1
      {"\xc0\xaf", "not UTF-8"},          // overlong "/"
      {"\xed\xa0\x80", "not UTF-8"},      // a surrogate
      {"\xf4\x90\x80\x80", "not UTF-8"},  // above U+10FFFF
      {"\xe2\x82", "not UTF-8"},          // truncated
      {"a%", "wildcard"},
      {"*", "wildcard"},
      {std::string(256, 'a'), "longer than 255"},
  }));
  INFO(name);
  const core::Status s = validate_name(name);
  CHECK(s.kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(s.message(), Catch::Contains(why));
}

TEST_CASE("unit: mailbox names that are accepted", "[mailbox][unit]") {
  const std::string name =
      GENERATE(as<std::string>{}, "INBOX", "a", "Lists/porter-dev", "a.b/..c",
               "Caf\xc3\xa9 \xf0\x9f\x93\xa8", "[Gmail]/All Mail", "a b", std::string(255, 'a'));
  INFO(name);
  CHECK(validate_name(name).is_ok());
}

TEST_CASE("unit: INBOX is case-insensitive, also as a first level", "[mailbox][unit]") {
  CHECK(canonical_name("inbox") == "INBOX");
  CHECK(canonical_name("InBoX/Sub") == "INBOX/Sub");
  CHECK(canonical_name("inboxes") == "inboxes");
  CHECK(canonical_name("a/inbox") == "a/inbox");
  CHECK(canonical_name("Sent") == "Sent");
}

TEST_CASE("unit: mailbox hierarchy", "[mailbox][unit]") {
  CHECK(is_inferior("a/b", "a"));
  CHECK(is_inferior("a/b/c", "a"));
  CHECK_FALSE(is_inferior("ab", "a"));
  CHECK_FALSE(is_inferior("a", "a"));
  CHECK_FALSE(is_inferior("a/", "a"));
  CHECK(superiors("a/b/c") == std::vector<std::string>{"a", "a/b"});
  CHECK(superiors("a").empty());
  CHECK(is_utf8("plain"));
  CHECK_FALSE(is_utf8("\xff"));
}
