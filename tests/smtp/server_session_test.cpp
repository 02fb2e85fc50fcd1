#include "mta/smtp/server_session.h"

#include <catch2/catch.hpp>
#include <sstream>

#include "core/base64.h"

using namespace mta::smtp;

namespace {

// Drives a session the way the glue does, answering its requests from simple rules:
// login "alice"/"secret" is good; recipients in "local.example" or when relay_ok are
// accepted; commits succeed with queue id "ID1" unless fail_commit.
struct Driver {
  ServerConfig cfg;
  std::unique_ptr<ServerSession> s;
  std::vector<CommitRequest> commits;
  bool relay_ok = true;
  bool fail_commit = false;
  int tls_starts = 0;

  explicit Driver(ServerConfig c = {}, bool tls = false) : cfg(std::move(c)) {
    s = std::make_unique<ServerSession>(cfg, "192.0.2.1", tls);
    s->greet();
    s->take_output();
  }

  void settle() {
    while (true) {
      switch (s->waiting()) {
        case Wait::kNone: return;
        case Wait::kStartTls: ++tls_starts; s->on_tls_started(); break;
        case Wait::kAuth: {
          const auto& a = s->auth_request();
          if (a.login == "alice" && a.password == "secret") {
            s->on_auth("alice", {});
          } else {
            s->on_auth(std::nullopt, {535, "5.7.8", "Authentication credentials invalid"});
          }
          break;
        }
        case Wait::kMail: s->on_mail_checked(std::nullopt); break;
        case Wait::kRcpt:
          if (relay_ok || s->rcpt_request().address.domain == "local.example") {
            s->on_rcpt_checked(std::nullopt);
          } else {
            s->on_rcpt_checked(core::Reply{554, "5.7.1", "Relay access denied"});
          }
          break;
        case Wait::kCommit:
          commits.push_back(s->take_commit());
          s->on_committed(fail_commit ? core::Reply{451, "4.3.0", "Queue write failed"}
                                      : core::Reply{250, "2.0.0", "Ok: queued as ID1"});
          break;
      }
    }
  }

  // Sends bytes, returns the reply lines produced.
  std::vector<std::string> send(std::string_view bytes) {
    s->receive(bytes);
    settle();
    std::vector<std::string> lines;
    std::istringstream in(s->take_output());
    for (std::string l; std::getline(in, l);) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(l);
    }
    return lines;
  }
  std::string one(std::string_view bytes) {
    auto l = send(bytes);
    REQUIRE(l.size() == 1);
    return l[0];
  }
  std::string body(size_t i = 0) {
    std::string b;
    for (auto& c : commits.at(i).chunks) b += c;
    return b;
  }
};

bool starts(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

// True if an EHLO reply advertises `ext` (on a "250-" or the final "250 " line).
bool has_ext(const std::vector<std::string>& ehlo, std::string_view ext) {
  for (const auto& l : ehlo)
    if (l.size() > 4 && std::string_view(l).substr(4) == ext) return true;
  return false;
}

}  // namespace

TEST_CASE("server_session: a whole transaction", "[smtp][unit]") {
  Driver d;
  auto ehlo = d.send("EHLO client.example\r\n");
  CHECK(ehlo.front() == "250-localhost");
  CHECK(has_ext(ehlo, "PIPELINING"));
  CHECK(has_ext(ehlo, "CHUNKING"));
  CHECK(ehlo.back() == "250 DSN");
  CHECK(d.one("MAIL FROM:<a@b.example> SIZE=100\r\n") == "250 2.1.0 Ok");
  CHECK(d.one("RCPT TO:<c@d.example> NOTIFY=FAILURE\r\n") == "250 2.1.5 Ok");
  CHECK(starts(d.one("DATA\r\n"), "354 "));
  CHECK(d.one("Subject: hi\r\n\r\nbody\r\n..dot\r\n.\r\n") == "250 2.0.0 Ok: queued as ID1");
  REQUIRE(d.commits.size() == 1);
  CHECK(d.body() == "Subject: hi\r\n\r\nbody\r\n.dot\r\n");
  const auto& env = d.commits[0].envelope;
  CHECK(env.sender.str() == "a@b.example");
  REQUIRE(env.recipients.size() == 1);
  CHECK(env.recipients[0].notify == core::kNotifyFailure);
  CHECK(env.client_helo == "client.example");
  CHECK(env.client_ip == "192.0.2.1");
  CHECK(d.one("QUIT\r\n") == "221 2.0.0 Bye");
  CHECK(d.s->closing());
}

TEST_CASE("server_session: pipelined group answered in order in one output", "[smtp][unit]") {
  Driver d;
  d.send("EHLO c\r\n");
  auto r = d.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nRCPT TO:<bad>\r\n"
                  "RCPT TO:<z@y.example>\r\nDATA\r\n");
  REQUIRE(r.size() == 5);
  CHECK(r[0] == "250 2.1.0 Ok");
  CHECK(r[1] == "250 2.1.5 Ok");
  CHECK(starts(r[2], "501 5.1.3"));
  CHECK(r[3] == "250 2.1.5 Ok");
  CHECK(starts(r[4], "354"));
  d.send("x\r\n.\r\n");
  CHECK(d.commits.at(0).envelope.recipients.size() == 2);
}

TEST_CASE("server_session: sequence errors", "[smtp][unit]") {
  Driver d;
  CHECK(starts(d.one("MAIL FROM:<a@b>\r\n"), "503 5.5.1"));
  d.send("HELO c\r\n");
  CHECK(starts(d.one("RCPT TO:<a@b.example>\r\n"), "503 5.5.1 Error: need MAIL"));
  CHECK(starts(d.one("DATA\r\n"), "503 5.5.1"));
  d.send("MAIL FROM:<a@b.example>\r\n");
  CHECK(starts(d.one("DATA\r\n"), "503 5.5.1 Error: need RCPT"));
  CHECK(starts(d.one("MAIL FROM:<a@b.example>\r\n"), "503 5.5.1 Error: nested MAIL"));
  CHECK(d.one("RSET\r\n") == "250 2.0.0 Ok");
  CHECK(starts(d.one("RCPT TO:<a@b.example>\r\n"), "503"));
  CHECK(starts(d.one("FOO\r\n"), "500 5.5.2"));
  CHECK(starts(d.one("VRFY x\r\n"), "252 2.5.0"));
  CHECK(starts(d.one("EXPN x\r\n"), "502 5.5.1"));
  CHECK(starts(d.one("NOOP\r\n"), "250 2.0.0"));
  CHECK(starts(d.send("HELP\r\n").back(), "214 2.0.0"));
  CHECK(starts(d.one("QUIT now\r\n"), "501 5.5.4"));
  CHECK(starts(d.one("MAIL FROM:<a@b.example> SIZE=5\r\n"), "555 5.5.4"));  // HELO, not EHLO
}

TEST_CASE("server_session: SIZE at MAIL and while receiving", "[smtp][unit]") {
  ServerConfig cfg;
  cfg.max_message_size = 1000;
  Driver d(cfg);
  d.send("EHLO c\r\n");
  CHECK(starts(d.one("MAIL FROM:<a@b.example> SIZE=1001\r\n"), "552 5.3.4"));
  d.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n");
  CHECK(starts(d.one(std::string(30, 'x') + "\r\n" + std::string(2000, 'y') + "\r\n.\r\n"),
               "552 5.3.4"));
  CHECK(d.commits.empty());
  // The session is usable afterwards.
  CHECK(d.one("MAIL FROM:<a@b.example>\r\n") == "250 2.1.0 Ok");
}

TEST_CASE("server_session: recipient limit answers 452 4.5.3", "[smtp][unit]") {
  ServerConfig cfg;
  cfg.max_recipients = 2;
  Driver d(cfg);
  d.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
  CHECK(d.one("RCPT TO:<1@y.example>\r\n") == "250 2.1.5 Ok");
  CHECK(d.one("RCPT TO:<2@y.example>\r\n") == "250 2.1.5 Ok");
  CHECK(starts(d.one("RCPT TO:<3@y.example>\r\n"), "452 4.5.3"));
}

TEST_CASE("server_session: error limit ends with 421", "[smtp][unit]") {
  ServerConfig cfg;
  cfg.max_errors = 3;
  Driver d(cfg);
  auto r = d.send("X\r\nY\r\nZ\r\nNOOP\r\n");
  REQUIRE(r.size() == 4);
  CHECK(starts(r[3], "421 4.7.0"));
  CHECK(d.s->closing());
  CHECK(d.send("NOOP\r\n").empty());
}

TEST_CASE("server_session: relay refusal passes through", "[smtp][unit]") {
  Driver d;
  d.relay_ok = false;
  d.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\n");
  CHECK(d.one("RCPT TO:<x@remote.example>\r\n") == "554 5.7.1 Relay access denied");
  CHECK(d.one("RCPT TO:<x@local.example>\r\n") == "250 2.1.5 Ok");
}

TEST_CASE("server_session: STARTTLS discards pipelined plaintext", "[smtp][unit]") {
  ServerConfig cfg;
  cfg.starttls_available = true;
  cfg.auth_enabled = true;
  Driver d(cfg);
  auto ehlo = d.send("EHLO c\r\n");
  CHECK(has_ext(ehlo, "STARTTLS"));
  for (auto& l : ehlo) CHECK(l.find("AUTH") == std::string::npos);
  auto r = d.send("STARTTLS\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<v@y.example>\r\n");
  REQUIRE(r.size() == 1);
  CHECK(r[0] == "220 2.0.0 Ready to start TLS");
  CHECK(d.tls_starts == 1);
  CHECK(d.s->discarded_after_starttls() > 0);
  // After TLS the session is fresh: the injected MAIL was not executed and EHLO is needed.
  CHECK(starts(d.one("MAIL FROM:<a@b.example>\r\n"), "503 5.5.1 Error: send HELO/EHLO"));
  auto ehlo2 = d.send("EHLO c\r\n");
  CHECK_FALSE(has_ext(ehlo2, "STARTTLS"));
  CHECK(has_ext(ehlo2, "AUTH PLAIN LOGIN"));
  CHECK(starts(d.one("STARTTLS\r\n"), "503 5.5.1"));
}

TEST_CASE("server_session: AUTH only under TLS, then required for MAIL", "[smtp][unit]") {
  ServerConfig cfg;
  cfg.starttls_available = true;
  cfg.auth_enabled = true;
  cfg.auth_required = true;
  Driver d(cfg);
  d.send("EHLO c\r\n");
  const std::string plain = core::encode_base64(std::string("\0alice\0secret", 13));
  CHECK(starts(d.one("AUTH PLAIN " + plain + "\r\n"), "538 5.7.11"));
  CHECK(starts(d.one("MAIL FROM:<a@b.example>\r\n"), "530 5.7.0 Must issue a STARTTLS"));
  d.send("STARTTLS\r\n");
  d.send("EHLO c\r\n");
  CHECK(starts(d.one("MAIL FROM:<a@b.example>\r\n"), "530 5.7.0 Authentication required"));
  SECTION("PLAIN with initial response") {
    CHECK(d.one("AUTH PLAIN " + plain + "\r\n") == "235 2.7.0 Authentication successful");
    CHECK(d.s->auth_user() == "alice");
    CHECK(d.one("MAIL FROM:<a@b.example>\r\n") == "250 2.1.0 Ok");
    CHECK(starts(d.one("RSET\r\n"), "250"));
    CHECK(starts(d.one("AUTH PLAIN " + plain + "\r\n"), "503 5.5.1"));
  }
  SECTION("PLAIN with a continuation") {
    CHECK(d.one("AUTH PLAIN\r\n") == "334 ");
    CHECK(starts(d.one(plain + "\r\n"), "235"));
  }
  SECTION("LOGIN") {
    CHECK(d.one("AUTH LOGIN\r\n") == "334 VXNlcm5hbWU6");
    CHECK(d.one(core::encode_base64("alice") + "\r\n") == "334 UGFzc3dvcmQ6");
    CHECK(starts(d.one(core::encode_base64("secret") + "\r\n"), "235 2.7.0"));
  }
  SECTION("bad password, cancel, garbage, unknown mechanism") {
    const std::string bad = core::encode_base64(std::string("\0alice\0wrong", 12));
    CHECK(starts(d.one("AUTH PLAIN " + bad + "\r\n"), "535 5.7.8"));
    CHECK(d.one("AUTH LOGIN\r\n") == "334 VXNlcm5hbWU6");
    CHECK(starts(d.one("*\r\n"), "501 5.0.0"));
    CHECK(starts(d.one("AUTH PLAIN !!!!\r\n"), "501 5.5.2"));
    CHECK(starts(d.one("AUTH CRAM-MD5\r\n"), "504 5.5.4"));
    CHECK(d.s->auth_user().empty());
  }
}

TEST_CASE("server_session: BDAT chunks, BDAT 0 LAST and errors", "[smtp][unit]") {
  Driver d;
  d.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\n");
  SECTION("two chunks") {
    CHECK(d.one("BDAT 5\r\nab\r\nc") == "250 2.0.0 5 octets received");
    CHECK(d.one("BDAT 3 LAST\r\nd\r\n") == "250 2.0.0 Ok: queued as ID1");
    CHECK(d.body() == "ab\r\ncd\r\n");
  }
  SECTION("a chunk ending in CR counts the CR") {
    CHECK(d.one("BDAT 3\r\nab\r") == "250 2.0.0 3 octets received");
    CHECK(d.one("BDAT 1 LAST\r\n\n") == "250 2.0.0 Ok: queued as ID1");
    CHECK(d.body() == "ab\r\n");
  }
  SECTION("BDAT 0 LAST") {
    d.one("BDAT 4\r\nx\r\n.");
    CHECK(d.one("BDAT 0 LAST\r\n") == "250 2.0.0 Ok: queued as ID1");
    CHECK(d.body() == "x\r\n.");
  }
  SECTION("pipelined BDAT with bytes and commands that look like commands") {
    auto r = d.send("BDAT 12\r\nQUIT\r\nRSET\r\nBDAT 0 LAST\r\nNOOP\r\n");
    REQUIRE(r.size() == 3);
    CHECK(d.body() == "QUIT\r\nRSET\r\n");
    CHECK(r[2] == "250 2.0.0 Ok");
  }
  SECTION("DATA not allowed during BDAT") {
    d.one("BDAT 1\r\nx");
    CHECK(starts(d.one("DATA\r\n"), "503 5.5.1"));
  }
  SECTION("BDAT without MAIL consumes its octets") {
    d.one("RSET\r\n");
    CHECK(starts(d.one("BDAT 6 LAST\r\nNOOP\r\n"), "503 5.5.1"));
    CHECK(d.one("NOOP\r\n") == "250 2.0.0 Ok");
  }
  SECTION("bad BDAT syntax closes") {
    auto r = d.send("BDAT x\r\n");
    CHECK(starts(r.back(), "421"));
    CHECK(d.s->closing());
  }
}

TEST_CASE("server_session: content problems are refused at the end", "[smtp][unit]") {
  Driver d;
  d.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n");
  SECTION("bare CR") { CHECK(starts(d.one("a\rb\r\n.\r\n"), "554 5.6.0")); }
  SECTION("long line") { CHECK(starts(d.one(std::string(10000, 'x') + "\r\n.\r\n"), "554 5.6.0")); }
  SECTION("smuggling attempt is one message") {
    auto r = d.send("a\n.\nMAIL FROM:<e@x.example>\nRCPT TO:<v@y.example>\nDATA\ns\n.\r\nz\r\n.\r\n");
    REQUIRE(r.size() == 1);
    CHECK(r[0] == "250 2.0.0 Ok: queued as ID1");
    REQUIRE(d.commits.size() == 1);
    CHECK(d.body().find("MAIL FROM:<e@x.example>") != std::string::npos);
  }
  CHECK(d.commits.size() <= 1);
}

TEST_CASE("server_session: bare LF refused by policy", "[smtp][unit]") {
  ServerConfig cfg;
  cfg.bare_lf = BareLfPolicy::kRefuse;
  Driver d(cfg);
  CHECK(starts(d.one("EHLO c\n"), "500 5.5.2 Error: bare LF"));
  d.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n");
  auto r = d.one("a\nb\r\n.\r\n");
  CHECK(starts(r, "554 5.6.0"));
  CHECK(r.find("bare LF") != std::string::npos);
}

TEST_CASE("server_session: long command lines and binary garbage", "[smtp][unit]") {
  Driver d;
  auto r = d.send(std::string(10000, 'A') + "\r\nNOOP\r\n");
  REQUIRE(r.size() == 2);
  CHECK(starts(r[0], "500 5.5.2 Error: line too long"));
  CHECK(r[1] == "250 2.0.0 Ok");
  // A long line that arrives in pieces is refused once.
  auto a = d.send(std::string(3000, 'B'));
  CHECK(a.size() == 1);
  auto b = d.send(std::string(3000, 'B') + "\r\nNOOP\r\n");
  REQUIRE(b.size() == 1);
  CHECK(b[0] == "250 2.0.0 Ok");
  std::string garbage;
  for (int i = 0; i < 256; ++i) garbage += static_cast<char>(i);
  auto g = d.send(garbage + "\r\n");
  CHECK_FALSE(g.empty());
  for (auto& l : g) CHECK((starts(l, "500") || starts(l, "421")));
}

TEST_CASE("server_session: commit failure is a 451 and the session goes on", "[smtp][unit]") {
  Driver d;
  d.fail_commit = true;
  d.send("EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n");
  CHECK(starts(d.one("x\r\n.\r\n"), "451 4.3.0"));
  CHECK(d.one("MAIL FROM:<a@b.example>\r\n") == "250 2.1.0 Ok");
}

TEST_CASE("server_session: implicit TLS offers AUTH at once", "[smtp][unit]") {
  ServerConfig cfg;
  cfg.auth_enabled = true;
  Driver d(cfg, /*tls=*/true);
  auto ehlo = d.send("EHLO c\r\n");
  CHECK(has_ext(ehlo, "AUTH PLAIN LOGIN"));
  CHECK(starts(d.one("STARTTLS\r\n"), "503 5.5.1"));
}

TEST_CASE("server_session: timeout answers 421 4.4.2", "[smtp][unit]") {
  Driver d;
  d.s->on_timeout();
  CHECK(starts(d.s->take_output(), "421 4.4.2"));
  CHECK(d.s->closing());
}
