#pragma once
// The POP3 server session as a pure state machine over bytes (RFC 1939, CAPA RFC 2449,
// STLS RFC 2595, AUTH PLAIN RFC 5034).
//
// Like the SMTP session it never touches a socket, the store or a clock: the glue feeds
// bytes with receive(), writes what take_output() returns, and answers the one request the
// session waits for (waiting()):
//   kStartTls  start the TLS handshake, then on_tls_started()
//   kAuth      check auth_request(), then on_auth(): the user, or nullopt and a reason
//   kMaildrop  lock the user's INBOX for this session and list it, then on_maildrop():
//              the messages, or a refusal ("[IN-USE] ...": another session holds it)
//   kRetrieve  read message retrieve_request().index, then on_message() with its bytes
//   kUpdate    QUIT in the transaction state: expunge deleted() and release the lock, then
//              on_updated() (RFC 1939 §6: deletions happen only here, so a dropped
//              connection deletes nothing)
// While it waits, input is buffered, not processed.
//
// Messages are numbered 1..n in the order given to on_maildrop(); sizes are the exact
// octets RETR sends before dot-stuffing (stored mail has CRLF line ends). The unique-id is
// the caller's (stable across sessions, 1..70 printable characters, RFC 1939 §7).
//
// Lifetime: one object per connection, used by one thread.
// Errors carry RFC 3206 response codes where one applies ([AUTH], [IN-USE], [SYS/TEMP]).
// Limits: USER/PASS and AUTH are refused before TLS; command lines longer than
// max_command_line are refused; max_errors errors close the session; no APOP (it needs the
// clear password on the server), no SASL mechanism other than PLAIN.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::access {

struct Pop3Config {
  std::string hostname = "localhost";
  bool starttls_available = false;  // a certificate is loaded and the port is not implicit TLS
  size_t max_command_line = 255;    // octets with CRLF (RFC 2449 §4)
  int max_errors = 10;
};

enum class Pop3Wait { kNone, kStartTls, kAuth, kMaildrop, kRetrieve, kUpdate };

struct Pop3Message {
  uint64_t size = 0;
  std::string unique_id;
};

struct Pop3AuthRequest {
  std::string login;
  std::string password;
};

struct Pop3RetrieveRequest {
  size_t index = 0;                  // 0-based position in the maildrop
  std::optional<uint64_t> top_lines; // TOP: body lines wanted; nullopt: RETR, all of it
};

class Pop3Session {
 public:
  Pop3Session(const Pop3Config& config, bool tls_active);
  Pop3Session(const Pop3Session&) = delete;
  Pop3Session& operator=(const Pop3Session&) = delete;

  void greet();
  void receive(std::string_view bytes);
  std::string take_output();
  bool closing() const { return closing_; }

  Pop3Wait waiting() const { return wait_; }
  const Pop3AuthRequest& auth_request() const { return auth_; }
  const Pop3RetrieveRequest& retrieve_request() const { return retrieve_; }
  // Indexes (0-based) marked with DELE, for kUpdate.
  std::vector<size_t> deleted() const;
  const std::string& user() const { return user_; }

  void on_tls_started();
  void on_auth(std::optional<std::string> user, std::string_view refusal);
  void on_maildrop(std::optional<std::vector<Pop3Message>> messages, std::string_view refusal);
  // `message` is the stored bytes (CRLF); nullopt when it could not be read.
  void on_message(std::optional<std::string_view> message);
  void on_updated(bool ok);
  // Idle or total time exceeded: a last line and close (RFC 1939 §3 autologout).
  void on_timeout();

 private:
  enum class State { kAuthorization, kTransaction, kClosed };

  using Handler = void (Pop3Session::*)(std::string_view args);
  struct Command {
    std::string_view verb;
    Handler handler;
    bool in_authorization;
    bool in_transaction;
  };
  static const Command kCommands[];

  void process();
  void dispatch(std::string_view line);
  void ok(std::string_view text);
  void err(std::string_view text);
  void close_with(std::string_view line);
  // The message argument of LIST/UIDL/RETR/DELE/TOP: 1-based, not deleted; or an error sent.
  std::optional<size_t> message_arg(std::string_view arg);
  void sasl_plain(std::string_view b64);

  void cmd_capa(std::string_view args);
  void cmd_stls(std::string_view args);
  void cmd_user(std::string_view args);
  void cmd_pass(std::string_view args);
  void cmd_auth(std::string_view args);
  void cmd_stat(std::string_view args);
  void cmd_list(std::string_view args);
  void cmd_uidl(std::string_view args);
  void cmd_retr(std::string_view args);
  void cmd_top(std::string_view args);
  void cmd_dele(std::string_view args);
  void cmd_rset(std::string_view args);
  void cmd_noop(std::string_view args);
  void cmd_quit(std::string_view args);

  const Pop3Config& cfg_;
  State state_ = State::kAuthorization;
  Pop3Wait wait_ = Pop3Wait::kNone;
  bool tls_;
  bool closing_ = false;
  bool awaiting_sasl_ = false;
  bool skipping_long_line_ = false;  // "AUTH PLAIN" without an initial response: next line is it
  int errors_ = 0;
  std::string in_;
  std::string out_;
  std::string pending_user_;  // from USER, for PASS
  std::string user_;
  Pop3AuthRequest auth_;
  Pop3RetrieveRequest retrieve_;
  std::vector<Pop3Message> messages_;
  std::vector<bool> deleted_;
};

}  // namespace mta::access
