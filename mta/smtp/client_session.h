#pragma once
// The SMTP client session for delivery as a pure state machine over bytes (RFC 5321 with
// PIPELINING RFC 2920, SIZE RFC 1870, 8BITMIME RFC 6152, SMTPUTF8 RFC 6531, DSN RFC 3461,
// STARTTLS RFC 3207, AUTH PLAIN RFC 4954, enhanced status codes RFC 2034/3463).
//
// The session never touches a socket, a clock, DNS or the queue. The glue connects, calls
// on_connected(), feeds what the server sends to receive() (split anywhere), writes out what
// take_output() returns, and then looks at wants():
//   kNothing      waiting for the server; read more.
//   kStartTls     do the client TLS handshake (and, for TlsPolicy::kVerify, check the
//                 certificate), then on_tls_started(ok).
//   kNextMessage  the connection is ready for a transaction: send_message() or quit().
//   kBody         feed the message bytes with body_chunk() (any split) then body_end(); the
//                 session dot-stuffs them and ends them with CRLF.CRLF.
//   kClose        write any output still pending, then close the connection.
// Several messages may go over one connection, one after the other; after a failed
// transaction the session says RSET and waits for its reply before kNextMessage comes back.
// Body lines go out with CRLF (a bare LF becomes CRLF), so no receiver finds a line end or
// a terminator the stored bytes did not have.
//
// Results are values, reported, not judged: take_results() gives one MessageResult per
// send_message(), in order, with one outcome per recipient (the server's reply, or one the
// session made itself, e.g. when the server lacks SMTPUTF8). host_failure() tells why a
// connection ended early: the greeting, EHLO/HELO, STARTTLS or AUTH was refused, TLS was
// required but not possible, a reply was malformed or too long, a 421 came, the server closed
// the connection or did not answer. Recipients still unfinished at that moment get the same
// reply as their outcome. An idle connection that the server ends (EOF or 421) closes
// without a host failure. Deciding between next MX, deferral and bounce is the caller's job.
//
// Lifetime: one object per connection; not thread-safe (owned by one loop thread).
// Limits: no BDAT (CHUNKING is recognised, never used); no conversion of 8-bit content for
// servers without 8BITMIME (it is sent as it is, as most MTAs do); AUTH PLAIN only; a utf-8
// ORCPT is passed as xtext, not RFC 6533 utf-8-addr-xtext. Reply lines and reply line counts
// are bounded by the config; body bytes are passed through as the glue supplies them, so
// the glue owns back-pressure on large bodies.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/envelope.h"
#include "core/reply.h"
#include "mta/smtp/reply_parser.h"

namespace mta::smtp {

enum class TlsPolicy {
  kNone,  // never STARTTLS
  // STARTTLS when offered; plaintext when not offered or refused by the server. A failed
  // handshake is a host failure: whether to retry in clear is the glue's decision.
  kMay,
  kEncrypt,  // STARTTLS required; any certificate
  kVerify,   // STARTTLS required; the glue verifies the certificate during the handshake
};

struct ClientConfig {
  std::string helo_name = "localhost";
  TlsPolicy tls = TlsPolicy::kMay;
  bool tls_possible = false;  // the glue can do a client TLS handshake at all
  // AUTH PLAIN with (login, password); only over TLS unless auth_without_tls.
  std::optional<std::pair<std::string, std::string>> auth;
  bool auth_without_tls = false;
  size_t max_reply_line = 4096;  // octets without the line end
  size_t max_reply_lines = 100;
};

struct ClientMessage {
  core::Address sender;  // empty: null reverse-path
  std::vector<core::Recipient> recipients;
  uint64_t size = 0;            // octets as stored, for SIZE=
  bool eight_bit = false;       // BODY=8BITMIME
  bool needs_smtputf8 = false;  // also assumed when an address is not ASCII
  core::DsnRet ret = core::DsnRet::kUnset;
  std::string envid;  // xtext decoded
};

// Where in the dialogue something happened, for logs and DSN texts ("in reply to RCPT TO").
enum class Stage {
  kGreeting,
  kEhlo,
  kHelo,
  kStartTls,
  kTlsHandshake,
  kAuth,
  kMail,
  kRcpt,
  kData,
  kBody,
  kEndOfData,
  kRset,
  kQuit,
};
const char* stage_name(Stage stage);

struct RecipientResult {
  size_t index = 0;         // into ClientMessage::recipients
  core::Reply reply;        // enhanced is never empty: parsed, or derived as c.0.0 from the code
  bool from_server = true;  // false when the session made the reply itself
  Stage stage = Stage::kRcpt;
};

struct MessageResult {
  std::vector<RecipientResult> recipients;  // one per recipient, in index order
};

struct HostFailure {
  core::Reply reply;  // enhanced never empty, as above
  // 4xx-like: another host or a later attempt may succeed. A refused greeting counts as
  // temporary whatever its code, so that the next MX is tried (RFC 5321 §3.1: a 554 greeting
  // speaks for this host only); other server refusals follow their code.
  bool temporary = true;
  bool from_server = true;
  Stage stage = Stage::kGreeting;
};

// What the server offered in its EHLO reply (all false after HELO).
struct Extensions {
  bool pipelining = false;
  bool eight_bit_mime = false;
  bool smtputf8 = false;
  bool dsn = false;
  bool starttls = false;
  bool enhanced_status_codes = false;
  bool chunking = false;
  std::optional<uint64_t> size;   // SIZE offered; 0 means no fixed limit
  std::vector<std::string> auth;  // SASL mechanisms, upper case
};

enum class Want { kNothing, kStartTls, kNextMessage, kBody, kClose };

class ClientSession {
 public:
  explicit ClientSession(ClientConfig config);
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // The TCP connection is up; the session waits for the greeting.
  void on_connected();
  void receive(std::string_view bytes);
  // Only while wants() is kStartTls. false: the handshake (or certificate check) failed.
  void on_tls_started(bool ok);
  // The server closed the connection (EOF or reset).
  void on_closed();
  // The server did not answer in time (the glue's timer). In kNextMessage: the same as quit().
  void on_timeout();

  // Only while wants() is kNextMessage. The message's result may be ready at once (a local
  // refusal sends nothing).
  void send_message(ClientMessage message);
  // Only while wants() is kBody.
  void body_chunk(std::string_view bytes);
  void body_end();
  // QUIT, then kClose. Whenever no message is in flight (kNextMessage, or while the session
  // waits for its RSET or EHLO reply), but not during the TLS handshake.
  void quit();

  Want wants() const;
  std::string take_output() { return std::move(out_); }
  bool output_pending() const { return !out_.empty(); }
  std::vector<MessageResult> take_results() { return std::move(results_); }
  const std::optional<HostFailure>& host_failure() const { return failure_; }
  const Extensions& extensions() const { return ext_; }
  bool tls_active() const { return tls_; }

 private:
  // States and their transitions (forward only, except back to kReady after a transaction):
  //   kConnecting --on_connected--> kGreeting --220--> kEhlo --2xx--> negotiate
  //   kEhlo --5xx--> kHelo --2xx--> negotiate
  //   negotiate: [kStartTls --220--> kHandshake --ok--> kEhlo] [kAuth --235-->] kReady
  //   kReady --send_message--> kTransaction --354--> kBody --body_end--> kEndOfData
  //   kEndOfData --2xx--> kReady;  a failed transaction --> kRset --2xx--> kReady
  //   kReady --quit--> kClosed;  any --421, refusal, protocol error, EOF, timeout--> kClosed
  enum class State {
    kConnecting,
    kGreeting,
    kEhlo,
    kHelo,
    kStartTls,
    kHandshake,
    kAuth,
    kReady,
    kTransaction,
    kBody,
    kEndOfData,
    kRset,
    kClosed,
  };

  struct StateInfo {
    Want want;
    Stage stage;
  };
  static const StateInfo kStates[];  // indexed by State

  // A command of the current transaction whose reply has not come yet.
  struct Pending {
    Stage stage;  // kMail, kRcpt or kData
    size_t rcpt = 0;
  };

  void send(std::string_view command) { out_ += command; }
  void send_ehlo();
  void on_reply(core::Reply reply);
  void negotiate();
  void authenticate();
  void transaction_reply(core::Reply reply);
  void end_of_data_reply(core::Reply reply);
  void send_rcpt(size_t i);
  std::string mail_command() const;
  bool needs_smtputf8() const;

  void set_outcome(size_t i, const core::Reply& reply, Stage stage, bool from_server);
  void fail_unfinished(const core::Reply& reply, Stage stage, bool from_server);
  void finish_message();
  void fail_transaction();
  void refuse_message(const core::Reply& reply);

  Stage current_stage() const;
  // Ends the connection: records the failure, fails the unfinished recipients of the message
  // in flight, optionally says QUIT (when the stream is still in a sane state).
  void fail_connection(HostFailure failure, bool say_quit);
  void fail_server(const core::Reply& reply, Stage stage);
  void fail_local(const core::Reply& reply, Stage stage, bool say_quit);
  void protocol_error(const std::string& what);
  void lost(std::string_view what);

  void stuff(std::string_view bytes);

  const ClientConfig cfg_;
  ReplyParser parser_;
  State state_ = State::kConnecting;
  bool tls_ = false;
  Extensions ext_;
  std::string out_;
  std::vector<MessageResult> results_;
  std::optional<HostFailure> failure_;

  // The transaction in flight.
  bool in_flight_ = false;
  ClientMessage msg_;
  std::vector<std::optional<RecipientResult>> outcome_;
  std::deque<Pending> pending_;
  bool pipelined_ = false;
  bool mail_failed_ = false;
  bool nothing_to_send_ = false;  // 354 came though no recipient was accepted: send only "."
  size_t accepted_ = 0;

  // Dot-stuffing state across body_chunk() calls.
  bool line_start_ = true;
  bool pending_cr_ = false;
};

}  // namespace mta::smtp
