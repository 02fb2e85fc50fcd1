#pragma once
// The POP3 service: binds sans-IO POP3 sessions (mta/access/pop3_session.h) to network
// connections on one loop, and answers them from the user database and the mailbox store.
//
// A session reads the user's INBOX as it was at login (RFC 1939 §4: the maildrop is fixed
// for the session); mail delivered meanwhile appears at the next login. One POP3 session per
// mailbox at a time (a second gets "-ERR [IN-USE]"). DELE only marks; QUIT expunges the
// marked messages through the queue writer, in one durable batch, so a dropped connection
// deletes nothing and a QUIT that got "+OK" deleted everything it said.
//
// The glue sits beside smtp_service rather than in mta/access because it shares the login
// check (mta/login.h) and the connection limits with SMTP.
//
// Threading: Pop3Context is shared by every loop (its locks are synchronised); each loop owns
// one Pop3Service. Store reads run on the loop thread (RocksDB point reads and one prefix
// scan per login); expunges on the writer thread.
// Limits: messages are read whole into memory to send them (the queue's size limit bounds
// them); no LOGIN-DELAY or EXPIRE policy.

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "mta/access/pop3_session.h"
#include "mta/config.h"
#include "mta/login.h"
#include "mta/mailbox/store.h"
#include "mta/net/listener.h"
#include "mta/net/loop.h"
#include "mta/net/tls_context.h"
#include "policy/conn_limits.h"
#include "queue/writer.h"

namespace mta {

// Which users have a POP3 session open, across loops.
class MaildropLocks {
 public:
  bool acquire(const std::string& user);  // false if held
  void release(const std::string& user);

 private:
  std::mutex mu_;
  std::unordered_set<std::string> held_;
};

struct Pop3Context {
  const Config& config;
  LoginServices& login;
  policy::ConnectionLimiter& limiter;
  std::shared_ptr<net::TlsContext> tls;  // null: no STLS, no pop3s
  mailbox::Store& store;
  queue::Writer& writer;
  MaildropLocks locks;
  access::Pop3Config session;
};

class Pop3Service {
 public:
  Pop3Service(net::Loop& loop, Pop3Context& ctx);
  ~Pop3Service();
  // Opens every pop3/pop3s listener on this loop.
  core::Status listen();
  void close();

 private:
  net::Loop& loop_;
  Pop3Context& ctx_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
};

}  // namespace mta
