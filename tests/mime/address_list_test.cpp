#include "mta/mime/address_list.h"

#include <catch2/catch.hpp>

namespace mime = mta::mime;
using A = mime::MailAddress;
using K = mime::MailAddress::Kind;

namespace {
A mbox(std::string name, std::string mailbox, std::string host, std::string route = "") {
  return {K::kMailbox, std::move(name), std::move(route), std::move(mailbox), std::move(host)};
}
A group(std::string name) {
  return {K::kGroupStart, std::move(name), "", "", ""};
}
A group_end() {
  return {K::kGroupEnd, "", "", "", ""};
}
}  // namespace

TEST_CASE("address list: RFC 5322 forms", "[mime][unit]") {
  struct Case {
    std::string in;
    std::vector<A> out;
  };
  const auto c = GENERATE(values<Case>({
      {"user@example.com", {mbox("", "user", "example.com")}},
      {" John Doe <jdoe@machine.example>", {mbox("John Doe", "jdoe", "machine.example")}},
      {"\"Joe Q. Public\" <john.q.public@example.com>",
       {mbox("Joe Q. Public", "john.q.public", "example.com")}},
      {"Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
       {mbox("Mary Smith", "mary", "x.test"), mbox("", "jdoe", "example.org"),
        mbox("Who?", "one", "y.test")}},
      {"\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
       {mbox("Giant; \"Big\" Box", "sysservices", "example.net")}},
      // RFC 5322 appendix A.1.3: a group.
      {"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
       {group("A Group"), mbox("Ed Jones", "c", "a.test"), mbox("", "joe", "where.test"),
        mbox("John", "jdoe", "one.test"), group_end()}},
      {"Undisclosed recipients:;", {group("Undisclosed recipients"), group_end()}},
      // Appendix A.5: comments everywhere.
      {"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
       {mbox("Pete", "pete", "silly.test")}},
      {"user@domain (Real Name)", {mbox("Real Name", "user", "domain")}},
      // Appendix A.6.1: obsolete routes and list members.
      {"<@route1.test,@route2.test:user@domain.test>",
       {mbox("", "user", "domain.test", "@route1.test,@route2.test")}},
      {"Joe Q. Public <john.q.public@example.com>",
       {mbox("Joe Q. Public", "john.q.public", "example.com")}},
      {"a@b.test, , ,c@d.test", {mbox("", "a", "b.test"), mbox("", "c", "d.test")}},
      {"\"quoted local\"@x.test", {mbox("", "quoted local", "x.test")}},
      {"user@[192.0.2.1]", {mbox("", "user", "[192.0.2.1]")}},
      {"=?utf-8?q?J=C3=B6rg?= <j@x.test>", {mbox("=?utf-8?q?J=C3=B6rg?=", "j", "x.test")}},
      {"J\xC3\xB6rg <j\xC3\xB6@x.test>", {mbox("J\xC3\xB6rg", "j\xC3\xB6", "x.test")}},
      {"first.last@sub.example.com", {mbox("", "first.last", "sub.example.com")}},
  }));
  CAPTURE(c.in);
  CHECK(mime::parse_address_list(c.in) == c.out);
}

TEST_CASE("address list: broken fields", "[mime][unit]") {
  struct Case {
    std::string in;
    std::vector<A> out;
  };
  const auto c = GENERATE(values<Case>({
      {"", {}},
      {"   ", {}},
      {"(only a comment)", {}},
      {"<>", {}},
      {"localonly", {mbox("", "localonly", "")}},
      {"John Doe", {mbox("", "John Doe", "")}},
      {"@host.test", {mbox("", "", "host.test")}},
      {"a@b.test; c@d.test", {mbox("", "a", "b.test"), mbox("", "c", "d.test")}},
      {"Name <unterminated@x.test", {mbox("Name", "unterminated", "x.test")}},
      {"\"unterminated <a@b>", {mbox("", "unterminated <a@b>", "")}},
      {"g: a@b.test", {group("g"), mbox("", "a", "b.test"), group_end()}},
      {"outer: inner: a@b.test;;", {group("outer"), mbox("", "a", "b.test"), group_end()}},
      {"x <a@b.test> trailing junk, c@d.test", {mbox("x", "a", "b.test"), mbox("", "c", "d.test")}},
      {"\r\n a@b.test\r\n", {mbox("", "a", "b.test")}},
  }));
  CAPTURE(c.in);
  CHECK(mime::parse_address_list(c.in) == c.out);
}
