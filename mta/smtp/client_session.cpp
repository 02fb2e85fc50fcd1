#include "mta/smtp/client_session.h"

#include "mta/smtp/params.h"

#include <cassert>
#include <charconv>
#include <iterator>

#include "core/base64.h"

namespace mta::smtp {
namespace {

bool is_2xx(const core::Reply& r) {
  return r.code / 100 == 2;
}

std::string to_upper_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

// Every outcome carries an enhanced code; a server without ENHANCEDSTATUSCODES gets the
// generic one of its reply class (RFC 3463 §3.1: X.0.0).
core::Reply completed(core::Reply r) {
  if (r.enhanced.empty()) r.enhanced = std::to_string(r.code / 100) + ".0.0";
  return r;
}

// RFC 5321 §4.1.1.1: the first line is the server's name, each further line one keyword with
// its parameters.
Extensions parse_extensions(std::string_view text) {
  Extensions e;
  size_t nl = text.find('\n');
  while (nl != std::string_view::npos) {
    text.remove_prefix(nl + 1);
    nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    const size_t sp = line.find(' ');
    std::string_view keyword = line.substr(0, sp);
    std::string_view params = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    std::string mechanisms;
    if (keyword.size() > 5 && core::iequals(keyword.substr(0, 5), "AUTH=")) {
      // The pre-RFC 4954 form "AUTH=LOGIN PLAIN" some servers still send.
      mechanisms = std::string(keyword.substr(5)) + " " + std::string(params);
      keyword = "AUTH";
      params = mechanisms;
    }
    if (core::iequals(keyword, "PIPELINING")) {
      e.pipelining = true;
    } else if (core::iequals(keyword, "8BITMIME")) {
      e.eight_bit_mime = true;
    } else if (core::iequals(keyword, "SMTPUTF8")) {
      e.smtputf8 = true;
    } else if (core::iequals(keyword, "DSN")) {
      e.dsn = true;
    } else if (core::iequals(keyword, "STARTTLS")) {
      e.starttls = true;
    } else if (core::iequals(keyword, "ENHANCEDSTATUSCODES")) {
      e.enhanced_status_codes = true;
    } else if (core::iequals(keyword, "CHUNKING")) {
      e.chunking = true;
    } else if (core::iequals(keyword, "SIZE")) {
      // RFC 1870 §4: no parameter (or 0) means no fixed limit; so does one we cannot read.
      uint64_t limit = 0;
      const auto [end, ec] = std::from_chars(params.data(), params.data() + params.size(), limit);
      e.size = (ec == std::errc() && end == params.data() + params.size()) ? limit : 0;
    } else if (core::iequals(keyword, "AUTH")) {
      while (!params.empty()) {
        const size_t s = params.find(' ');
        if (s != 0) e.auth.push_back(to_upper_ascii(params.substr(0, s)));
        params.remove_prefix(s == std::string_view::npos ? params.size() : s + 1);
      }
    }
  }
  return e;
}

std::string first_line(const core::Reply& r) {
  std::string s = std::to_string(r.code) + " " + r.enhanced;
  if (!r.enhanced.empty()) s += ' ';
  s += std::string_view(r.text).substr(0, r.text.find('\n'));
  return s.substr(0, 120);
}

}  // namespace

const char* stage_name(Stage stage) {
  static constexpr const char* kNames[] = {
      "greeting",    "EHLO",      "HELO",    "STARTTLS", "TLS handshake",
      "AUTH",        "MAIL FROM", "RCPT TO", "DATA",     "message content",
      "end of DATA", "RSET",      "QUIT",
  };
  static_assert(std::size(kNames) == static_cast<size_t>(Stage::kQuit) + 1);
  return kNames[static_cast<size_t>(stage)];
}

// Per state: what the glue is asked for, and the stage a failure in that state is blamed on
// (kTransaction: the command whose reply is awaited).
const ClientSession::StateInfo ClientSession::kStates[] = {
    {Want::kNothing, Stage::kGreeting},       // kConnecting
    {Want::kNothing, Stage::kGreeting},       // kGreeting
    {Want::kNothing, Stage::kEhlo},           // kEhlo
    {Want::kNothing, Stage::kHelo},           // kHelo
    {Want::kNothing, Stage::kStartTls},       // kStartTls
    {Want::kStartTls, Stage::kTlsHandshake},  // kHandshake
    {Want::kNothing, Stage::kAuth},           // kAuth
    {Want::kNextMessage, Stage::kQuit},       // kReady
    {Want::kNothing, Stage::kMail},           // kTransaction
    {Want::kBody, Stage::kBody},              // kBody
    {Want::kNothing, Stage::kEndOfData},      // kEndOfData
    {Want::kNothing, Stage::kRset},           // kRset
    {Want::kClose, Stage::kQuit},             // kClosed
};

ClientSession::ClientSession(ClientConfig config)
    : cfg_(std::move(config)), parser_(cfg_.max_reply_line, cfg_.max_reply_lines) {
  static_assert(std::size(kStates) == static_cast<size_t>(State::kClosed) + 1);
}

Want ClientSession::wants() const {
  return kStates[static_cast<size_t>(state_)].want;
}

void ClientSession::on_connected() {
  assert(state_ == State::kConnecting);
  state_ = State::kGreeting;
}

void ClientSession::receive(std::string_view bytes) {
  assert(state_ != State::kConnecting);
  if (state_ == State::kClosed) return;
  parser_.feed(bytes);
  while (state_ != State::kClosed && state_ != State::kHandshake) {
    auto next = parser_.next();
    if (!next) return protocol_error(next.status().message());
    if (!next->has_value()) return;
    on_reply(std::move(**next));
  }
  // RFC 3207 §4.2: what came in clear after the 220 must not pass as if it came over TLS.
  if (state_ == State::kHandshake) parser_.clear();
}

void ClientSession::send_ehlo() {
  send("EHLO " + cfg_.helo_name + "\r\n");
  state_ = State::kEhlo;
}

void ClientSession::on_reply(core::Reply r) {
  // RFC 5321 §3.8: 421 may answer any command; the server is closing the channel.
  if (r.code == 421) {
    if (state_ == State::kReady) {  // an idle connection timed out; nothing was lost
      state_ = State::kClosed;
      return;
    }
    return fail_connection({completed(r), true, true, current_stage()}, false);
  }
  switch (state_) {
    case State::kGreeting:
      if (r.code == 220) return send_ehlo();
      return fail_server(r, Stage::kGreeting);
    case State::kEhlo:
      if (is_2xx(r)) {
        ext_ = parse_extensions(r.text);
        return negotiate();
      }
      if (r.permanent()) {  // RFC 5321 §3.2: a server that does not know EHLO; try HELO
        send("HELO " + cfg_.helo_name + "\r\n");
        state_ = State::kHelo;
        return;
      }
      return fail_server(r, Stage::kEhlo);
    case State::kHelo:
      if (!is_2xx(r)) return fail_server(r, Stage::kHelo);
      ext_ = Extensions{};
      return negotiate();
    case State::kStartTls:
      if (r.code == 220) {
        state_ = State::kHandshake;
        return;
      }
      // Refused: kMay goes on in clear, as the session is still the one before STARTTLS.
      if (cfg_.tls == TlsPolicy::kMay && !r.positive()) return authenticate();
      return fail_server(r, Stage::kStartTls);
    case State::kAuth:
      if (r.code != 235) return fail_server(r, Stage::kAuth);
      state_ = State::kReady;
      return;
    case State::kTransaction:
      return transaction_reply(std::move(r));
    case State::kEndOfData:
      return end_of_data_reply(std::move(r));
    case State::kRset:
      // A server that cannot reset is not trusted with another transaction.
      if (!is_2xx(r)) return fail_server(r, Stage::kRset);
      state_ = State::kReady;
      return;
    default:
      return protocol_error("unexpected reply \"" + first_line(r) + "\"");
  }
}

void ClientSession::negotiate() {
  if (!tls_ && cfg_.tls != TlsPolicy::kNone) {
    const bool required = cfg_.tls != TlsPolicy::kMay;
    if (required && !cfg_.tls_possible)
      return fail_local({451, "4.7.5", "TLS required but this client cannot start TLS"},
                        Stage::kStartTls, true);
    if (required && !ext_.starttls)
      return fail_local({451, "4.7.4", "TLS required but not offered by server"}, Stage::kStartTls,
                        true);
    if (ext_.starttls && cfg_.tls_possible) {
      send("STARTTLS\r\n");
      state_ = State::kStartTls;
      return;
    }
  }
  authenticate();
}

void ClientSession::authenticate() {
  if (!cfg_.auth) {
    state_ = State::kReady;
    return;
  }
  // Without AUTH a relay that wants it would refuse MAIL with 5xx and the mail would bounce;
  // failing the host keeps it queued instead.
  if (!tls_ && !cfg_.auth_without_tls)
    return fail_local(
        {451, "4.7.0", "AUTH configured but TLS is not active; credentials are not sent in clear"},
        Stage::kAuth, true);
  bool plain = false;
  for (const std::string& m : ext_.auth) plain = plain || m == "PLAIN";
  if (!plain)
    return fail_local({451, "4.7.0", "AUTH PLAIN configured but not offered by server"},
                      Stage::kAuth, true);
  // RFC 4616: authzid NUL authcid NUL passwd, sent as the initial response (RFC 4954 §4).
  std::string token;
  token += '\0';
  token += cfg_.auth->first;
  token += '\0';
  token += cfg_.auth->second;
  send("AUTH PLAIN " + core::encode_base64(token) + "\r\n");
  state_ = State::kAuth;
}

bool ClientSession::needs_smtputf8() const {
  if (msg_.needs_smtputf8 || msg_.sender.needs_utf8()) return true;
  for (const core::Recipient& r : msg_.recipients)
    if (r.address.needs_utf8()) return true;
  return false;
}

std::string ClientSession::mail_command() const {
  std::string cmd = "MAIL FROM:<" + msg_.sender.str() + ">";
  if (ext_.size && msg_.size > 0) cmd += " SIZE=" + std::to_string(msg_.size);
  if (msg_.eight_bit && ext_.eight_bit_mime) cmd += " BODY=8BITMIME";
  if (needs_smtputf8()) cmd += " SMTPUTF8";
  if (ext_.dsn) {  // RFC 3461 §4: only to a server that offered DSN
    if (msg_.ret == core::DsnRet::kFull) cmd += " RET=FULL";
    if (msg_.ret == core::DsnRet::kHeaders) cmd += " RET=HDRS";
    if (!msg_.envid.empty()) cmd += " ENVID=" + encode_xtext(msg_.envid);
  }
  return cmd + "\r\n";
}

void ClientSession::send_rcpt(size_t i) {
  const core::Recipient& r = msg_.recipients[i];
  std::string cmd = "RCPT TO:<" + r.address.str() + ">";
  if (ext_.dsn) {
    if (r.notify) cmd += " NOTIFY=" + format_notify(r.notify);
    // ORCPT=addr-type;xtext(address), RFC 3461 §4.2; the type itself is an atom.
    const size_t semi = r.orcpt.find(';');
    if (semi != std::string::npos)
      cmd += " ORCPT=" + r.orcpt.substr(0, semi + 1) + encode_xtext(r.orcpt.substr(semi + 1));
  }
  send(cmd + "\r\n");
  pending_.push_back({Stage::kRcpt, i});
}

void ClientSession::send_message(ClientMessage message) {
  assert(state_ == State::kReady);
  if (state_ != State::kReady) return;
  msg_ = std::move(message);
  in_flight_ = true;
  outcome_.assign(msg_.recipients.size(), std::nullopt);
  pending_.clear();
  mail_failed_ = false;
  nothing_to_send_ = false;
  accepted_ = 0;
  if (msg_.recipients.empty()) return finish_message();
  if (needs_smtputf8() && !ext_.smtputf8)
    return refuse_message({554, "5.6.7",
                           "Message needs SMTPUTF8 (non-ASCII addresses or headers) but the "
                           "receiving server does not support SMTPUTF8"});
  if (ext_.size && *ext_.size > 0 && msg_.size > *ext_.size)
    return refuse_message({552, "5.3.4",
                           "Message size " + std::to_string(msg_.size) +
                               " exceeds the receiving server's limit of " +
                               std::to_string(*ext_.size) + " octets"});
  send(mail_command());
  pending_.push_back({Stage::kMail});
  pipelined_ = ext_.pipelining;
  if (pipelined_) {  // RFC 2920 §3.1: MAIL, every RCPT and DATA in one group
    for (size_t i = 0; i < msg_.recipients.size(); ++i) send_rcpt(i);
    send("DATA\r\n");
    pending_.push_back({Stage::kData});
  }
  state_ = State::kTransaction;
}

void ClientSession::transaction_reply(core::Reply r) {
  const Pending p = pending_.front();
  pending_.pop_front();
  if (p.stage == Stage::kData) {
    if (r.code == 354) {
      if (mail_failed_ || accepted_ == 0) {
        // RFC 2920 §3.1: DATA was accepted with no recipient; end it with an empty message.
        send(".\r\n");
        nothing_to_send_ = true;
        state_ = State::kEndOfData;
      } else {
        line_start_ = true;
        pending_cr_ = false;
        state_ = State::kBody;
      }
      return;
    }
    if (!r.transient() && !r.permanent())
      return protocol_error("unexpected reply to DATA \"" + first_line(r) + "\"");
    fail_unfinished(r, Stage::kData, true);
    return fail_transaction();
  }
  if (r.code / 100 == 3)
    return protocol_error("unexpected reply to " + std::string(stage_name(p.stage)) + " \"" +
                          first_line(r) + "\"");
  if (p.stage == Stage::kMail) {
    if (!is_2xx(r)) {
      // Replies to pipelined RCPTs and DATA after a refused MAIL say nothing more.
      mail_failed_ = true;
      fail_unfinished(r, Stage::kMail, true);
      if (!pipelined_) fail_transaction();
    } else if (!pipelined_) {
      send_rcpt(0);
    }
    return;
  }
  if (!mail_failed_) {
    if (is_2xx(r)) {
      ++accepted_;
    } else {
      set_outcome(p.rcpt, r, Stage::kRcpt, true);
    }
  }
  if (pipelined_) return;
  if (p.rcpt + 1 < msg_.recipients.size()) return send_rcpt(p.rcpt + 1);
  if (accepted_ == 0) return fail_transaction();
  send("DATA\r\n");
  pending_.push_back({Stage::kData});
}

void ClientSession::end_of_data_reply(core::Reply r) {
  if (nothing_to_send_) return fail_transaction();
  if (r.code / 100 == 3)
    return protocol_error("unexpected reply to end of DATA \"" + first_line(r) + "\"");
  fail_unfinished(r, Stage::kEndOfData, true);  // the unfinished are the accepted
  if (!is_2xx(r)) return fail_transaction();
  finish_message();
  state_ = State::kReady;
}

void ClientSession::body_chunk(std::string_view bytes) {
  assert(state_ == State::kBody);
  if (state_ == State::kBody) stuff(bytes);
}

void ClientSession::body_end() {
  assert(state_ == State::kBody);
  if (state_ != State::kBody) return;
  if (pending_cr_) {
    out_ += "\r\n";
    line_start_ = true;
    pending_cr_ = false;
  }
  if (!line_start_) out_ += "\r\n";
  out_ += ".\r\n";
  state_ = State::kEndOfData;
}

// RFC 5321 §4.5.2: a "." at the start of a line is doubled. Lines end in CRLF on the wire:
// a bare LF becomes CRLF, so that no receiver can find a line end (or a terminator) where
// this one did not put one (§2.3.8). A bare CR is passed through.
void ClientSession::stuff(std::string_view in) {
  size_t i = 0;
  while (i < in.size()) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (in[i] == '\n') {
        out_ += "\r\n";
        line_start_ = true;
        ++i;
        continue;
      }
      out_ += '\r';
      line_start_ = false;
    }
    if (line_start_ && in[i] == '.') out_ += '.';
    line_start_ = false;
    const size_t end = in.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      out_.append(in.substr(i));
      return;
    }
    out_.append(in.substr(i, end - i));
    if (in[end] == '\n') {
      out_ += "\r\n";
      line_start_ = true;
    } else {
      pending_cr_ = true;
    }
    i = end + 1;
  }
}

void ClientSession::quit() {
  // RFC 2920 §3.1: QUIT may end a group, so it need not wait for a pending RSET or EHLO reply.
  const bool can_quit = !in_flight_ && state_ != State::kHandshake && state_ != State::kClosed;
  assert(can_quit);
  if (!can_quit) return;
  send("QUIT\r\n");
  state_ = State::kClosed;
}

void ClientSession::on_tls_started(bool ok) {
  assert(state_ == State::kHandshake);
  if (state_ != State::kHandshake) return;
  if (!ok) return fail_local({451, "4.7.5", "TLS handshake failed"}, Stage::kTlsHandshake, false);
  // RFC 3207 §4.2: forget what the server said in clear; ask again.
  tls_ = true;
  ext_ = Extensions{};
  parser_.clear();
  send_ehlo();
}

void ClientSession::on_closed() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kReady) {  // an idle connection ended; nothing was lost
    state_ = State::kClosed;
    return;
  }
  lost("Lost connection with the server during ");
}

void ClientSession::on_timeout() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kReady) return quit();
  lost("Timed out waiting for the server during ");
}

void ClientSession::lost(std::string_view what) {
  const Stage stage = current_stage();
  fail_connection({{421, "4.4.2", std::string(what) + stage_name(stage)}, true, false, stage},
                  false);
}

void ClientSession::set_outcome(size_t i, const core::Reply& reply, Stage stage, bool from_server) {
  outcome_[i] = RecipientResult{i, completed(reply), from_server, stage};
}

void ClientSession::fail_unfinished(const core::Reply& reply, Stage stage, bool from_server) {
  for (size_t i = 0; i < outcome_.size(); ++i)
    if (!outcome_[i]) set_outcome(i, reply, stage, from_server);
}

void ClientSession::finish_message() {
  MessageResult result;
  for (auto& o : outcome_) result.recipients.push_back(std::move(*o));
  results_.push_back(std::move(result));
  outcome_.clear();
  pending_.clear();
  in_flight_ = false;
}

void ClientSession::fail_transaction() {
  finish_message();
  send("RSET\r\n");
  state_ = State::kRset;
}

void ClientSession::refuse_message(const core::Reply& reply) {
  fail_unfinished(reply, Stage::kMail, false);
  finish_message();
}

Stage ClientSession::current_stage() const {
  if (state_ == State::kTransaction && !pending_.empty()) return pending_.front().stage;
  return kStates[static_cast<size_t>(state_)].stage;
}

void ClientSession::fail_connection(HostFailure failure, bool say_quit) {
  if (in_flight_) {
    fail_unfinished(failure.reply, failure.stage, failure.from_server);
    finish_message();
  }
  if (say_quit) send("QUIT\r\n");
  failure_ = std::move(failure);
  state_ = State::kClosed;
}

void ClientSession::fail_server(const core::Reply& reply, Stage stage) {
  // A positive reply that is not the expected one means the dialogue is out of step.
  if (reply.positive())
    return protocol_error("unexpected reply to " + std::string(stage_name(stage)) + " \"" +
                          first_line(reply) + "\"");
  const bool temporary = stage == Stage::kGreeting || !reply.permanent();
  fail_connection({completed(reply), temporary, true, stage}, true);
}

void ClientSession::fail_local(const core::Reply& reply, Stage stage, bool say_quit) {
  fail_connection({reply, !reply.permanent(), false, stage}, say_quit);
}

void ClientSession::protocol_error(const std::string& what) {
  fail_connection({{451, "4.5.0", "Protocol error: " + what}, true, false, current_stage()}, false);
}

}  // namespace mta::smtp
