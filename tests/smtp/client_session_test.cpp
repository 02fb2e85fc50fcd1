#include "mta/smtp/client_session.h"

#include <catch2/catch.hpp>

#include "core/base64.h"

using namespace mta::smtp;

namespace {

const std::string kGreeting = "220 mx.example ESMTP\r\n";
const std::string kEhloFull =
    "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
    "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n";
const std::string kEhloPlain = "250-mx.example\r\n250 8BITMIME\r\n";

core::Address addr(std::string_view s) {
  const size_t at = s.rfind('@');
  return core::Address{std::string(s.substr(0, at)), std::string(s.substr(at + 1))};
}

ClientMessage message(std::vector<std::string> rcpts, std::string sender = "alice@a.example") {
  ClientMessage m;
  m.sender = addr(sender);
  for (const auto& r : rcpts) m.recipients.push_back(core::Recipient{addr(r), 0, ""});
  m.size = 100;
  return m;
}

std::string outcome(const RecipientResult& r) {
  return std::to_string(r.reply.code) + " " + r.reply.enhanced + " " + r.reply.text;
}

// Plays the server: each call hands the session some server bytes and returns what the
// session wrote back.
struct Client {
  ClientConfig cfg;
  std::unique_ptr<ClientSession> s;

  explicit Client(ClientConfig c = plain_config()) : cfg(std::move(c)) {
    s = std::make_unique<ClientSession>(cfg);
    s->on_connected();
  }
  static ClientConfig plain_config() {
    ClientConfig c;
    c.helo_name = "client.example";
    c.tls = TlsPolicy::kNone;
    return c;
  }
  std::string server(std::string_view bytes) {
    s->receive(bytes);
    return s->take_output();
  }
  // Greeting and EHLO with the given reply; the session must then be ready.
  void ready(const std::string& ehlo = kEhloFull) {
    REQUIRE(server(kGreeting) == "EHLO client.example\r\n");
    REQUIRE(server(ehlo).empty());
    REQUIRE(s->wants() == Want::kNextMessage);
  }
  std::string send(ClientMessage m) {
    s->send_message(std::move(m));
    return s->take_output();
  }
  std::string body(std::vector<std::string_view> chunks) {
    REQUIRE(s->wants() == Want::kBody);
    for (auto c : chunks) s->body_chunk(c);
    s->body_end();
    return s->take_output();
  }
  // The outcomes of the one message whose result is expected now.
  std::vector<std::string> outcomes() {
    auto results = s->take_results();
    REQUIRE(results.size() == 1);
    std::vector<std::string> out;
    for (size_t i = 0; i < results[0].recipients.size(); ++i) {
      REQUIRE(results[0].recipients[i].index == i);
      out.push_back(outcome(results[0].recipients[i]));
    }
    return out;
  }
  std::vector<Stage> stages() {
    auto results = s->take_results();
    REQUIRE(results.size() == 1);
    std::vector<Stage> out;
    for (const auto& r : results[0].recipients) out.push_back(r.stage);
    return out;
  }
};

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("client_session: happy path with PIPELINING", "[smtp][unit]") {
  Client c;
  CHECK(c.s->wants() == Want::kNothing);
  c.ready();
  CHECK(c.s->extensions().pipelining);
  CHECK(c.s->extensions().size == 1000000u);
  CHECK(c.s->extensions().chunking);
  // RFC 2920: MAIL, every RCPT and DATA in one write.
  CHECK(c.send(message({"bob@b.example", "carol@b.example"})) ==
        "MAIL FROM:<alice@a.example> SIZE=100\r\n"
        "RCPT TO:<bob@b.example>\r\n"
        "RCPT TO:<carol@b.example>\r\n"
        "DATA\r\n");
  CHECK(c.s->wants() == Want::kNothing);
  CHECK(c.server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n").empty());
  CHECK(c.s->wants() == Want::kNothing);
  CHECK(c.server("354 End data with <CR><LF>.<CR><LF>\r\n").empty());
  CHECK(c.body({"Subject: hi\r\n\r\n", "hello\r\n"}) == "Subject: hi\r\n\r\nhello\r\n.\r\n");
  CHECK(c.s->wants() == Want::kNothing);
  CHECK(c.s->take_results().empty());
  CHECK(c.server("250 2.0.0 Ok: queued as 7B3\r\n").empty());
  CHECK(c.s->wants() == Want::kNextMessage);
  auto results = c.s->take_results();
  REQUIRE(results.size() == 1);
  REQUIRE(results[0].recipients.size() == 2);
  for (const auto& r : results[0].recipients) {
    CHECK(outcome(r) == "250 2.0.0 Ok: queued as 7B3");
    CHECK(r.from_server);
    CHECK(r.stage == Stage::kEndOfData);
  }
  c.s->quit();
  CHECK(c.s->take_output() == "QUIT\r\n");
  CHECK(c.s->wants() == Want::kClose);
  CHECK_FALSE(c.s->host_failure());
}

TEST_CASE("client_session: without PIPELINING one command per reply", "[smtp][unit]") {
  Client c;
  c.ready(kEhloPlain);
  CHECK(c.send(message({"bob@b.example", "carol@b.example"})) == "MAIL FROM:<alice@a.example>\r\n");
  CHECK(c.server("250 Ok\r\n") == "RCPT TO:<bob@b.example>\r\n");
  CHECK(c.server("250 Ok\r\n") == "RCPT TO:<carol@b.example>\r\n");
  CHECK(c.server("250 Ok\r\n") == "DATA\r\n");
  CHECK(c.server("354 go ahead\r\n").empty());
  CHECK(c.body({"x\r\n"}) == "x\r\n.\r\n");
  CHECK(c.server("250 queued\r\n").empty());
  // No enhanced code from the server: derived from the class.
  CHECK(c.outcomes() == Strings{"250 2.0.0 queued", "250 2.0.0 queued"});
}

TEST_CASE("client_session: EHLO refused with 5xx falls back to HELO", "[smtp][unit]") {
  Client c;
  REQUIRE(c.server(kGreeting) == "EHLO client.example\r\n");
  SECTION("HELO accepted: no extensions, no ESMTP parameters") {
    CHECK(c.server("502 5.5.2 EHLO not implemented\r\n") == "HELO client.example\r\n");
    CHECK(c.server("250 mx.example\r\n").empty());
    REQUIRE(c.s->wants() == Want::kNextMessage);
    CHECK_FALSE(c.s->extensions().pipelining);
    CHECK_FALSE(c.s->extensions().size);
    ClientMessage m = message({"bob@b.example"});
    m.eight_bit = true;
    m.ret = core::DsnRet::kFull;
    m.envid = "id1";
    m.recipients[0].notify = core::kNotifyFailure;
    m.recipients[0].orcpt = "rfc822;bob@b.example";
    CHECK(c.send(m) == "MAIL FROM:<alice@a.example>\r\n");
    CHECK(c.server("250 ok\r\n") == "RCPT TO:<bob@b.example>\r\n");
  }
  SECTION("HELO refused too: host failure as the server said, then QUIT") {
    CHECK(c.server("500 what\r\n") == "HELO client.example\r\n");
    CHECK(c.server("550 5.7.1 not you\r\n") == "QUIT\r\n");
    CHECK(c.s->wants() == Want::kClose);
    REQUIRE(c.s->host_failure());
    CHECK(c.s->host_failure()->reply.code == 550);
    CHECK(c.s->host_failure()->reply.enhanced == "5.7.1");
    CHECK_FALSE(c.s->host_failure()->temporary);
    CHECK(c.s->host_failure()->stage == Stage::kHelo);
  }
  SECTION("EHLO 4xx is no reason for HELO: temporary host failure") {
    CHECK(c.server("451 busy\r\n") == "QUIT\r\n");
    REQUIRE(c.s->host_failure());
    CHECK(c.s->host_failure()->reply.enhanced == "4.0.0");
    CHECK(c.s->host_failure()->temporary);
    CHECK(c.s->host_failure()->stage == Stage::kEhlo);
  }
}

TEST_CASE("client_session: greeting refused", "[smtp][unit]") {
  Client c;
  SECTION("554: temporary for the host so the next MX is tried; QUIT said") {
    CHECK(c.server("554 5.7.1 You are not welcome\r\n") == "QUIT\r\n");
    CHECK(c.s->wants() == Want::kClose);
    REQUIRE(c.s->host_failure());
    const HostFailure& f = *c.s->host_failure();
    CHECK(outcome({0, f.reply}) == "554 5.7.1 You are not welcome");
    CHECK(f.temporary);
    CHECK(f.from_server);
    CHECK(f.stage == Stage::kGreeting);
  }
  SECTION("421: closed at once") {
    CHECK(c.server("421 mx.example busy\r\n").empty());
    CHECK(c.s->wants() == Want::kClose);
    REQUIRE(c.s->host_failure());
    CHECK(c.s->host_failure()->reply.enhanced == "4.0.0");
    CHECK(c.s->host_failure()->temporary);
  }
}

TEST_CASE("client_session: STARTTLS policy matrix", "[smtp][unit]") {
  enum Expect { kPlain, kTls, kFail };
  struct Row {
    TlsPolicy policy;
    bool offered;
    bool possible;
    std::string starttls_reply;  // what the server says to STARTTLS
    bool handshake_ok;
    bool sends_starttls;
    Expect expect;
    std::string enhanced;  // of the host failure
  };
  const auto row = GENERATE(values<Row>({
      {TlsPolicy::kNone, true, true, "", true, false, kPlain, ""},
      {TlsPolicy::kNone, false, true, "", true, false, kPlain, ""},
      {TlsPolicy::kMay, true, true, "220 2.0.0 go\r\n", true, true, kTls, ""},
      {TlsPolicy::kMay, true, true, "220 2.0.0 go\r\n", false, true, kFail, "4.7.5"},
      {TlsPolicy::kMay, false, true, "", true, false, kPlain, ""},
      {TlsPolicy::kMay, true, false, "", true, false, kPlain, ""},
      {TlsPolicy::kMay, true, true, "454 4.7.0 TLS not available\r\n", true, true, kPlain, ""},
      {TlsPolicy::kEncrypt, true, true, "220 2.0.0 go\r\n", true, true, kTls, ""},
      {TlsPolicy::kEncrypt, true, true, "220 2.0.0 go\r\n", false, true, kFail, "4.7.5"},
      {TlsPolicy::kEncrypt, false, true, "", true, false, kFail, "4.7.4"},
      {TlsPolicy::kEncrypt, true, true, "454 4.7.0 TLS not available\r\n", true, true, kFail,
       "4.7.0"},
      {TlsPolicy::kEncrypt, true, false, "", true, false, kFail, "4.7.5"},
      {TlsPolicy::kVerify, true, true, "220 2.0.0 go\r\n", true, true, kTls, ""},
      {TlsPolicy::kVerify, true, true, "220 2.0.0 go\r\n", false, true, kFail, "4.7.5"},
      {TlsPolicy::kVerify, false, true, "", true, false, kFail, "4.7.4"},
  }));
  CAPTURE(static_cast<int>(row.policy), row.offered, row.possible, row.starttls_reply,
          row.handshake_ok);
  ClientConfig cfg = Client::plain_config();
  cfg.tls = row.policy;
  cfg.tls_possible = row.possible;
  Client c(cfg);
  REQUIRE(c.server(kGreeting) == "EHLO client.example\r\n");
  const std::string ehlo = row.offered ? "250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
                                       : "250-mx.example\r\n250 PIPELINING\r\n";
  std::string wrote = c.server(ehlo);
  if (row.sends_starttls) {
    REQUIRE(wrote == "STARTTLS\r\n");
    wrote = c.server(row.starttls_reply);
    if (row.starttls_reply.starts_with("220")) {
      REQUIRE(wrote.empty());
      REQUIRE(c.s->wants() == Want::kStartTls);
      c.s->on_tls_started(row.handshake_ok);
      wrote = c.s->take_output();
      if (row.handshake_ok) {
        // RFC 3207 §4.2: EHLO again; the new reply is all that counts.
        REQUIRE(wrote == "EHLO client.example\r\n");
        CHECK(c.s->wants() == Want::kNothing);
        wrote = c.server("250-mx.example\r\n250 8BITMIME\r\n");
        CHECK_FALSE(c.s->extensions().pipelining);
        CHECK_FALSE(c.s->extensions().starttls);
      }
    }
  }
  switch (row.expect) {
    case kPlain:
    case kTls:
      CHECK(wrote.empty());
      CHECK(c.s->wants() == Want::kNextMessage);
      CHECK(c.s->tls_active() == (row.expect == kTls));
      CHECK_FALSE(c.s->host_failure());
      break;
    case kFail:
      CHECK(c.s->wants() == Want::kClose);
      CHECK_FALSE(c.s->tls_active());
      REQUIRE(c.s->host_failure());
      CHECK(c.s->host_failure()->reply.enhanced == row.enhanced);
      CHECK(c.s->host_failure()->temporary);
      // A failed handshake leaves no channel to say QUIT on; a policy refusal does.
      CHECK(wrote == (row.handshake_ok ? "QUIT\r\n" : ""));
      break;
  }
  if (row.expect == kFail && row.enhanced == "4.7.4") {
    CHECK(c.s->host_failure()->reply.text == "TLS required but not offered by server");
    CHECK_FALSE(c.s->host_failure()->from_server);
    CHECK(c.s->host_failure()->stage == Stage::kStartTls);
  }
  if (row.expect == kFail && row.enhanced == "4.7.5" && row.possible) {
    CHECK(c.s->host_failure()->reply.text == "TLS handshake failed");
    CHECK(c.s->host_failure()->stage == Stage::kTlsHandshake);
  }
}

TEST_CASE("client_session: bytes sent in clear after the STARTTLS 220 are dropped",
          "[smtp][unit]") {
  ClientConfig cfg = Client::plain_config();
  cfg.tls = TlsPolicy::kMay;
  cfg.tls_possible = true;
  Client c(cfg);
  c.server(kGreeting);
  REQUIRE(c.server("250-mx.example\r\n250 STARTTLS\r\n") == "STARTTLS\r\n");
  // A man in the middle appends a fake EHLO reply offering nothing but AUTH.
  REQUIRE(c.server("220 go\r\n250-evil\r\n250 AUTH PLAIN\r\n").empty());
  REQUIRE(c.s->wants() == Want::kStartTls);
  c.s->on_tls_started(true);
  REQUIRE(c.s->take_output() == "EHLO client.example\r\n");
  CHECK(c.s->wants() == Want::kNothing);
  CHECK(c.server("250-mx.example\r\n250 PIPELINING\r\n").empty());
  CHECK(c.s->wants() == Want::kNextMessage);
  CHECK(c.s->extensions().auth.empty());
  CHECK(c.s->extensions().pipelining);
}

TEST_CASE("client_session: AUTH PLAIN", "[smtp][unit]") {
  ClientConfig cfg = Client::plain_config();
  cfg.auth = std::pair<std::string, std::string>("user", "pa ss");
  std::string token("\0user\0pa ss", 11);
  const std::string auth_cmd = "AUTH PLAIN " + core::encode_base64(token) + "\r\n";
  SECTION("over TLS: accepted") {
    cfg.tls = TlsPolicy::kEncrypt;
    cfg.tls_possible = true;
    Client c(cfg);
    c.server(kGreeting);
    // Before TLS, AUTH is not tried even though it is offered.
    REQUIRE(c.server("250-mx.example\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n") ==
            "STARTTLS\r\n");
    c.server("220 go\r\n");
    c.s->on_tls_started(true);
    REQUIRE(c.s->take_output() == "EHLO client.example\r\n");
    CHECK(c.server("250-mx.example\r\n250 AUTH LOGIN PLAIN\r\n") == auth_cmd);
    CHECK(c.s->wants() == Want::kNothing);
    SECTION("235") {
      CHECK(c.server("235 2.7.0 Authentication successful\r\n").empty());
      CHECK(c.s->wants() == Want::kNextMessage);
    }
    SECTION("535: host failure with the server's reply") {
      CHECK(c.server("535 5.7.8 Authentication credentials invalid\r\n") == "QUIT\r\n");
      CHECK(c.s->wants() == Want::kClose);
      REQUIRE(c.s->host_failure());
      CHECK(outcome({0, c.s->host_failure()->reply}) ==
            "535 5.7.8 Authentication credentials invalid");
      CHECK(c.s->host_failure()->from_server);
      CHECK_FALSE(c.s->host_failure()->temporary);
      CHECK(c.s->host_failure()->stage == Stage::kAuth);
    }
  }
  SECTION("legacy AUTH= form is understood") {
    cfg.tls = TlsPolicy::kNone;
    cfg.auth_without_tls = true;
    Client c(cfg);
    c.server(kGreeting);
    CHECK(c.server("250-mx.example\r\n250 AUTH=LOGIN PLAIN\r\n") == auth_cmd);
  }
  SECTION("no TLS: credentials are not sent in clear") {
    cfg.tls = TlsPolicy::kMay;
    Client c(cfg);
    c.server(kGreeting);
    CHECK(c.server("250-mx.example\r\n250 AUTH PLAIN\r\n") == "QUIT\r\n");
    REQUIRE(c.s->host_failure());
    CHECK(c.s->host_failure()->reply.enhanced == "4.7.0");
    CHECK(c.s->host_failure()->temporary);
    CHECK_FALSE(c.s->host_failure()->from_server);
  }
  SECTION("PLAIN not offered") {
    cfg.tls = TlsPolicy::kNone;
    cfg.auth_without_tls = true;
    Client c(cfg);
    c.server(kGreeting);
    CHECK(c.server("250-mx.example\r\n250 AUTH LOGIN CRAM-MD5\r\n") == "QUIT\r\n");
    REQUIRE(c.s->host_failure());
    CHECK(c.s->host_failure()->reply.text == "AUTH PLAIN configured but not offered by server");
  }
}

TEST_CASE("client_session: SIZE", "[smtp][unit]") {
  Client c;
  c.ready("250-mx.example\r\n250-SIZE 1000\r\n250 PIPELINING\r\n");
  SECTION("too big for the server: refused without sending anything") {
    ClientMessage m = message({"bob@b.example", "carol@b.example"});
    m.size = 1001;
    CHECK(c.send(m).empty());
    CHECK(c.s->wants() == Want::kNextMessage);
    auto results = c.s->take_results();
    REQUIRE(results.size() == 1);
    REQUIRE(results[0].recipients.size() == 2);
    for (const auto& r : results[0].recipients) {
      CHECK(r.reply.code == 552);
      CHECK(r.reply.enhanced == "5.3.4");
      CHECK_FALSE(r.from_server);
    }
  }
  SECTION("within the limit: declared") {
    ClientMessage m = message({"bob@b.example"});
    m.size = 1000;
    CHECK(c.send(m) ==
          "MAIL FROM:<alice@a.example> SIZE=1000\r\nRCPT TO:<bob@b.example>\r\n"
          "DATA\r\n");
  }
}

TEST_CASE("client_session: SIZE 0 means no limit", "[smtp][unit]") {
  Client c;
  c.ready("250-mx.example\r\n250 SIZE\r\n");
  ClientMessage m = message({"bob@b.example"});
  m.size = 1u << 30;
  CHECK(c.send(m) == "MAIL FROM:<alice@a.example> SIZE=1073741824\r\n");
}

TEST_CASE("client_session: SMTPUTF8 needed", "[smtp][unit]") {
  Client c;
  SECTION("server lacks it: permanent failure, nothing sent") {
    c.ready(kEhloPlain);
    ClientMessage m = GENERATE(
        [] {
          ClientMessage m = message({"bob@b.example"});
          m.needs_smtputf8 = true;
          return m;
        }(),
        message({"bj\xc3\xb6rn@b.example"}));
    CHECK(c.send(m).empty());
    CHECK(c.s->wants() == Want::kNextMessage);
    auto results = c.s->take_results();
    REQUIRE(results.size() == 1);
    REQUIRE(results[0].recipients.size() == 1);
    const RecipientResult& r = results[0].recipients[0];
    CHECK(r.reply.permanent());
    CHECK(r.reply.enhanced == "5.6.7");
    CHECK_THAT(r.reply.text, Catch::Contains("SMTPUTF8"));
    CHECK_FALSE(r.from_server);
  }
  SECTION("server has it: MAIL says so") {
    c.ready();
    ClientMessage m = message({"bj\xc3\xb6rn@b.example"});
    CHECK(c.send(m) ==
          "MAIL FROM:<alice@a.example> SIZE=100 SMTPUTF8\r\n"
          "RCPT TO:<bj\xc3\xb6rn@b.example>\r\nDATA\r\n");
  }
}

TEST_CASE("client_session: 8BITMIME only when offered", "[smtp][unit]") {
  Client c;
  const bool offered = GENERATE(true, false);
  c.ready(offered ? "250-mx.example\r\n250 8BITMIME\r\n" : "250 mx.example\r\n");
  ClientMessage m = message({"bob@b.example"});
  m.eight_bit = true;
  CHECK(c.send(m) == (offered ? "MAIL FROM:<alice@a.example> BODY=8BITMIME\r\n"
                              : "MAIL FROM:<alice@a.example>\r\n"));
}

TEST_CASE("client_session: DSN parameters only when offered, xtext encoded", "[smtp][unit]") {
  ClientMessage m = message({"bob@b.example", "carol@b.example", "dave@b.example"}, "");
  m.ret = core::DsnRet::kHeaders;
  m.envid = "Q1+x=y z";
  m.recipients[0].notify = core::kNotifySuccess | core::kNotifyFailure | core::kNotifyDelay;
  m.recipients[0].orcpt = "rfc822;b+ob=1@b.example";
  m.recipients[1].notify = core::kNotifyNever;
  Client c;
  SECTION("offered") {
    c.ready();
    CHECK(
        c.send(m) ==
        "MAIL FROM:<> SIZE=100 RET=HDRS ENVID=Q1+2Bx+3Dy+20z\r\n"
        "RCPT TO:<bob@b.example> NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;b+2Bob+3D1@b.example\r\n"
        "RCPT TO:<carol@b.example> NOTIFY=NEVER\r\n"
        "RCPT TO:<dave@b.example>\r\n"
        "DATA\r\n");
  }
  SECTION("not offered") {
    c.ready("250-mx.example\r\n250 PIPELINING\r\n");
    CHECK(c.send(m) ==
          "MAIL FROM:<>\r\nRCPT TO:<bob@b.example>\r\nRCPT TO:<carol@b.example>\r\n"
          "RCPT TO:<dave@b.example>\r\nDATA\r\n");
  }
}

TEST_CASE("client_session: mixed RCPT results then 250", "[smtp][unit]") {
  Client c;
  c.ready();
  c.send(message({"a@b.example", "b@b.example", "c@b.example"}));
  CHECK(c.server("250 2.1.0 Ok\r\n550 5.1.1 <a@b.example>: no such user\r\n"
                 "450 4.2.0 <b@b.example>: greylisted\r\n250 2.1.5 Ok\r\n354 go\r\n")
            .empty());
  CHECK(c.body({"x\r\n"}) == "x\r\n.\r\n");
  // A partly accepted transaction is complete: no RSET.
  CHECK(c.server("250 2.0.0 Ok: queued as Z\r\n").empty());
  CHECK(c.s->wants() == Want::kNextMessage);
  auto results = c.s->take_results();
  REQUIRE(results.size() == 1);
  const auto& r = results[0].recipients;
  REQUIRE(r.size() == 3);
  CHECK(outcome(r[0]) == "550 5.1.1 <a@b.example>: no such user");
  CHECK(r[0].stage == Stage::kRcpt);
  CHECK(outcome(r[1]) == "450 4.2.0 <b@b.example>: greylisted");
  CHECK(r[1].stage == Stage::kRcpt);
  CHECK(outcome(r[2]) == "250 2.0.0 Ok: queued as Z");
  CHECK(r[2].stage == Stage::kEndOfData);
}

TEST_CASE("client_session: all RCPTs refused", "[smtp][unit]") {
  Client c;
  SECTION("pipelined, DATA refused: RSET, no body") {
    c.ready();
    c.send(message({"a@b.example", "b@b.example"}));
    CHECK(c.server("250 2.1.0 Ok\r\n550 5.1.1 unknown a\r\n451 4.3.0 try later\r\n"
                   "554 5.5.1 Error: no valid recipients\r\n") == "RSET\r\n");
    CHECK(c.outcomes() == Strings{"550 5.1.1 unknown a", "451 4.3.0 try later"});
    CHECK(c.s->wants() == Want::kNothing);  // the RSET reply comes first
    CHECK(c.server("250 2.0.0 Ok\r\n").empty());
    CHECK(c.s->wants() == Want::kNextMessage);
  }
  SECTION("pipelined, DATA accepted anyway: only the dot, then RSET") {
    c.ready();
    c.send(message({"a@b.example"}));
    CHECK(c.server("250 2.1.0 Ok\r\n550 5.1.1 unknown a\r\n354 go\r\n") == ".\r\n");
    CHECK(c.s->wants() == Want::kNothing);
    CHECK(c.server("554 5.5.1 no recipients\r\n") == "RSET\r\n");
    CHECK(c.outcomes() == Strings{"550 5.1.1 unknown a"});
    CHECK(c.server("250 Ok\r\n").empty());
    CHECK(c.s->wants() == Want::kNextMessage);
  }
  SECTION("not pipelined: no DATA at all") {
    c.ready(kEhloPlain);
    c.send(message({"a@b.example", "b@b.example"}));
    CHECK(c.server("250 Ok\r\n") == "RCPT TO:<a@b.example>\r\n");
    CHECK(c.server("550 no\r\n") == "RCPT TO:<b@b.example>\r\n");
    CHECK(c.server("550 no\r\n") == "RSET\r\n");
    CHECK(c.outcomes() == Strings{"550 5.0.0 no", "550 5.0.0 no"});
  }
}

TEST_CASE("client_session: MAIL refused applies to every recipient", "[smtp][unit]") {
  Client c;
  SECTION("pipelined: the RCPT and DATA replies that follow change nothing") {
    c.ready();
    c.send(message({"a@b.example", "b@b.example"}));
    CHECK(c.server("452 4.3.1 Insufficient system storage\r\n503 5.5.1 need MAIL\r\n"
                   "503 5.5.1 need MAIL\r\n")
              .empty());
    CHECK(c.server("503 5.5.1 need MAIL\r\n") == "RSET\r\n");
    auto results = c.s->take_results();
    REQUIRE(results.size() == 1);
    for (const auto& r : results[0].recipients) {
      CHECK(outcome(r) == "452 4.3.1 Insufficient system storage");
      CHECK(r.stage == Stage::kMail);
    }
  }
  SECTION("not pipelined") {
    c.ready(kEhloPlain);
    c.send(message({"a@b.example", "b@b.example"}));
    CHECK(c.server("553 5.7.1 sender rejected\r\n") == "RSET\r\n");
    CHECK(c.outcomes() == Strings{"553 5.7.1 sender rejected", "553 5.7.1 sender rejected"});
  }
}

TEST_CASE("client_session: failure reply after DATA", "[smtp][unit]") {
  const std::string reply = GENERATE(std::string("554 5.7.1 spam"), std::string("451 4.3.0 disk"));
  Client c;
  c.ready();
  c.send(message({"a@b.example", "b@b.example", "c@b.example"}));
  c.server("250 Ok\r\n250 Ok\r\n550 5.1.1 nope\r\n250 Ok\r\n354 go\r\n");
  c.body({"x\r\n"});
  CHECK(c.server(reply + "\r\n") == "RSET\r\n");
  auto results = c.s->take_results();
  REQUIRE(results.size() == 1);
  const auto& r = results[0].recipients;
  REQUIRE(r.size() == 3);
  CHECK(outcome(r[0]) == reply);
  CHECK(r[0].stage == Stage::kEndOfData);
  CHECK(outcome(r[1]) == "550 5.1.1 nope");
  CHECK(outcome(r[2]) == reply);
  CHECK(c.s->wants() == Want::kNothing);
  CHECK(c.server("250 2.0.0 Ok\r\n").empty());
  CHECK(c.s->wants() == Want::kNextMessage);
}

TEST_CASE("client_session: DATA refused fails the accepted recipients", "[smtp][unit]") {
  Client c;
  c.ready(kEhloPlain);
  c.send(message({"a@b.example"}));
  c.server("250 ok\r\n");
  CHECK(c.server("250 ok\r\n") == "DATA\r\n");
  CHECK(c.server("451 4.3.0 not now\r\n") == "RSET\r\n");
  CHECK(c.outcomes() == Strings{"451 4.3.0 not now"});
}

TEST_CASE("client_session: 421 ends the connection", "[smtp][unit]") {
  Client c;
  c.ready();
  c.send(message({"a@b.example", "b@b.example", "c@b.example"}));
  SECTION("mid-pipeline: accepted and unanswered recipients get the 421") {
    CHECK(c.server("250 Ok\r\n550 5.1.1 nope\r\n250 Ok\r\n421 4.3.2 shutting down\r\n").empty());
    CHECK(c.s->wants() == Want::kClose);
    CHECK(c.outcomes() ==
          Strings{"550 5.1.1 nope", "421 4.3.2 shutting down", "421 4.3.2 shutting down"});
    REQUIRE(c.s->host_failure());
    CHECK(c.s->host_failure()->temporary);
    CHECK(c.s->host_failure()->stage == Stage::kRcpt);
    CHECK(c.s->host_failure()->reply.code == 421);
    // Nothing more is read or written.
    CHECK(c.server("250 late\r\n").empty());
    CHECK(c.s->take_results().empty());
  }
  SECTION("while the body is being sent") {
    c.server("250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n");
    c.s->body_chunk("partial");
    c.server("421 4.4.2 idle timeout\r\n");
    CHECK(c.s->wants() == Want::kClose);
    CHECK(c.stages() == std::vector<Stage>(3, Stage::kBody));
  }
  SECTION("in reply to the end of DATA") {
    c.server("250 Ok\r\n250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n");
    c.body({"x"});
    c.server("421 too slow\r\n");
    CHECK(c.outcomes() == Strings(3, "421 4.0.0 too slow"));
  }
}

TEST_CASE("client_session: 421 on an idle connection closes it quietly", "[smtp][unit]") {
  Client c;
  c.ready();
  CHECK(c.server("421 4.4.2 idle too long\r\n").empty());
  CHECK(c.s->wants() == Want::kClose);
  CHECK_FALSE(c.s->host_failure());
}

TEST_CASE("client_session: dot-stuffing and the end of data", "[smtp][unit]") {
  struct Row {
    std::vector<std::string_view> chunks;
    std::string wire;
  };
  const auto row = GENERATE(values<Row>({
      {{"a\r\n.\r\nb\r\n"}, "a\r\n..\r\nb\r\n.\r\n"},
      {{".start\r\n"}, "..start\r\n.\r\n"},
      {{"..\r\n"}, "...\r\n.\r\n"},
      {{"mid.dle\r\n"}, "mid.dle\r\n.\r\n"},
      {{"no line end"}, "no line end\r\n.\r\n"},
      {{""}, ".\r\n"},
      {{}, ".\r\n"},
      {{"a\r\n\r\n"}, "a\r\n\r\n.\r\n"},
      {{"a\r", "\n", ".b\r\n"}, "a\r\n..b\r\n.\r\n"},
      {{"a\r\n", ".", "\r\n"}, "a\r\n..\r\n.\r\n"},
      {{"a\r\n.", ".\r", "\n."}, "a\r\n...\r\n..\r\n.\r\n"},
      {{"x\n.y\n"}, "x\r\n..y\r\n.\r\n"},  // bare LF becomes CRLF
      {{"a\rb\r\n"}, "a\rb\r\n.\r\n"},     // bare CR passes
      {{"a\r.b\r\n"}, "a\r.b\r\n.\r\n"},   // and is no line start
      {{"ends in cr\r"}, "ends in cr\r\n.\r\n"},
      {{"ends in dot\r\n."}, "ends in dot\r\n..\r\n.\r\n"},
  }));
  Client c;
  c.ready();
  c.send(message({"a@b.example"}));
  c.server("250 Ok\r\n250 Ok\r\n354 go\r\n");
  CHECK(c.body(row.chunks) == row.wire);
}

TEST_CASE("client_session: dot-stuffing is the same at every chunk boundary", "[smtp][unit]") {
  const std::string body = "From: a\r\n\r\n.\r\n..x\r\nline\r\n.\r\n\r\n.end";
  const std::string expect = "From: a\r\n\r\n..\r\n...x\r\nline\r\n..\r\n\r\n..end\r\n.\r\n";
  for (size_t i = 0; i <= body.size(); ++i) {
    for (size_t j = i; j <= body.size(); j += 3) {
      Client c;
      c.ready();
      c.send(message({"a@b.example"}));
      c.server("250 Ok\r\n250 Ok\r\n354 go\r\n");
      const std::string_view b = body;
      REQUIRE(c.body({b.substr(0, i), b.substr(i, j - i), b.substr(j)}) == expect);
    }
  }
}

TEST_CASE("client_session: several messages on one connection", "[smtp][unit]") {
  Client c;
  c.ready();
  for (int round = 0; round < 2; ++round) {
    const std::string to = "r" + std::to_string(round) + "@b.example";
    CHECK(c.send(message({to})) ==
          "MAIL FROM:<alice@a.example> SIZE=100\r\nRCPT TO:<" + to + ">\r\nDATA\r\n");
    c.server("250 Ok\r\n250 Ok\r\n354 go\r\n");
    CHECK(c.body({"m\r\n"}) == "m\r\n.\r\n");
    c.server("250 2.0.0 queued as Q" + std::to_string(round) + "\r\n");
    CHECK(c.outcomes() == Strings{"250 2.0.0 queued as Q" + std::to_string(round)});
  }
  SECTION("after a failed transaction the RSET reply comes before the next MAIL") {
    c.send(message({"x@b.example"}));
    CHECK(c.server("250 Ok\r\n550 no\r\n554 no valid recipients\r\n") == "RSET\r\n");
    c.s->take_results();
    CHECK(c.s->wants() == Want::kNothing);
    CHECK(c.server("250 Ok\r\n").empty());
    REQUIRE(c.s->wants() == Want::kNextMessage);
    CHECK(c.send(message({"y@b.example"})) ==
          "MAIL FROM:<alice@a.example> SIZE=100\r\nRCPT TO:<y@b.example>\r\nDATA\r\n");
  }
  SECTION("QUIT need not wait for the RSET reply") {
    c.send(message({"x@b.example"}));
    CHECK(c.server("250 Ok\r\n550 no\r\n554 no valid recipients\r\n") == "RSET\r\n");
    c.s->quit();
    CHECK(c.s->take_output() == "QUIT\r\n");
    CHECK(c.s->wants() == Want::kClose);
    CHECK_FALSE(c.s->host_failure());
    CHECK(c.s->take_results().size() == 1);
  }
  SECTION("a refused RSET ends the connection") {
    c.send(message({"x@b.example"}));
    c.server("250 Ok\r\n550 no\r\n554 no valid recipients\r\n");
    c.s->take_results();
    CHECK(c.server("500 what\r\n") == "QUIT\r\n");
    CHECK(c.s->wants() == Want::kClose);
    REQUIRE(c.s->host_failure());
    CHECK(c.s->host_failure()->stage == Stage::kRset);
    CHECK(c.s->take_results().empty());
  }
}

TEST_CASE("client_session: replies split at every byte", "[smtp][unit]") {
  // (server bytes, what the session writes once all of them have arrived)
  const std::vector<std::pair<std::string, std::string>> script = {
      {"220-mx.example ESMTP\r\n220 no UCE\r\n", "EHLO client.example\r\n"},
      {kEhloFull, ""},
  };
  const std::vector<std::pair<std::string, std::string>> transaction = {
      {"250-2.1.0 sender\r\n250 2.1.0 ok\r\n", ""},
      {"250 2.1.5 ok\n", ""},  // bare LF
      {"354 go\r\n", ""},
  };
  Client c;
  auto play = [&](const std::vector<std::pair<std::string, std::string>>& steps) {
    for (const auto& [in, out] : steps) {
      for (size_t i = 0; i + 1 < in.size(); ++i) REQUIRE(c.server(in.substr(i, 1)).empty());
      REQUIRE(c.server(in.substr(in.size() - 1)) == out);
    }
  };
  play(script);
  REQUIRE(c.s->wants() == Want::kNextMessage);
  c.send(message({"a@b.example"}));
  play(transaction);
  REQUIRE(c.s->wants() == Want::kBody);
  c.body({"x\r\n"});
  play({{"250-2.0.0 queued\r\n250-2.0.0 as\r\n250 2.0.0 Q9\r\n", ""}});
  CHECK(c.outcomes() == Strings{"250 2.0.0 queued\nas\nQ9"});
}

TEST_CASE("client_session: malformed or oversized replies are protocol errors", "[smtp][unit]") {
  const std::string bad = GENERATE(
      std::string("250-mx\r\n250 ") + std::string(5000, 'x'),
      [] {
        std::string s;
        for (int i = 0; i < 101; ++i) s += "250-x\r\n";
        return s;
      }(),
      std::string("250-mx\r\n251 PIPELINING\r\n"), std::string("hello there\r\n"));
  Client c;
  c.server(kGreeting);
  CHECK(c.server(bad).empty());  // no QUIT into a stream that makes no sense
  CHECK(c.s->wants() == Want::kClose);
  REQUIRE(c.s->host_failure());
  const HostFailure& f = *c.s->host_failure();
  CHECK(f.reply.enhanced == "4.5.0");
  CHECK_THAT(f.reply.text, Catch::StartsWith("Protocol error: "));
  CHECK_FALSE(f.from_server);
  CHECK(f.temporary);
  CHECK(f.stage == Stage::kEhlo);
}

TEST_CASE("client_session: a protocol error mid-transaction fails the recipients", "[smtp][unit]") {
  Client c;
  c.ready(kEhloPlain);
  c.send(message({"a@b.example"}));
  SECTION("oversized") {
    c.server("250 " + std::string(5000, 'x'));
  }
  SECTION("354 to MAIL") {
    c.server("354 what\r\n");
  }
  CHECK(c.s->wants() == Want::kClose);
  auto results = c.s->take_results();
  REQUIRE(results.size() == 1);
  CHECK(results[0].recipients.at(0).reply.enhanced == "4.5.0");
  CHECK_FALSE(results[0].recipients.at(0).from_server);
}

TEST_CASE("client_session: a positive reply out of step is a protocol error", "[smtp][unit]") {
  ClientConfig cfg = Client::plain_config();
  cfg.tls = TlsPolicy::kMay;
  cfg.tls_possible = true;
  cfg.auth = std::pair<std::string, std::string>("u", "p");
  cfg.auth_without_tls = true;
  Client c(cfg);
  Stage stage = Stage::kGreeting;
  SECTION("greeting 250") {
    c.server("250 hello\r\n");
  }
  SECTION("STARTTLS 250") {
    c.server(kGreeting);
    REQUIRE(c.server("250-mx\r\n250 STARTTLS\r\n") == "STARTTLS\r\n");
    c.server("250 sure\r\n");
    stage = Stage::kStartTls;
  }
  SECTION("AUTH 334 after an initial response") {
    c.server(kGreeting);
    REQUIRE(c.server("250-mx\r\n250 AUTH PLAIN\r\n").starts_with("AUTH PLAIN "));
    c.server("334 \r\n");
    stage = Stage::kAuth;
  }
  CHECK(c.s->take_output().empty());
  CHECK(c.s->wants() == Want::kClose);
  REQUIRE(c.s->host_failure());
  CHECK(c.s->host_failure()->reply.enhanced == "4.5.0");
  CHECK(c.s->host_failure()->stage == stage);
}

TEST_CASE("client_session: an unsolicited reply while idle is a protocol error", "[smtp][unit]") {
  Client c;
  c.ready();
  CHECK(c.server("250 spurious\r\n").empty());
  CHECK(c.s->wants() == Want::kClose);
  REQUIRE(c.s->host_failure());
  CHECK(c.s->host_failure()->reply.enhanced == "4.5.0");
}

TEST_CASE("client_session: the server closes early", "[smtp][unit]") {
  Client c;
  SECTION("before the greeting") {
    c.s->on_closed();
    CHECK(c.s->wants() == Want::kClose);
    REQUIRE(c.s->host_failure());
    CHECK(outcome({0, c.s->host_failure()->reply}) ==
          "421 4.4.2 Lost connection with the server during greeting");
    CHECK(c.s->host_failure()->temporary);
    CHECK_FALSE(c.s->host_failure()->from_server);
  }
  SECTION("after RCPT: the accepted recipient is unfinished, the refused one is not") {
    c.ready(kEhloPlain);
    c.send(message({"a@b.example", "b@b.example"}));
    c.server("250 ok\r\n");
    c.server("550 5.1.1 nope\r\n");
    c.s->on_closed();
    CHECK(c.s->wants() == Want::kClose);
    CHECK(c.outcomes() ==
          Strings{"550 5.1.1 nope", "421 4.4.2 Lost connection with the server during RCPT TO"});
  }
  SECTION("after the dot, before the reply: temporary, so delivered at least once") {
    c.ready();
    c.send(message({"a@b.example"}));
    c.server("250 ok\r\n250 ok\r\n354 go\r\n");
    c.body({"x\r\n"});
    c.server("250 2.0.0 queu");  // half a reply is no reply
    c.s->on_closed();
    auto results = c.s->take_results();
    REQUIRE(results.size() == 1);
    CHECK(results[0].recipients[0].reply.transient());
    CHECK(results[0].recipients[0].stage == Stage::kEndOfData);
  }
  SECTION("while idle: nothing lost, no failure") {
    c.ready();
    c.s->on_closed();
    CHECK(c.s->wants() == Want::kClose);
    CHECK_FALSE(c.s->host_failure());
  }
}

TEST_CASE("client_session: timeouts", "[smtp][unit]") {
  Client c;
  SECTION("waiting for a reply") {
    c.ready(kEhloPlain);
    c.send(message({"a@b.example"}));
    c.s->on_timeout();
    CHECK(c.s->wants() == Want::kClose);
    CHECK(c.outcomes() == Strings{"421 4.4.2 Timed out waiting for the server during MAIL FROM"});
  }
  SECTION("idle: a polite QUIT") {
    c.ready();
    c.s->on_timeout();
    CHECK(c.s->take_output() == "QUIT\r\n");
    CHECK(c.s->wants() == Want::kClose);
    CHECK_FALSE(c.s->host_failure());
  }
}

TEST_CASE("client_session: a message without recipients has an empty result", "[smtp][unit]") {
  Client c;
  c.ready();
  CHECK(c.send(message({})).empty());
  auto results = c.s->take_results();
  REQUIRE(results.size() == 1);
  CHECK(results[0].recipients.empty());
  CHECK(c.s->wants() == Want::kNextMessage);
}
