#include "mta/access/pop3_session.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/base64.h"

using mta::access::Pop3Config;
using mta::access::Pop3Message;
using mta::access::Pop3Session;
using mta::access::Pop3Wait;

namespace {

const std::vector<std::string> kStored = {
    "From: a@example.com\r\nSubject: one\r\n\r\nline 1\r\n.dot line\r\nline 3\r\n",
    "Subject: two\r\n\r\nbody\r\n",
    "Subject: three\r\n\r\nx\r\n",
};

std::vector<Pop3Message> listing() {
  std::vector<Pop3Message> out;
  for (size_t i = 0; i < kStored.size(); ++i)
    out.push_back({kStored[i].size(), "1700000000." + std::to_string(i + 1)});
  return out;
}

// A session on a TLS port whose glue answers from kStored.
struct Harness {
  static Pop3Config config() {
    Pop3Config c;
    c.hostname = "pop.test";
    return c;
  }

  Pop3Config cfg = config();
  Pop3Session s;
  std::vector<size_t> expunged;
  bool updated = false;

  explicit Harness(bool tls = true) : s(cfg, tls) {
    s.greet();
    s.take_output();
  }

  // Sends `line` and answers what the session asks, like the glue would; returns the output.
  std::string send(const std::string& line) {
    s.receive(line);
    std::string out;
    for (;;) {
      out += s.take_output();
      switch (s.waiting()) {
        case Pop3Wait::kNone: return out;
        case Pop3Wait::kStartTls: s.on_tls_started(); break;
        case Pop3Wait::kAuth:
          if (s.auth_request().login == "alice" && s.auth_request().password == "pw word")
            s.on_auth(std::string("alice"), "");
          else
            s.on_auth(std::nullopt, "");
          break;
        case Pop3Wait::kMaildrop: s.on_maildrop(listing(), ""); break;
        case Pop3Wait::kRetrieve:
          s.on_message(std::string_view(kStored.at(s.retrieve_request().index)));
          break;
        case Pop3Wait::kUpdate:
          expunged = s.deleted();
          updated = true;
          s.on_updated(true);
          break;
      }
    }
  }

  void login() { REQUIRE(send("USER alice\r\nPASS pw word\r\n") == "+OK Send PASS\r\n"
                         "+OK Logged in, 3 messages (" + std::to_string(total()) + " octets)\r\n"); }
  static size_t total() { return kStored[0].size() + kStored[1].size() + kStored[2].size(); }
};

}  // namespace

TEST_CASE("pop3: greeting and CAPA by state and TLS", "[access][unit]") {
  Pop3Config cfg;
  cfg.hostname = "pop.test";
  cfg.starttls_available = true;
  Pop3Session plain(cfg, false);
  plain.greet();
  CHECK(plain.take_output() == "+OK pop.test POP3 ready\r\n");
  plain.receive("CAPA\r\n");
  const std::string capa = plain.take_output();
  CHECK_THAT(capa, Catch::Contains("\r\nSTLS\r\n"));
  CHECK_THAT(capa, !Catch::Contains("USER"));
  CHECK_THAT(capa, !Catch::Contains("SASL"));
  CHECK_THAT(capa, Catch::EndsWith("\r\n.\r\n"));
  Harness h;
  const std::string tls_capa = h.send("CAPA\r\n");
  CHECK_THAT(tls_capa, Catch::Contains("\r\nUSER\r\nSASL PLAIN\r\n"));
  CHECK_THAT(tls_capa, !Catch::Contains("STLS"));
}

TEST_CASE("pop3: no login before TLS, and STLS discards what was pipelined", "[access][unit]") {
  Pop3Config cfg;
  cfg.starttls_available = true;
  Pop3Session s(cfg, false);
  s.receive("USER alice\r\n");
  CHECK(s.take_output() == "-ERR [AUTH] Log in only after STLS\r\n");
  s.receive("AUTH PLAIN AGFsaWNlAHB3\r\n");
  CHECK(s.take_output() == "-ERR [AUTH] Log in only after STLS\r\n");
  s.receive("STLS now\r\n");
  CHECK(s.take_output() == "-ERR STLS takes no arguments\r\n");
  s.receive("STLS\r\nUSER injected\r\n");
  CHECK(s.take_output() == "+OK Begin TLS negotiation\r\n");
  REQUIRE(s.waiting() == Pop3Wait::kStartTls);
  s.on_tls_started();
  CHECK(s.take_output().empty());
  s.receive("PASS x\r\n");
  CHECK(s.take_output() == "-ERR Send USER first\r\n");
}

TEST_CASE("pop3: login with USER/PASS and AUTH PLAIN", "[access][unit]") {
  Harness h;
  SECTION("USER and PASS, the password keeps its spaces") { h.login(); }
  SECTION("wrong password") {
    CHECK(h.send("USER alice\r\nPASS nope\r\n") ==
          "+OK Send PASS\r\n-ERR [AUTH] Authentication failed\r\n");
    CHECK(h.send("STAT\r\n") == "-ERR Log in first\r\n");
  }
  SECTION("AUTH PLAIN with an initial response") {
    const std::string b64 = core::encode_base64(std::string("\0alice\0pw word", 14));
    CHECK_THAT(h.send("AUTH PLAIN " + b64 + "\r\n"), Catch::StartsWith("+OK Logged in, 3"));
  }
  SECTION("AUTH PLAIN with a continuation, and a cancelled one") {
    CHECK(h.send("AUTH PLAIN\r\n") == "+ \r\n");
    CHECK(h.send("*\r\n") == "-ERR [AUTH] Authentication cancelled\r\n");
    CHECK(h.send("AUTH PLAIN\r\n") == "+ \r\n");
    CHECK_THAT(h.send(core::encode_base64(std::string("\0alice\0pw word", 14)) + "\r\n"),
               Catch::StartsWith("+OK Logged in"));
  }
  SECTION("a mailbox locked by another session") {
    h.s.receive("USER alice\r\nPASS pw word\r\n");
    h.s.take_output();
    REQUIRE(h.s.waiting() == Pop3Wait::kAuth);
    h.s.on_auth(std::string("alice"), "");
    REQUIRE(h.s.waiting() == Pop3Wait::kMaildrop);
    h.s.on_maildrop(std::nullopt, "[IN-USE] Mailbox is open in another session");
    CHECK(h.s.take_output() == "-ERR [IN-USE] Mailbox is open in another session\r\n");
    CHECK(h.send("STAT\r\n") == "-ERR Log in first\r\n");
  }
}

TEST_CASE("pop3: STAT, LIST, UIDL", "[access][unit]") {
  Harness h;
  h.login();
  CHECK(h.send("STAT\r\n") == "+OK 3 " + std::to_string(Harness::total()) + "\r\n");
  CHECK(h.send("LIST 2\r\n") == "+OK 2 " + std::to_string(kStored[1].size()) + "\r\n");
  CHECK(h.send("UIDL 3\r\n") == "+OK 3 1700000000.3\r\n");
  CHECK(h.send("UIDL\r\n") == "+OK Unique-ID listing follows\r\n1 1700000000.1\r\n"
                              "2 1700000000.2\r\n3 1700000000.3\r\n.\r\n");
  CHECK(h.send("LIST 4\r\n") == "-ERR No such message\r\n");
  CHECK(h.send("LIST 0\r\n") == "-ERR No such message\r\n");
  CHECK(h.send("LIST x\r\n") == "-ERR No such message\r\n");
  CHECK(h.send("USER bob\r\n") == "-ERR Already logged in\r\n");
}

TEST_CASE("pop3: RETR is dot-stuffed and sized exactly; TOP", "[access][unit]") {
  Harness h;
  h.login();
  CHECK(h.send("RETR 1\r\n") == "+OK " + std::to_string(kStored[0].size()) +
                                    " octets\r\nFrom: a@example.com\r\nSubject: one\r\n\r\n"
                                    "line 1\r\n..dot line\r\nline 3\r\n.\r\n");
  CHECK(h.send("TOP 1 1\r\n") ==
        "+OK Top of message follows\r\nFrom: a@example.com\r\nSubject: one\r\n\r\nline 1\r\n.\r\n");
  CHECK(h.send("TOP 2 0\r\n") == "+OK Top of message follows\r\nSubject: two\r\n\r\n.\r\n");
  CHECK(h.send("TOP 2\r\n") == "-ERR TOP needs a message number and a line count\r\n");
}

TEST_CASE("pop3: deletions happen only at QUIT", "[access][unit]") {
  Harness h;
  h.login();
  CHECK(h.send("DELE 2\r\n") == "+OK Message 2 deleted\r\n");
  CHECK(h.send("RETR 2\r\n") == "-ERR Message 2 is deleted\r\n");
  CHECK(h.send("DELE 2\r\n") == "-ERR Message 2 is deleted\r\n");
  CHECK(h.send("STAT\r\n") ==
        "+OK 2 " + std::to_string(kStored[0].size() + kStored[2].size()) + "\r\n");
  CHECK(h.send("LIST\r\n") == "+OK Scan listing follows\r\n1 " + std::to_string(kStored[0].size()) +
                                  "\r\n3 " + std::to_string(kStored[2].size()) + "\r\n.\r\n");
  SECTION("RSET undoes them") {
    CHECK(h.send("RSET\r\n") == "+OK 3 messages\r\n");
    CHECK(h.send("QUIT\r\n") == "+OK Bye, 0 messages deleted\r\n");
    CHECK(h.expunged.empty());
  }
  SECTION("QUIT applies them") {
    CHECK(h.send("DELE 3\r\nQUIT\r\n") == "+OK Message 3 deleted\r\n+OK Bye, 2 messages deleted\r\n");
    CHECK(h.expunged == std::vector<size_t>{1, 2});
    CHECK(h.s.closing());
  }
  SECTION("a dropped connection never reaches the update state") {
    h.send("DELE 1");  // no CRLF: the connection drops here
    CHECK_FALSE(h.updated);
  }
}

TEST_CASE("pop3: QUIT before login, and a failed update", "[access][unit]") {
  Harness h;
  CHECK(h.send("QUIT\r\n") == "+OK Bye\r\n");
  CHECK(h.s.closing());
  Harness g;
  g.login();
  g.s.receive("DELE 1\r\nQUIT\r\n");
  g.s.take_output();
  REQUIRE(g.s.waiting() == Pop3Wait::kUpdate);
  g.s.on_updated(false);
  CHECK(g.s.take_output() == "-ERR [SYS/TEMP] Deleted messages could not all be removed\r\n");
}

TEST_CASE("pop3: bad input gets -ERR and never more", "[access][unit]") {
  Harness h;
  CHECK(h.send("FOO\r\n") == "-ERR Unknown command\r\n");
  CHECK(h.send(std::string("US\0ER\r\n", 7)) == "-ERR NUL in command\r\n");
  CHECK(h.send(std::string(300, 'A') + "\r\n") == "-ERR Line too long\r\n");
  CHECK(h.send("STAT\r\n") == "-ERR Log in first\r\n");
  SECTION("too many errors close the session") {
    std::string out;
    for (int i = 0; i < 10; ++i) out += h.send("FOO\r\n");
    CHECK_THAT(out, Catch::EndsWith("-ERR Too many errors, closing\r\n"));
    CHECK(h.s.closing());
    CHECK(h.send("CAPA\r\n").empty());
  }
  SECTION("an endless line without CRLF is cut off") {
    CHECK(h.send(std::string(1000, 'x')) == "-ERR Line too long\r\n");
    CHECK(h.send(std::string(1000, 'x') + " tail\r\n").empty());
    CHECK(h.send("NOOP\r\n") == "-ERR Log in first\r\n");
  }
}

TEST_CASE("pop3: pipelined commands are answered in order", "[access][unit]") {
  Harness h;
  h.login();
  CHECK(h.send("STAT\r\nNOOP\r\nUIDL 1\r\n") ==
        "+OK 3 " + std::to_string(Harness::total()) + "\r\n+OK\r\n+OK 1 1700000000.1\r\n");
}
