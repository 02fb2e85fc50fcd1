#pragma once
// The SMTP server session as a pure state machine over bytes (RFC 5321 with PIPELINING,
// SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING, DSN, STARTTLS, AUTH).
//
// The session never touches a socket, a clock, the queue or the user database. The glue
// feeds it bytes with receive(), writes out what take_output() returns, and answers the
// one request the session may be waiting for (waiting()): start TLS, check credentials,
// judge a sender or recipient, commit a message. While it waits, input is buffered, not
// processed, so asynchronous policy sits between check and proceed (OpenSMTPD style).
// Replies to pipelined commands accumulate in the output until the session runs out of
// input or has to wait, so a pipelined group is answered with one write (RFC 2920 §3.1).
//
// Lifetime: one object per connection; not thread-safe (owned by one loop thread).
// Limits: the config's limits (command line, message size, line length, recipients,
// errors) are enforced here; time limits and connection counts belong to the glue.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.h"
#include "core/reply.h"
#include "mta/smtp/body_decoder.h"
#include "mta/smtp/params.h"

namespace mta::smtp {

struct ServerConfig {
  std::string hostname = "localhost";
  std::string listener = "relay";  // copied into the envelope: "submission", "submissions", "relay"
  bool starttls_available = false; // a certificate is loaded and the listener is not implicit TLS
  bool auth_enabled = false;       // AUTH is offered (only ever once TLS is active)
  bool auth_required = false;      // MAIL needs a successful AUTH (submission roles)
  size_t max_message_size = 50 << 20;
  size_t max_recipients = 1000;
  size_t max_command_line = 2048;  // octets without CRLF; AUTH lines may use up to 12288
  size_t max_line_length = 998;    // content lines, RFC 5322 §2.1.1
  int max_errors = 20;             // then 421 and close
  BareLfPolicy bare_lf = BareLfPolicy::kNormalize;
};

enum class Wait {
  kNone,
  kStartTls,  // start the TLS handshake now; then call on_tls_started()
  kAuth,      // check auth_request(); then on_auth()
  kMail,      // judge envelope().sender; then on_mail_checked()
  kRcpt,      // judge rcpt_request(); then on_rcpt_checked()
  kCommit,    // take_commit(), queue it durably; then on_committed()
};

struct AuthRequest {
  std::string mechanism;  // "PLAIN" or "LOGIN"
  std::string login;
  std::string password;
};

struct CommitRequest {
  core::Envelope envelope;
  std::vector<std::string> chunks;  // the message as received, CRLF lines, unstuffed
  size_t size = 0;
};

class ServerSession {
 public:
  ServerSession(const ServerConfig& config, std::string client_ip, bool tls_active);
  ServerSession(const ServerSession&) = delete;
  ServerSession& operator=(const ServerSession&) = delete;

  // Queues the 220 greeting.
  void greet();
  // Queues a 421/554 greeting refusal (limits, shutdown) and closes.
  void refuse(const core::Reply& reply);
  void receive(std::string_view bytes);
  std::string take_output();
  bool output_pending() const { return !out_.empty(); }
  // After QUIT or a 421: write the output, then close.
  bool closing() const { return closing_; }

  Wait waiting() const { return wait_; }
  const AuthRequest& auth_request() const { return auth_; }
  const core::Recipient& rcpt_request() const { return pending_rcpt_; }
  CommitRequest take_commit();

  void on_tls_started();
  // Successful AUTH of `user`, or a refusal reply (535, 454 ...).
  void on_auth(std::optional<std::string> user, const core::Reply& refusal);
  void on_mail_checked(std::optional<core::Reply> refusal);
  void on_rcpt_checked(std::optional<core::Reply> refusal);
  // The final reply to DATA / BDAT LAST: "250 2.0.0 Ok: queued as ID" or an error.
  void on_committed(const core::Reply& reply);
  // The glue's timers: idle or total time exceeded.
  void on_timeout();

  const core::Envelope& envelope() const { return env_; }
  const std::string& helo() const { return helo_; }
  const std::string& auth_user() const { return auth_user_; }
  bool tls_active() const { return tls_; }
  // Bytes of input that were pipelined behind STARTTLS and thrown away (for the log).
  size_t discarded_after_starttls() const { return discarded_; }

 private:
  // States and their transitions:
  //   kFresh   --EHLO/HELO--> kReady --MAIL--> kMail --RCPT--> kRcpt --DATA--> kData
  //   kRcpt    --BDAT--> kBdat (reads N octets) --> kRcpt-like kBdatMore or, if LAST, commit
  //   kData/kBdat LAST --commit--> kReady;  any --RSET--> kReady (kFresh before EHLO)
  //   kReady   --AUTH--> kAuthPlain/kAuthLoginUser/kAuthLoginPass --> kReady
  //   any      --STARTTLS/on_tls_started--> kFresh (RFC 3207 §4.2: forget everything)
  //   any      --QUIT/421--> kClosed
  enum class State {
    kFresh, kReady, kMail, kRcpt, kData, kBdat, kBdatMore,
    kAuthPlain, kAuthLoginUser, kAuthLoginPass, kClosed,
  };

  using Handler = void (ServerSession::*)(std::string_view args);
  struct Command {
    std::string_view verb;
    Handler handler;
    unsigned flags;
  };
  static const Command kCommands[];

  void process();
  bool process_line(std::string_view line);
  void dispatch(std::string_view line);
  void reply(int code, std::string_view enhanced, std::string_view text);
  void reply(const core::Reply& r);
  void error(int code, std::string_view enhanced, std::string_view text);
  void error(const core::Reply& r);
  void reset_transaction();
  void start_body(BodyDecoder::Mode mode);
  void finish_body();
  void sasl_line(std::string_view line);
  void finish_plain(std::string_view b64);
  void feed_body();

  void cmd_ehlo(std::string_view args);
  void cmd_helo(std::string_view args);
  void cmd_mail(std::string_view args);
  void cmd_rcpt(std::string_view args);
  void cmd_data(std::string_view args);
  void cmd_bdat(std::string_view args);
  void cmd_rset(std::string_view args);
  void cmd_noop(std::string_view args);
  void cmd_quit(std::string_view args);
  void cmd_help(std::string_view args);
  void cmd_vrfy(std::string_view args);
  void cmd_expn(std::string_view args);
  void cmd_starttls(std::string_view args);
  void cmd_auth(std::string_view args);

  const ServerConfig& cfg_;
  std::string client_ip_;
  State state_ = State::kFresh;
  Wait wait_ = Wait::kNone;
  bool tls_;
  bool esmtp_ = false;
  bool closing_ = false;
  bool skipping_long_line_ = false;
  int errors_ = 0;
  size_t discarded_ = 0;
  std::string helo_;
  std::string auth_user_;
  std::string in_;
  std::string out_;
  core::Envelope env_;
  core::Recipient pending_rcpt_;
  AuthRequest auth_;
  std::unique_ptr<BodyDecoder> body_;
  uint64_t bdat_left_ = 0;
  uint64_t bdat_octets_ = 0;  // octets of all chunks so far, as the client counts them
  bool bdat_last_ = false;
  bool bdat_used_ = false;
  std::optional<core::Reply> bdat_error_;  // a failed BDAT chunk poisons the rest (RFC 3030 §2)
};

}  // namespace mta::smtp
