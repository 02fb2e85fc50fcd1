#include "mta/inject_request.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/base64.h"

using nlohmann::json;

namespace {

json minimal() {
  return {{"from", "Shop <shop@example.com>"}, {"to", "bob@example.net"}, {"text", "Hi"}};
}

mta::InjectRequest parse_ok(const json& body, const mta::InjectLimits& limits = {}) {
  auto r = mta::parse_inject_request(body.dump(), limits);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return std::move(*r);
}

std::vector<std::string> strs(const std::vector<core::Address>& list) {
  std::vector<std::string> out;
  for (const auto& a : list) out.push_back(a.str());
  return out;
}

}  // namespace

TEST_CASE("inject request: a full request", "[mta][unit]") {
  const std::string pdf = std::string("%PDF-1.4\0\xFF\x80", 12);
  const json body = {
      {"from", {{"name", "Shop, Inc."}, {"email", "shop@Example.COM"}}},
      {"to", {"Bob <bob@example.net>", {{"name", "Ann"}, {"email", "ann@example.net"}}}},
      {"cc", "carol@example.net"},
      {"bcc", {"audit@example.com", "bob@example.net"}},
      {"reply_to", "Help <help@example.com>"},
      {"subject", "Grüße"},
      {"text", "Hello\n"},
      {"html", "<p>Hello</p>"},
      {"headers", {{"X-Campaign", "spring"}, {"List-Id", "<news.example.com>"}}},
      {"attachments",
       {{{"filename", "r.pdf"},
         {"content_type", "application/pdf"},
         {"content", core::encode_base64(pdf)}},
        {{"filename", "logo.png"},
         {"content_type", "image/png"},
         {"content", "iVBO"},
         {"content_id", "logo"}}}},
      {"tags", {"welcome", "spring"}},
      {"idempotency_key", "order-1234 retry"},
  };
  const mta::InjectRequest r = parse_ok(body);
  const mta::mime::Composition& c = r.composition;
  CHECK(c.from.str() == "shop@example.com");
  CHECK(c.from_name == "Shop, Inc.");
  REQUIRE(c.to.size() == 2);
  CHECK(c.to[0].name == "Bob");
  CHECK(c.to[0].address.str() == "bob@example.net");
  CHECK(c.to[1].name == "Ann");
  REQUIRE(c.cc.size() == 1);
  CHECK(c.cc[0].name.empty());
  REQUIRE(c.reply_to.size() == 1);
  CHECK(c.reply_to[0].address.str() == "help@example.com");
  CHECK(c.subject == "Grüße");
  CHECK(c.text == "Hello\n");
  CHECK(c.html == "<p>Hello</p>");
  CHECK(c.headers.size() == 2);
  REQUIRE(c.attachments.size() == 2);
  CHECK(c.attachments[0].bytes == pdf);
  CHECK(c.attachments[0].content_type == "application/pdf");
  CHECK_FALSE(c.attachments[0].content_id);
  CHECK(c.attachments[1].bytes == "\x89PN");
  CHECK(c.attachments[1].content_id == "logo");
  CHECK_FALSE(c.smtputf8);
  CHECK(c.message_id.empty());
  // to, cc, bcc in order, bob once; reply_to is no recipient.
  CHECK(strs(r.recipients) == std::vector<std::string>{"bob@example.net", "ann@example.net",
                                                       "carol@example.net", "audit@example.com"});
  CHECK(r.tags == std::vector<std::string>{"welcome", "spring"});
  CHECK(r.idempotency_key == "order-1234 retry");

  SECTION("it composes, without the Bcc") {
    mta::mime::Composition composed = c;
    composed.message_id = "<x@porter.example>";
    auto msg = mta::mime::compose(composed, 1);
    REQUIRE(msg.is_ok());
    CHECK(msg->find("audit@example.com") == std::string::npos);
    CHECK(msg->find("Bcc") == std::string::npos);
  }
}

TEST_CASE("inject request: address forms", "[mta][unit]") {
  const auto [given, name, address] = GENERATE(table<json, std::string, std::string>({
      {"bob@example.net", "", "bob@example.net"},
      {"<bob@Example.NET>", "", "bob@example.net"},
      {"Bob Smith <bob@example.net>", "Bob Smith", "bob@example.net"},
      {"\"Smith, Bob\" <bob@example.net>", "Smith, Bob", "bob@example.net"},
      {"=?utf-8?q?Jos=C3=A9?= <jose@example.net>", "José", "jose@example.net"},
      {"José <jose@example.net>", "José", "jose@example.net"},
      {"\"a b\"@example.net", "", "\"a b\"@example.net"},
      {"  \"Q \\\"x\\\" <y>\" <\"q,r\"@example.net>  ", "Q \"x\" <y>", "\"q,r\"@example.net"},
      {json{{"email", "x@example.net"}}, "", "x@example.net"},
      {json{{"name", "=?utf-8?q?literal?="}, {"email", "x@example.net"}},
       "=?utf-8?q?literal?=", "x@example.net"},
  }));
  for (const json& to : {given, json::array({given})}) {
    json body = minimal();
    body["to"] = to;
    const mta::InjectRequest r = parse_ok(body);
    REQUIRE(r.composition.to.size() == 1);
    CHECK(r.composition.to[0].name == name);
    CHECK(r.composition.to[0].address.str() == address);
    CHECK(strs(r.recipients) == std::vector<std::string>{address});
  }
}

TEST_CASE("inject request: null is absent, base64 may have line breaks", "[mta][unit]") {
  json body = minimal();
  body["cc"] = nullptr;
  body["html"] = nullptr;
  body["subject"] = nullptr;
  body["tags"] = nullptr;
  body["attachments"] = {
      {{"filename", "a.bin"}, {"content_type", nullptr}, {"content", "AAEC\r\nAwQF\nBg=="}}};
  const mta::InjectRequest r = parse_ok(body);
  CHECK(r.composition.cc.empty());
  CHECK_FALSE(r.composition.html);
  CHECK(r.composition.subject.empty());
  REQUIRE(r.composition.attachments.size() == 1);
  CHECK(r.composition.attachments[0].bytes == std::string("\0\1\2\3\4\5\6", 7));
  CHECK(r.composition.attachments[0].content_type.empty());
}

TEST_CASE("inject request: SMTPUTF8 addresses", "[mta][unit]") {
  json body = minimal();
  body["bcc"] = "用户@例子.广告";
  CHECK(parse_ok(body).composition.smtputf8);
  mta::InjectLimits no_utf8;
  no_utf8.allow_smtputf8 = false;
  auto r = mta::parse_inject_request(body.dump(), no_utf8);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().rfind("bcc: not an address (", 0) == 0);
  CHECK_FALSE(parse_ok(minimal()).composition.smtputf8);
}

TEST_CASE("inject request: errors name the field", "[mta][unit]") {
  using Edit = void (*)(json&);
  const auto [edit, expected] = GENERATE(table<Edit, std::string>({
      {[](json& b) { b = json::array(); }, "body: must be a JSON object"},
      {[](json& b) { b["bogus"] = 1; }, "bogus: unknown field"},
      {[](json& b) { b.erase("from"); }, "from: required"},
      {[](json& b) { b["from"] = {"a@example.com"}; }, "from: one address, not an array"},
      {[](json& b) { b["from"] = 5; }, "from: must be an address string or an object"},
      {[](json& b) { b["from"] = "nobody"; }, "from: not an address"},
      {[](json& b) {
         b["to"] = {"a@example.net", "nope"};
       },
       "to[1]: not an address"},
      {[](json& b) {
         b["to"] = {"a@example.net", "b@exa mple.net"};
       },
       "to[1]: not an address"},
      {[](json& b) { b["to"] = "a@example.net, c@example.net"; },
       "to: one address per string (use an array for more)"},
      {[](json& b) { b["to"] = "Team: a@example.net;"; }, "to: not an address"},
      {[](json& b) { b["to"] = "Bob bob@example.net"; }, "to: not an address"},
      {[](json& b) { b["to"] = "<bob@example.net> Bob"; }, "to: not an address"},
      {[](json& b) { b["to"] = "Bob bob@example.net>"; }, "to: not an address (no '<')"},
      {[](json& b) {
         b["to"] = {{{"email", 3}}};
       },
       "to[0].email: must be a string"},
      {[](json& b) {
         b["to"] = {{{"name", "x"}}};
       },
       "to[0].email: required"},
      {[](json& b) {
         b["to"] = {{{"email", "a@example.net"}, {"nick", "x"}}};
       },
       "to[0].nick: unknown field"},
      {[](json& b) { b["cc"] = {true}; }, "cc[0]: must be an address string or an object"},
      {[](json& b) { b["reply_to"] = ""; }, "reply_to: not an address (empty)"},
      {[](json& b) { b.erase("to"); }, "to: at least one recipient is required in to, cc or bcc"},
      {[](json& b) { b["to"] = json::array(); }, "to: at least one recipient is required"},
      {[](json& b) { b["subject"] = 5; }, "subject: must be a string"},
      {[](json& b) { b["subject"] = std::string(999, 's'); }, "subject: longer than 998 octets"},
      {[](json& b) { b["subject"] = "a\nb"; }, "subject: has a line break"},
      {[](json& b) { b["text"] = 5; }, "text: must be a string"},
      {[](json& b) { b.erase("text"); }, "text or html is required"},
      {[](json& b) { b["headers"] = json::array(); }, "headers: must be an object"},
      {[](json& b) {
         b["headers"] = {{"X-A", 1}};
       },
       "headers.X-A: must be a string"},
      {[](json& b) {
         b["headers"] = {{"X-Foo", "a\r\nBcc: x@y"}};
       },
       "headers.X-Foo: value has a line break"},
      {[](json& b) {
         b["headers"] = {{"Subject", "x"}};
       },
       "headers.Subject: is set by Porter and cannot be given"},
      {[](json& b) { b["attachments"] = json::object(); }, "attachments: must be an array"},
      {[](json& b) { b["attachments"] = {5}; }, "attachments[0]: must be an object"},
      {[](json& b) {
         b["attachments"] = {{{"filename", "a"}, {"content", "QQ=="}},
                             {{"filename", "b"}, {"content", "!!"}}};
       },
       "attachments[1].content: not base64"},
      {[](json& b) {
         b["attachments"] = {{{"filename", "a"}, {"content", "QQ"}}};
       },
       "attachments[0].content: not base64"},
      {[](json& b) {
         b["attachments"] = {{{"filename", "a"}, {"content", 1}}};
       },
       "attachments[0].content: must be a string"},
      {[](json& b) {
         b["attachments"] = {{{"content", "QQ=="}}};
       },
       "attachments[0].filename: required"},
      {[](json& b) {
         b["attachments"] = {{{"filename", "a"}}};
       },
       "attachments[0].content: required"},
      {[](json& b) {
         b["attachments"] = {{{"filename", "a"}, {"content", ""}, {"size", 1}}};
       },
       "attachments[0].size: unknown field"},
      {[](json& b) {
         b["attachments"] = {{{"filename", ""}, {"content", ""}}};
       },
       "attachments[0].filename: empty"},
      {[](json& b) {
         b["attachments"] = {{{"filename", "a"}, {"content", ""}, {"content_type", "bad"}}};
       },
       "attachments[0].content_type: not a MIME type"},
      {[](json& b) { b["tags"] = "x"; }, "tags: must be an array of strings"},
      {[](json& b) { b["tags"] = {1}; }, "tags[0]: must be a string"},
      {[](json& b) {
         b["tags"] = {"ok", ""};
       },
       "tags[1]: empty"},
      {[](json& b) { b["tags"] = {std::string(129, 't')}; }, "tags[0]: longer than 128 octets"},
      {[](json& b) { b["tags"] = {"a\tb"}; }, "tags[0]: has a control character"},
      {[](json& b) { b["idempotency_key"] = ""; },
       "idempotency_key: must be 1 to 200 printable ASCII characters"},
      {[](json& b) { b["idempotency_key"] = std::string(201, 'k'); },
       "idempotency_key: must be 1 to 200 printable ASCII characters"},
      {[](json& b) { b["idempotency_key"] = "schlüssel"; },
       "idempotency_key: must be 1 to 200 printable ASCII characters"},
      {[](json& b) { b["idempotency_key"] = 7; }, "idempotency_key: must be a string"},
  }));
  json body = minimal();
  edit(body);
  INFO(expected);
  const auto r = mta::parse_inject_request(body.dump());
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().kind() == core::Status::Kind::kInvalid);
  INFO(r.status().message());
  CHECK(r.status().message().rfind(expected, 0) == 0);
}

TEST_CASE("inject request: limits", "[mta][unit]") {
  const auto addresses = [](size_t n, const std::string& prefix) {
    json a = json::array();
    for (size_t i = 0; i < n; ++i) a.push_back(prefix + std::to_string(i) + "@example.net");
    return a;
  };
  const auto error = [](const json& body, const mta::InjectLimits& limits = {}) {
    auto r = mta::parse_inject_request(body.dump(), limits);
    REQUIRE_FALSE(r.is_ok());
    return r.status().message();
  };
  SECTION("1000 recipients in to, cc and bcc together") {
    json body = minimal();
    body["to"] = addresses(400, "t");
    body["cc"] = addresses(400, "c");
    body["bcc"] = addresses(200, "b");
    CHECK(parse_ok(body).recipients.size() == 1000);
    body["bcc"].push_back("one-more@example.net");
    CHECK(error(body) == "bcc[200]: more than 1000 recipients in to, cc and bcc");
  }
  SECTION("100 tags") {
    json body = minimal();
    body["tags"] = json::array();
    for (int i = 0; i < 100; ++i) body["tags"].push_back("t" + std::to_string(i));
    CHECK(parse_ok(body).tags.size() == 100);
    body["tags"].push_back("t100");
    CHECK(error(body) == "tags: more than 100 tags");
  }
  SECTION("total decoded size") {
    mta::InjectLimits limits;
    limits.max_decoded_bytes = 10;
    json body = minimal();  // text "Hi": 2
    body["attachments"] = {{{"filename", "a"}, {"content", core::encode_base64("12345678")}}};
    CHECK(parse_ok(body, limits).composition.attachments.size() == 1);
    body["attachments"].push_back({{"filename", "b"}, {"content", "QQ=="}});
    CHECK(error(body, limits) ==
          "attachments[1].content: the message is too large: text, html and attachments "
          "exceed 10 octets decoded");
    body["html"] = "<p>more than ten</p>";
    CHECK(error(body, limits).rfind("html: the message is too large", 0) == 0);
  }
  SECTION("not JSON") {
    auto r = mta::parse_inject_request("{\"from\": ");
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().rfind("body: not valid JSON (", 0) == 0);
    r = mta::parse_inject_request("{\"text\": \"\xFF\"}");
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().message().rfind("body: not valid JSON (", 0) == 0);
  }
}
