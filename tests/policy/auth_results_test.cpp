#include "policy/auth_results.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/header.h"

namespace {

using policy::AuthResultEntry;

constexpr const char* kId = "mx.example.org";

// The field's lines without their CRLF; REQUIREs that it ends in CRLF.
std::vector<std::string> lines_of(const std::string& field) {
  REQUIRE(field.size() >= 2);
  REQUIRE(field.substr(field.size() - 2) == "\r\n");
  std::vector<std::string> out;
  for (size_t pos = 0; pos < field.size();) {
    const size_t eol = field.find("\r\n", pos);
    out.push_back(field.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return out;
}

// Parses the output as a header section: exactly one field, returned unfolded with folds
// read as one space.
std::string single_field_value(const std::string& field) {
  const auto fields = core::parse_header_fields(field);
  REQUIRE(fields.size() == 1);
  CHECK(fields[0].name == "Authentication-Results");
  std::string value;
  for (const auto& line : lines_of(field)) {
    if (line[0] == '\t') {
      value += ' ' + line.substr(1);
    } else {
      value += line.substr(line.find(':') + 2);
    }
  }
  return value;
}

std::vector<AuthResultEntry> typical() {
  return {
      {"spf", "pass", "", "", {{"smtp.mailfrom", "a@b.example"}}},
      {"dkim", "pass", "", "", {{"header.d", "example.com"}, {"header.s", "sel"}}},
      {"dmarc", "fail", "p=reject", "", {{"header.from", "example.com"}}},
  };
}

}  // namespace

TEST_CASE("unit: authentication-results writes each method's result", "[policy][unit]") {
  SECTION("several results, folded under 78 columns") {
    const std::string field = policy::authentication_results(kId, typical());
    CHECK(single_field_value(field) ==
          "mx.example.org; spf=pass smtp.mailfrom=a@b.example; dkim=pass header.d=example.com "
          "header.s=sel; dmarc=fail (p=reject) header.from=example.com");
    const auto lines = lines_of(field);
    CHECK(lines.size() > 1);
    for (size_t i = 0; i < lines.size(); ++i) {
      CAPTURE(lines[i]);
      CHECK(lines[i].size() <= 78);
      if (i > 0) CHECK(lines[i][0] == '\t');
    }
  }
  SECTION("a short field stays on one line") {
    CHECK(policy::authentication_results(kId, {{"spf", "none", "", "", {}}}) ==
          "Authentication-Results: mx.example.org; spf=none\r\n");
  }
  SECTION("no results at all is 'none' (RFC 8601 §2.2)") {
    CHECK(policy::authentication_results(kId, {}) ==
          "Authentication-Results: mx.example.org; none\r\n");
  }
}

TEST_CASE("unit: authentication-results quotes values the grammar needs quoted", "[policy][unit]") {
  const auto [value, written] = GENERATE(table<std::string, std::string>({
      {"example.com", "example.com"},
      {"user@example.com", "user@example.com"},
      {"@example.com", "@example.com"},
      {"first.last+tag@example.com", "first.last+tag@example.com"},
      {"abc/+def=", "\"abc/+def=\""},
      {"2001:db8::1", "\"2001:db8::1\""},
      {"john doe@example.com", "\"john doe@example.com\""},
      {"a\"b\\c", "\"a\\\"b\\\\c\""},
      {"", "\"\""},
      {"evil\r\nX-Injected: 1", "\"evilX-Injected: 1\""},
  }));
  CAPTURE(value);
  const std::string field =
      policy::authentication_results(kId, {{"dkim", "pass", "", "", {{"header.b", value}}}});
  CHECK(single_field_value(field) == "mx.example.org; dkim=pass header.b=" + written);
}

TEST_CASE("unit: authentication-results escapes comments, reasons and the authserv-id",
          "[policy][unit]") {
  SECTION("comment") {
    const std::string field =
        policy::authentication_results(kId, {{"dmarc", "fail", "p=reject (sic) \\ \r\n", "", {}}});
    CHECK(single_field_value(field) == "mx.example.org; dmarc=fail (p=reject \\(sic\\) \\\\ )");
  }
  SECTION("reason") {
    const std::string field = policy::authentication_results(
        kId, {{"spf", "fail", "", "192.0.2.1 is not \"allowed\"", {}}});
    CHECK(single_field_value(field) ==
          "mx.example.org; spf=fail reason=\"192.0.2.1 is not \\\"allowed\\\"\"");
  }
  SECTION("authserv-id that is not a token") {
    CHECK(policy::authentication_results("mx example", {}) ==
          "Authentication-Results: \"mx example\"; none\r\n");
  }
  SECTION("keywords keep only keyword characters") {
    const std::string field = policy::authentication_results(
        kId, {{"sp f;", "pa\r\nss", "", "", {{"smtp.mail from", "x"}}}});
    CHECK(single_field_value(field) == "mx.example.org; spf=pass smtp.mailfrom=x");
  }
}

TEST_CASE("unit: a long value gets a line of its own", "[policy][unit]") {
  const std::string sig(90, 'A');
  const std::string field = policy::authentication_results(
      kId, {{"dkim", "pass", "", "", {{"header.d", "example.com"}, {"header.b", sig}}}});
  const auto lines = lines_of(field);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == "\theader.b=" + sig);
}

TEST_CASE("unit: our forged Authentication-Results fields are removed, others kept",
          "[policy][unit]") {
  const std::string other = "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@y\r\n";
  const std::string kept = "Received: from a by b; Tue, 14 Nov 2023 22:13:20 +0000\r\n" + other +
                           "Authentication-Results: mx.example.org.evil; dkim=pass\r\n"
                           "Authentication-Results: mx.example.org2; dkim=pass\r\n"
                           "X-Authentication-Results: mx.example.org; dkim=pass\r\n"
                           "Subject: hello\r\n\tworld\r\n";

  const auto [forged] = GENERATE(table<std::string>({
      "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=a@b\r\n",
      "authentication-results: MX.Example.ORG; dkim=pass header.d=example.com\r\n",
      "Authentication-Results:mx.example.org;dkim=pass\r\n",
      "Authentication-Results : mx.example.org; dkim=pass\r\n",
      "Authentication-Results: (trust me) mx.example.org 1; dmarc=pass\r\n",
      "Authentication-Results: \"mx.example.org\"; dmarc=pass\r\n",
      "Authentication-Results:\r\n mx.example.org;\r\n\tspf=pass smtp.mailfrom=a@b;\r\n"
      "\tdkim=pass header.d=example.com\r\n",
  }));
  CAPTURE(forged);
  const std::string section = forged + kept + forged + "\r\n";
  CHECK(policy::remove_our_auth_results(section, kId) == kept + "\r\n");
}

TEST_CASE("unit: removal keeps a section without our fields byte for byte", "[policy][unit]") {
  const std::string section =
      "From: a@example.com\r\n"
      "Authentication-Results: other.example;\r\n  spf=pass\r\n"
      "Subject:  two  spaces \r\n"
      "\r\n";
  CHECK(policy::remove_our_auth_results(section, kId) == section);
  CHECK(policy::remove_our_auth_results(section + "body\r\n", kId) == section + "body\r\n");
  CHECK(policy::remove_our_auth_results("", kId).empty());
}
