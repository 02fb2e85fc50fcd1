// The sans-IO IMAP session driven directly, over the real mailbox store (RocksDB in a temp
// directory, the real queue writer) through StoreImapBackend, as the IMAP service wires it.

#include "mta/access/imap_session.h"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <regex>
#include <string>

#include "core/clock.h"
#include "mta/imap_store_backend.h"
#include "mta/mailbox/store.h"
#include "tests/queue/queue_test_util.h"

using mta::access::ImapSession;
using mta::access::ImapWait;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;

// Completions the backend posts "to the loop": here a queue the test thread runs.
class Mailbox {
 public:
  void post(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
    cv_.notify_all();
  }
  // Runs one posted completion, waiting for it (the writer commits on its own thread).
  bool run_one() {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !queue_.empty(); }))
        return false;
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
};

struct Harness {
  Harness() {
    writer.start();
    config.hostname = "imap.test";
    session.greet();
    session.take_output();
  }
  ~Harness() { writer.stop(); }

  // Sends `line` and answers whatever the session waits for, the way the glue does, until it
  // has said `until` (a tagged reply by default); returns everything it said.
  std::string send(const std::string& bytes, const std::string& until = "") {
    session.receive(bytes);
    std::string out;
    const std::string tag = bytes.substr(0, bytes.find(' '));
    const std::string want = until.empty() ? "\r\n" + tag + " " : until;
    for (int rounds = 0; rounds < 50; ++rounds) {
      out += session.take_output();
      if (("\r\n" + out).find(want) != std::string::npos || session.closing()) return out;
      if (session.waiting() == ImapWait::kAuth) {
        const bool good = session.auth_request().password == "secret";
        session.on_auth(good ? std::optional<std::string>("alice") : std::nullopt,
                        good ? &backend : nullptr, "");
        continue;
      }
      if (session.waiting() == ImapWait::kStartTls) {
        session.on_tls_started();
        continue;
      }
      if (!posted.run_one()) break;
    }
    return out;
  }

  void login_and_select() {
    REQUIRE_THAT(send("l LOGIN alice secret\r\n"), Catch::Contains("l OK"));
    REQUIRE_THAT(send("p CREATE Work\r\n"), Catch::Contains("p OK"));
  }

  std::string append(const std::string& box, const std::string& msg,
                     const std::string& flags = "") {
    return send("a APPEND " + box + (flags.empty() ? "" : " (" + flags + ")") + " {" +
                std::to_string(msg.size()) + "+}\r\n" + msg + "\r\n");
  }

  queue_test::TempDir dir;
  std::unique_ptr<queue::Db> db = queue_test::open_db(dir.path());
  core::FakeClock clock{kNow};
  queue::Writer writer{*db};
  mta::mailbox::Store store{*db, clock};
  Mailbox posted;
  mta::ImapSearchCache search_cache;
  mta::StoreImapBackend backend{store, writer, search_cache, "alice",
                                [this](std::function<void()> fn) { posted.post(std::move(fn)); }};
  mta::access::ImapConfig config;
  ImapSession session{config, true};
};

const std::string kMessage =
    "From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: Quarterly numbers\r\n"
    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <q@example.com>\r\n\r\n"
    "Hello Alice,\r\n.these are the numbers.\r\n";

}  // namespace

TEST_CASE("imap session: capability, login and its refusals", "[mta][unit]") {
  Harness h;
  CHECK_THAT(h.send("c CAPABILITY\r\n"), Catch::Contains("IMAP4rev2") && Catch::Contains("AUTH=PLAIN"));
  CHECK_THAT(h.send("s SELECT INBOX\r\n"), Catch::Contains("s BAD Log in first"));
  CHECK_THAT(h.send("w LOGIN alice wrong\r\n"), Catch::Contains("w NO [AUTHENTICATIONFAILED]"));
  CHECK_THAT(h.send("l LOGIN alice secret\r\n"), Catch::Contains("l OK [CAPABILITY"));
  CHECK_THAT(h.send("x LOGIN alice secret\r\n"), Catch::Contains("x BAD"));

  SECTION("no login before TLS") {
    mta::access::ImapConfig plain;
    plain.starttls_available = true;
    ImapSession s(plain, false);
    s.greet();
    CHECK_THAT(s.take_output(), Catch::Contains("STARTTLS LOGINDISABLED"));
    s.receive("l LOGIN alice secret\r\n");
    CHECK_THAT(s.take_output(), Catch::Contains("l NO [PRIVACYREQUIRED]"));
    s.receive("t STARTTLS\r\nl LOGIN injected x\r\n");
    CHECK(s.take_output() == "t OK Begin TLS negotiation now\r\n");
    REQUIRE(s.waiting() == ImapWait::kStartTls);
    s.on_tls_started();  // what was pipelined behind STARTTLS is dropped
    CHECK(s.take_output().empty());
    CHECK(s.waiting() == ImapWait::kNone);
  }
}

TEST_CASE("imap session: APPEND, SELECT and FETCH", "[mta][unit]") {
  Harness h;
  h.login_and_select();
  CHECK_THAT(h.append("INBOX", kMessage, "\\Flagged $Q4"), Catch::Contains("a OK [APPENDUID"));
  const std::string sel = h.send("s SELECT INBOX\r\n");
  CHECK_THAT(sel, Catch::Contains("* 1 EXISTS"));
  CHECK_THAT(sel, Catch::Contains("[UIDVALIDITY "));
  CHECK_THAT(sel, Catch::Contains("[UIDNEXT 2]"));
  CHECK_THAT(sel, Catch::Contains("s OK [READ-WRITE]"));

  const std::string f = h.send("f FETCH 1 (UID FLAGS RFC822.SIZE BODY.PEEK[])\r\n");
  CHECK_THAT(f, Catch::Contains("* 1 FETCH (UID 1 FLAGS (\\Flagged $Q4) RFC822.SIZE " +
                                std::to_string(kMessage.size()) + " BODY[] {" +
                                std::to_string(kMessage.size()) + "}\r\n" + kMessage + ")"));
  const std::string env = h.send("e FETCH 1 (ENVELOPE BODYSTRUCTURE)\r\n");
  CHECK_THAT(env, Catch::Contains("\"Quarterly numbers\""));
  CHECK_THAT(env, Catch::Contains("((\"Bob\" NIL \"bob\" \"example.com\"))"));
  CHECK_THAT(env, Catch::Contains("BODYSTRUCTURE (\"TEXT\" \"PLAIN\""));
  const std::string part = h.send("p FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)] BODY[TEXT]<0.5>)\r\n");
  CHECK_THAT(part, Catch::Contains("BODY[HEADER.FIELDS (SUBJECT)] {30}\r\nSubject: Quarterly numbers\r\n\r\n"));
  CHECK_THAT(part, Catch::Contains("BODY[TEXT]<0> {5}\r\nHello"));
  // The plain BODY[] read set \Seen.
  CHECK_THAT(h.send("g FETCH 1 FLAGS\r\n"), Catch::Contains("FLAGS (\\Seen \\Flagged $Q4)"));
  CHECK_THAT(h.send("b FETCH 2 FLAGS\r\n"), Catch::Contains("b BAD Sequence number out of range"));
  CHECK_THAT(h.send("u UID FETCH 9:* FLAGS\r\n"), Catch::Contains("* 1 FETCH (UID 1 FLAGS"));
  CHECK_THAT(h.send("x FETCH 1 (BODY[99])\r\n"), Catch::Contains("BODY[99] {0}"));
  CHECK_THAT(h.send("y FETCH 1 (NOPE)\r\n"), Catch::Contains("y BAD Unknown FETCH item"));
}

TEST_CASE("imap session: STORE, SEARCH, EXPUNGE", "[mta][unit]") {
  Harness h;
  h.login_and_select();
  for (int i = 0; i < 3; ++i) h.append("INBOX", kMessage);
  h.send("s SELECT INBOX\r\n");
  CHECK_THAT(h.send("t STORE 2 +FLAGS (\\Deleted)\r\n"),
             Catch::Contains("* 2 FETCH (FLAGS (\\Deleted))"));
  CHECK(h.send("q STORE 1 +FLAGS.SILENT (\\Seen)\r\n") == "q OK STORE completed\r\n");
  CHECK_THAT(h.send("r SEARCH UNSEEN\r\n"), Catch::Contains("* SEARCH 2 3"));
  CHECK_THAT(h.send("r2 UID SEARCH SUBJECT quarterly FROM bob\r\n"), Catch::Contains("* SEARCH 1 2 3"));
  CHECK_THAT(h.send("r3 SEARCH RETURN (COUNT MIN) DELETED\r\n"),
             Catch::Contains("* ESEARCH (TAG \"r3\") MIN 2 COUNT 1"));
  CHECK_THAT(h.send("x EXPUNGE\r\n"), Catch::Contains("* 2 EXPUNGE\r\nx OK"));
  CHECK_THAT(h.send("f FETCH 1:* UID\r\n"), Catch::Contains("* 2 FETCH (UID 3)"));
  SECTION("EXAMINE is read-only") {
    CHECK_THAT(h.send("e EXAMINE INBOX\r\n"), Catch::Contains("e OK [READ-ONLY]"));
    CHECK_THAT(h.send("t STORE 1 +FLAGS (\\Deleted)\r\n"), Catch::Contains("t NO [READ-ONLY]"));
  }
}

TEST_CASE("imap session: header keys ANDed with flag keys read few summaries", "[mta][unit]") {
  Harness h;
  h.login_and_select();
  for (int i = 0; i < 8; ++i) h.append("INBOX", kMessage, i == 5 ? "" : "\\Seen");
  h.append("INBOX", "From: carol@example.com\r\nSubject: other\r\n\r\nx\r\n");
  h.send("s SELECT INBOX\r\n");
  // UNSEEN leaves 2 of 9: only their summaries are copied out of the index scan.
  CHECK_THAT(h.send("a SEARCH UNSEEN SUBJECT quarterly\r\n"), Catch::Contains("* SEARCH 6\r\n"));
  CHECK_THAT(h.send("b UID SEARCH UNSEEN FROM carol\r\n"), Catch::Contains("* SEARCH 9\r\n"));
  CHECK_THAT(h.send("c SEARCH UNSEEN FROM nobody\r\n"), Catch::Contains("* SEARCH\r\n"));
  // Most messages pass the flag key.
  CHECK_THAT(h.send("d SEARCH SEEN SUBJECT quarterly\r\n"),
             Catch::Contains("* SEARCH 1 2 3 4 5 7 8\r\n"));
  // The summaries kept from the searches above learn of new mail and forget expunged mail.
  h.append("INBOX", "From: dave@example.com\r\nSubject: quarterly too\r\n\r\nx\r\n");
  h.send("t STORE 1 +FLAGS (\\Deleted)\r\n");
  h.send("x EXPUNGE\r\n");
  CHECK_THAT(h.send("e SEARCH SUBJECT quarterly\r\n"),
             Catch::Contains("* SEARCH 1 2 3 4 5 6 7 9\r\n"));
  CHECK_THAT(h.send("f UID SEARCH FROM dave\r\n"), Catch::Contains("* SEARCH 10\r\n"));
}

TEST_CASE("imap session: another session's changes arrive untagged", "[mta][unit]") {
  Harness h;
  h.login_and_select();
  h.append("INBOX", kMessage);
  h.append("INBOX", kMessage);
  h.send("s SELECT INBOX\r\n");
  // A second session of the same user on the same store.
  mta::access::ImapConfig cfg2;
  ImapSession other(cfg2, true);
  other.receive("l LOGIN alice secret\r\n");
  REQUIRE(other.waiting() == ImapWait::kAuth);
  other.on_auth(std::string("alice"), &h.backend, "");
  other.receive("s SELECT INBOX\r\nt STORE 1 +FLAGS (\\Answered)\r\n");
  REQUIRE(h.posted.run_one());
  other.receive("d STORE 2 +FLAGS (\\Deleted)\r\n");
  REQUIRE(h.posted.run_one());
  other.receive("x EXPUNGE\r\n");
  REQUIRE(h.posted.run_one());
  CHECK_THAT(other.take_output(), Catch::Contains("x OK EXPUNGE completed"));
  // The first session hears of the flag change and of new mail with its next reply, but of
  // the expunge only between commands (RFC 9051 §7.5.1), here when IDLE starts.
  const std::string appended = h.append("INBOX", kMessage);
  CHECK_THAT(appended, Catch::Contains("* 1 FETCH (UID 1 FLAGS (\\Answered))"));
  CHECK_THAT(appended, Catch::Contains("* 3 EXISTS"));
  CHECK_THAT(appended, !Catch::Contains("EXPUNGE"));
  CHECK(h.send("i IDLE\r\n", "+ idling\r\n") == "* 2 EXPUNGE\r\n+ idling\r\n");
  // A delivery while idling: what the store's events tell the session, at once.
  other.receive("a APPEND INBOX {" + std::to_string(kMessage.size()) + "+}\r\n" + kMessage +
                "\r\n");
  REQUIRE(h.posted.run_one());
  h.session.on_mailbox_changed("INBOX");
  CHECK(h.session.take_output() == "* 3 EXISTS\r\n");
  h.session.on_mailbox_changed("Junk");  // not the selected mailbox: nothing to say
  CHECK(h.session.take_output().empty());
  CHECK_THAT(h.send("DONE\r\n", "i OK"), Catch::Contains("i OK IDLE terminated"));
}

TEST_CASE("imap session: mailboxes, COPY and MOVE", "[mta][unit]") {
  Harness h;
  h.login_and_select();
  const std::string list = h.send("l LIST \"\" *\r\n");
  CHECK_THAT(list, Catch::Contains("* LIST (\\HasNoChildren \\Sent \\Subscribed) \"/\" \"Sent\""));
  CHECK_THAT(list, Catch::Contains("\"Work\""));
  CHECK_THAT(h.send("l2 LIST \"\" %\r\n"), !Catch::Contains("Work/"));
  CHECK_THAT(h.send("c CREATE Work\r\n"), Catch::Contains("c NO [ALREADYEXISTS]"));
  CHECK_THAT(h.send("c2 CREATE \"a/../b\"\r\n"), Catch::Contains("c2 NO [CANNOT]"));
  h.append("INBOX", kMessage);
  h.send("s SELECT INBOX\r\n");
  CHECK_THAT(h.send("k COPY 1 Work\r\n"), Catch::Contains("k OK [COPYUID "));
  CHECK_THAT(h.send("m MOVE 1 Archive\r\n"), Catch::Contains("* 1 EXPUNGE"));
  CHECK_THAT(h.send("n COPY 1 Nowhere\r\n"), Catch::Contains("BAD"));  // INBOX is empty now
  CHECK_THAT(h.send("st STATUS Work (MESSAGES UNSEEN UIDNEXT)\r\n"),
             Catch::Contains("* STATUS \"Work\" (MESSAGES 1 UNSEEN 1 UIDNEXT 2)"));
  CHECK_THAT(h.send("r RENAME Work Done/Work\r\n"), Catch::Contains("r OK"));
  CHECK_THAT(h.send("l3 LIST \"\" Done/*\r\n"), Catch::Contains("\"Done/Work\""));
  CHECK_THAT(h.send("d DELETE INBOX\r\n"), Catch::Contains("d NO [CANNOT]"));
  CHECK_THAT(h.send("u SUBSCRIBE Done/Work\r\n"), Catch::Contains("u OK"));
  CHECK_THAT(h.send("ls LSUB \"\" *\r\n"), Catch::Contains("* LSUB (\\HasNoChildren) \"/\" \"Done/Work\""));
}

TEST_CASE("imap session: bad input is answered and never more", "[mta][unit]") {
  Harness h;
  CHECK_THAT(h.send("a FROB\r\n"), Catch::Contains("a BAD Unknown command FROB"));
  CHECK_THAT(h.send("b LOGIN {5}\r\n", "+ Ready"), Catch::Contains("+ Ready for literal data"));
  CHECK_THAT(h.send("alice secret\r\n", "b "), Catch::Contains("b OK"));
  h.append("INBOX", kMessage);
  CHECK_THAT(h.send("s SELECT INBOX\r\n"), Catch::Contains("s OK"));
  CHECK_THAT(h.send("f FETCH x:y FLAGS\r\n"), Catch::Contains("f BAD Bad sequence set"));
  CHECK_THAT(h.send("g STORE 1 FLAGZ (\\Seen)\r\n"), Catch::Contains("g BAD"));
  CHECK_THAT(h.send("h SEARCH (UNSEEN\r\n"), Catch::Contains("h BAD"));
  CHECK_THAT(h.send("i SEARCH CHARSET KOI8-R ALL\r\n"), Catch::Contains("i NO [BADCHARSET"));
  CHECK_THAT(h.send("j LOGOUT\r\n"), Catch::Contains("* BYE"));
  CHECK(h.session.closing());
}
