#include "mta/mime/header_fold.h"

#include <catch2/catch.hpp>

#include "core/header.h"

namespace mime = mta::mime;

namespace {
std::vector<std::string_view> lines_of(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t eol = s.find("\r\n", pos);
    REQUIRE(eol != std::string_view::npos);
    out.push_back(s.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return out;
}
}  // namespace

TEST_CASE("header_fold: sanitize makes one printable line", "[mime][unit]") {
  const std::string utf8 = "caf\xC3\xA9";
  const auto [in, allow_utf8, expected] = GENERATE_COPY(table<std::string, bool, std::string>({
      {"  550 5.1.1\r\nInjected: yes\r\n\r\n", false, "550 5.1.1 Injected: yes"},
      {std::string("a\0b\tc\177d", 7), false, "a b c d"},
      {utf8, true, utf8},
      {utf8, false, "caf??"},
      {"bad \xC3 seq \xF8\x88\x80\x80\x80", true, "bad ? seq ?????"},
      {"", false, ""},
  }));
  CHECK(mime::sanitize_field_text(in, allow_utf8) == expected);
}

TEST_CASE("header_fold: sanitize caps the length on a character boundary", "[mime][unit]") {
  std::string in;
  for (int i = 0; i < 10; ++i) in += "\xC3\xA9";  // 20 octets, 10 characters
  CHECK(mime::sanitize_field_text(in, true, 5) == "\xC3\xA9\xC3\xA9...");
  CHECK(mime::sanitize_field_text(std::string(100, 'a'), false, 10) == "aaaaaaaaaa...");
}

TEST_CASE("header_fold: short values stay on one line", "[mime][unit]") {
  CHECK(mime::fold_field("Status", "5.1.1") == "Status: 5.1.1\r\n");
  CHECK(mime::fold_field("X-Empty", "") == "X-Empty:\r\n");
}

TEST_CASE("header_fold: long values fold at spaces and unfold to the same text", "[mime][unit]") {
  std::string value = "smtp;";
  for (int i = 0; i < 40; ++i) value += " word" + std::to_string(i);
  const std::string folded = mime::fold_field("Diagnostic-Code", value);
  const auto lines = lines_of(folded);
  CHECK(lines.size() > 3);
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i].size() <= mime::kFoldWidth);
    if (i > 0) CHECK(lines[i][0] == ' ');
  }
  const auto fields = core::parse_header_fields(folded);
  REQUIRE(fields.size() == 1);
  CHECK(core::unfold(fields[0].value) == value);
}

TEST_CASE("header_fold: a run without spaces is cut under 998 octets", "[mime][unit]") {
  const std::string run(3000, 'A');
  const std::string folded = mime::fold_field("Diagnostic-Code", "smtp; 550 " + run);
  for (auto line : lines_of(folded)) CHECK(line.size() <= mime::kMaxLineOctets);
  const auto fields = core::parse_header_fields(folded);
  REQUIRE(fields.size() == 1);
  std::string unfolded = core::unfold(fields[0].value);
  std::erase(unfolded, ' ');
  CHECK(unfolded == "smtp;550" + run);

  std::string utf8;
  for (int i = 0; i < 700; ++i) utf8 += "\xE2\x82\xAC";  // 2100 octets of "€"
  const std::string folded_utf8 = mime::fold_field("X", utf8);
  for (auto line : lines_of(folded_utf8)) {
    CHECK(line.size() <= mime::kMaxLineOctets);
    // No line starts inside a UTF-8 sequence.
    const auto first = static_cast<unsigned char>(line.size() > 1 ? line[1] : ' ');
    CHECK((first & 0xC0) != 0x80);
  }
}
