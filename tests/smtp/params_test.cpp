#include "mta/smtp/params.h"

#include <catch2/catch.hpp>

using namespace mta::smtp;

TEST_CASE("params: MAIL parses path and parameters", "[smtp][unit]") {
  auto r = parse_mail("FROM:<a@Example.COM> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=a+2Bb");
  REQUIRE(std::holds_alternative<MailCommand>(r));
  auto& m = std::get<MailCommand>(r);
  CHECK(m.sender.local == "a");
  CHECK(m.sender.domain == "example.com");
  CHECK(m.size == 1000);
  CHECK(m.body == core::BodyType::k8BitMime);
  CHECK(m.ret == core::DsnRet::kHeaders);
  CHECK(m.envid == "a+b");
}

TEST_CASE("params: MAIL refusals carry the right code", "[smtp][unit]") {
  auto [args, code, enh] = GENERATE(table<std::string, int, std::string>({
      {"FROM:a@b", 501, "5.5.4"},
      {"FROM:<a@b> SIZE=x", 501, "5.5.4"},
      {"FROM:<a@b> FOO=1", 555, "5.5.4"},
      {"FROM:<a@b> BODY=BINARYMIME", 501, "5.5.4"},
      {"FROM:<a@b> SIZE=1 SIZE=2", 555, "5.5.4"},
      {"FROM:<a..b@c>", 501, "5.1.7"},
      {"FROM:<jöran@b.example>", 553, "5.6.7"},
      {"FROM:<a@b> ENVID=a+zz", 501, "5.5.4"},
  }));
  CAPTURE(args);
  auto r = parse_mail(args);
  REQUIRE(std::holds_alternative<core::Reply>(r));
  CHECK(std::get<core::Reply>(r).code == code);
  CHECK(std::get<core::Reply>(r).enhanced == enh);
}

TEST_CASE("params: SMTPUTF8, null sender, space after colon", "[smtp][unit]") {
  auto r = parse_mail("FROM:<jöran@bücher.example> SMTPUTF8");
  REQUIRE(std::holds_alternative<MailCommand>(r));
  CHECK(std::get<MailCommand>(r).smtputf8);
  auto n = parse_mail("FROM: <>");
  REQUIRE(std::holds_alternative<MailCommand>(n));
  CHECK(std::get<MailCommand>(n).sender.empty());
  auto q = parse_mail("FROM:<\"a b>c\"@x.example>");
  REQUIRE(std::holds_alternative<MailCommand>(q));
  CHECK(std::get<MailCommand>(q).sender.local == "\"a b>c\"");
}

TEST_CASE("params: RCPT with DSN parameters", "[smtp][unit]") {
  auto r = parse_rcpt("TO:<b@c.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+40c.example", false);
  REQUIRE(std::holds_alternative<RcptCommand>(r));
  auto& rc = std::get<RcptCommand>(r).recipient;
  CHECK(rc.notify == (core::kNotifySuccess | core::kNotifyDelay));
  CHECK(rc.orcpt == "rfc822;b@c.example");
  auto bad = parse_rcpt("TO:<b@c.example> NOTIFY=NEVER,SUCCESS", false);
  CHECK(std::holds_alternative<core::Reply>(bad));
  auto null = parse_rcpt("TO:<>", false);
  CHECK(std::holds_alternative<core::Reply>(null));
}
