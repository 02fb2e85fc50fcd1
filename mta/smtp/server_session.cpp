#include "mta/smtp/server_session.h"

#include <charconv>

#include "core/base64.h"
#include "core/sasl.h"

namespace mta::smtp {
namespace {

// Command flags, read by dispatch() before a handler runs (validation apart from effect).
enum Flag : unsigned {
  kNeedsHelo = 1,          // 503 before EHLO/HELO
  kNoArgs = 2,             // 501 when arguments are given
  kNoTransaction = 4,      // 503 inside a mail transaction (RFC 4954 §4, RFC 3207)
  kAllowedInBdat = 8,      // may follow a BDAT that was not LAST (RFC 3030 §2)
};

constexpr size_t kMaxSaslLine = 12288;  // RFC 4954 §4

}  // namespace

// The command table, read top to bottom.
const ServerSession::Command ServerSession::kCommands[] = {
    {"EHLO", &ServerSession::cmd_ehlo, 0},
    {"HELO", &ServerSession::cmd_helo, 0},
    {"MAIL", &ServerSession::cmd_mail, kNeedsHelo},
    {"RCPT", &ServerSession::cmd_rcpt, kNeedsHelo},
    {"DATA", &ServerSession::cmd_data, kNeedsHelo | kNoArgs},
    {"BDAT", &ServerSession::cmd_bdat, kNeedsHelo | kAllowedInBdat},
    {"RSET", &ServerSession::cmd_rset, kNoArgs | kAllowedInBdat},
    {"NOOP", &ServerSession::cmd_noop, kAllowedInBdat},
    {"QUIT", &ServerSession::cmd_quit, kNoArgs | kAllowedInBdat},
    {"HELP", &ServerSession::cmd_help, 0},
    {"VRFY", &ServerSession::cmd_vrfy, 0},
    {"EXPN", &ServerSession::cmd_expn, 0},
    {"STARTTLS", &ServerSession::cmd_starttls, kNoArgs | kNoTransaction},
    {"AUTH", &ServerSession::cmd_auth, kNeedsHelo | kNoTransaction},
};

ServerSession::ServerSession(const ServerConfig& config, std::string client_ip, bool tls_active)
    : cfg_(config), client_ip_(std::move(client_ip)), tls_(tls_active) {}

void ServerSession::greet() { reply(220, "", cfg_.hostname + " ESMTP Porter"); }

void ServerSession::refuse(const core::Reply& r) {
  reply(r);
  closing_ = true;
  state_ = State::kClosed;
}

std::string ServerSession::take_output() { return std::move(out_); }

void ServerSession::reply(int code, std::string_view enhanced, std::string_view text) {
  out_ += core::Reply{code, std::string(enhanced), std::string(text)}.to_wire();
}

void ServerSession::reply(const core::Reply& r) { out_ += r.to_wire(); }

void ServerSession::error(int code, std::string_view enhanced, std::string_view text) {
  error(core::Reply{code, std::string(enhanced), std::string(text)});
}

void ServerSession::error(const core::Reply& r) {
  reply(r);
  if (++errors_ >= cfg_.max_errors && !closing_) {
    reply(421, "4.7.0", cfg_.hostname + " Error: too many errors");
    closing_ = true;
    state_ = State::kClosed;
  }
}

void ServerSession::reset_transaction() {
  env_ = core::Envelope{};
  body_.reset();
  bdat_left_ = 0;
  bdat_octets_ = 0;
  bdat_last_ = false;
  bdat_used_ = false;
  bdat_error_.reset();
  state_ = helo_.empty() ? State::kFresh : State::kReady;
}

void ServerSession::receive(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  in_.append(bytes);
  process();
}

void ServerSession::process() {
  size_t pos = 0;
  while (!closing_ && wait_ == Wait::kNone && pos < in_.size()) {
    if (state_ == State::kData || state_ == State::kBdat) {
      std::string_view avail(in_.data() + pos, in_.size() - pos);
      if (state_ == State::kBdat) avail = avail.substr(0, bdat_left_);
      const size_t used = body_ ? body_->feed(avail) : avail.size();
      pos += used;
      if (state_ == State::kBdat) bdat_left_ -= used;
      feed_body();
      continue;
    }
    const size_t lf = in_.find('\n', pos);
    const bool sasl = state_ == State::kAuthPlain || state_ == State::kAuthLoginUser ||
                      state_ == State::kAuthLoginPass;
    const bool auth_cmd = in_.size() - pos >= 5 && core::iequals(std::string_view(in_).substr(pos, 5), "AUTH ");
    const size_t limit = (sasl || auth_cmd) ? kMaxSaslLine + 32 : cfg_.max_command_line;
    const size_t len = (lf == std::string::npos ? in_.size() : lf) - pos;
    if (len > limit + 1) {
      if (!skipping_long_line_) error(500, "5.5.2", "Error: line too long");
      skipping_long_line_ = lf == std::string::npos;
      pos = lf == std::string::npos ? in_.size() : lf + 1;
      continue;
    }
    if (lf == std::string::npos) break;
    std::string_view line(in_.data() + pos, lf - pos);
    pos = lf + 1;
    if (skipping_long_line_) {  // the tail of a line already refused
      skipping_long_line_ = false;
      continue;
    }
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    } else if (cfg_.bare_lf == BareLfPolicy::kRefuse) {
      error(500, "5.5.2", "Error: bare LF received; commands must end with CRLF");
      continue;
    }
    if (line.find('\r') != std::string_view::npos || line.find('\0') != std::string_view::npos) {
      error(500, "5.5.2", "Error: bare CR or NUL in command line");
      continue;
    }
    if (state_ == State::kAuthPlain || state_ == State::kAuthLoginUser ||
        state_ == State::kAuthLoginPass) {
      sasl_line(line);
    } else {
      dispatch(line);
    }
    if (wait_ == Wait::kStartTls) {
      // RFC 3207 §4.2 / CVE-2011-0411: nothing pipelined behind STARTTLS may be executed.
      discarded_ += in_.size() - pos;
      pos = in_.size();
    }
  }
  in_.erase(0, pos);
  if (closing_) in_.clear();
}

void ServerSession::dispatch(std::string_view line) {
  const size_t sp = line.find(' ');
  const std::string_view verb = line.substr(0, sp);
  std::string_view args = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  while (!args.empty() && args.back() == ' ') args.remove_suffix(1);
  for (const Command& c : kCommands) {
    if (!core::iequals(verb, c.verb)) continue;
    if (state_ == State::kBdatMore && !(c.flags & kAllowedInBdat))
      return error(503, "5.5.1", "Error: BDAT transfer in progress; send BDAT, RSET or QUIT");
    if ((c.flags & kNeedsHelo) && state_ == State::kFresh)
      return error(503, "5.5.1", "Error: send HELO/EHLO first");
    if ((c.flags & kNoArgs) && !args.empty())
      return error(501, "5.5.4", "Syntax: " + std::string(c.verb) + " takes no arguments");
    if ((c.flags & kNoTransaction) && (state_ == State::kMail || state_ == State::kRcpt))
      return error(503, "5.5.1", "Error: MAIL transaction in progress");
    return (this->*c.handler)(args);
  }
  error(500, "5.5.2", "Error: command not recognized");
}

void ServerSession::cmd_ehlo(std::string_view args) {
  if (args.empty() || args.find(' ') != std::string_view::npos)
    return error(501, "5.5.4", "Syntax: EHLO hostname");
  helo_ = std::string(args);
  esmtp_ = true;
  reset_transaction();
  std::string text = cfg_.hostname;
  text += "\nPIPELINING\nSIZE " + std::to_string(cfg_.max_message_size);
  text += "\n8BITMIME\nSMTPUTF8\nENHANCEDSTATUSCODES\nCHUNKING\nDSN";
  if (cfg_.starttls_available && !tls_) text += "\nSTARTTLS";
  if (cfg_.auth_enabled && tls_) text += "\nAUTH PLAIN LOGIN";
  reply(250, "", text);  // no enhanced codes on EHLO replies (RFC 2034 §3)
}

void ServerSession::cmd_helo(std::string_view args) {
  if (args.empty() || args.find(' ') != std::string_view::npos)
    return error(501, "5.5.4", "Syntax: HELO hostname");
  helo_ = std::string(args);
  esmtp_ = false;
  reset_transaction();
  reply(250, "", cfg_.hostname);
}

void ServerSession::cmd_mail(std::string_view args) {
  if (state_ == State::kMail || state_ == State::kRcpt)
    return error(503, "5.5.1", "Error: nested MAIL command");
  if (cfg_.auth_required && auth_user_.empty()) {
    if (!tls_) return error(530, "5.7.0", "Must issue a STARTTLS command first");
    return error(530, "5.7.0", "Authentication required");
  }
  auto parsed = parse_mail(args);
  if (auto* r = std::get_if<core::Reply>(&parsed)) return error(*r);
  MailCommand& m = std::get<MailCommand>(parsed);
  if (!esmtp_ && (m.size || m.smtputf8 || m.body != core::BodyType::k7Bit ||
                  m.ret != core::DsnRet::kUnset || !m.envid.empty()))
    return error(555, "5.5.4", "MAIL parameters need EHLO, not HELO");
  if (m.size > cfg_.max_message_size)
    return error(552, "5.3.4", "Message size exceeds fixed maximum message size (" +
                                   std::to_string(cfg_.max_message_size) + " octets)");
  env_ = core::Envelope{};
  env_.sender = std::move(m.sender);
  env_.body = m.body;
  env_.smtputf8 = m.smtputf8;
  env_.ret = m.ret;
  env_.envid = std::move(m.envid);
  env_.declared_size = m.size;
  env_.client_ip = client_ip_;
  env_.client_helo = helo_;
  env_.auth_user = auth_user_;
  env_.listener = cfg_.listener;
  env_.tls = tls_;
  wait_ = Wait::kMail;
}

void ServerSession::on_mail_checked(std::optional<core::Reply> refusal) {
  wait_ = Wait::kNone;
  if (refusal) {
    env_ = core::Envelope{};
    error(*refusal);
  } else {
    state_ = State::kMail;
    reply(250, "2.1.0", "Ok");
  }
  process();
}

void ServerSession::cmd_rcpt(std::string_view args) {
  if (state_ != State::kMail && state_ != State::kRcpt)
    return error(503, "5.5.1", "Error: need MAIL command");
  if (env_.recipients.size() >= cfg_.max_recipients)
    return error(452, "4.5.3", "Error: too many recipients (limit " +
                                   std::to_string(cfg_.max_recipients) + " per message)");
  auto parsed = parse_rcpt(args, env_.smtputf8);
  if (auto* r = std::get_if<core::Reply>(&parsed)) return error(*r);
  pending_rcpt_ = std::move(std::get<RcptCommand>(parsed).recipient);
  wait_ = Wait::kRcpt;
}

void ServerSession::on_rcpt_checked(std::optional<core::Reply> refusal) {
  wait_ = Wait::kNone;
  if (refusal) {
    error(*refusal);
  } else {
    env_.recipients.push_back(std::move(pending_rcpt_));
    state_ = State::kRcpt;
    reply(250, "2.1.5", "Ok");
  }
  process();
}

void ServerSession::start_body(BodyDecoder::Mode mode) {
  body_ = std::make_unique<BodyDecoder>(mode, cfg_.bare_lf, cfg_.max_message_size,
                                        cfg_.max_line_length);
}

void ServerSession::cmd_data(std::string_view) {
  if (state_ == State::kMail) return error(503, "5.5.1", "Error: need RCPT command");
  if (state_ != State::kRcpt) return error(503, "5.5.1", "Error: need MAIL command");
  start_body(BodyDecoder::Mode::kDotStuffed);
  state_ = State::kData;
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
}

void ServerSession::cmd_bdat(std::string_view args) {
  const size_t sp = args.find(' ');
  const std::string_view num = args.substr(0, sp);
  const std::string_view rest = sp == std::string_view::npos ? "" : args.substr(sp + 1);
  uint64_t size = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), size);
  if (num.empty() || ec != std::errc() || end != num.data() + num.size() ||
      (!rest.empty() && !core::iequals(rest, "LAST"))) {
    // Without a size the chunk cannot be skipped, so the connection cannot continue safely.
    error(501, "5.5.4", "Syntax: BDAT size [LAST]");
    if (!closing_) refuse({421, "4.5.0", cfg_.hostname + " Error: cannot resync after bad BDAT"});
    return;
  }
  bdat_last_ = !rest.empty();
  bdat_left_ = size;
  bdat_octets_ += size;
  if (state_ == State::kMail) {
    bdat_error_ = core::Reply{503, "5.5.1", "Error: need RCPT command"};
  } else if (state_ != State::kRcpt && state_ != State::kBdatMore) {
    bdat_error_ = core::Reply{503, "5.5.1", "Error: need MAIL command"};
  } else if (!bdat_used_) {
    bdat_used_ = true;
    start_body(BodyDecoder::Mode::kRaw);
  }
  if (bdat_error_) body_.reset();  // the chunk's bytes are read and dropped
  state_ = State::kBdat;
  feed_body();
}

// Called after body bytes were fed: finishes DATA, or a BDAT chunk once all its octets came.
void ServerSession::feed_body() {
  if (state_ == State::kData) {
    if (body_->finished()) finish_body();
    return;
  }
  if (state_ != State::kBdat || bdat_left_ > 0) return;
  if (bdat_error_) {
    const core::Reply r = *bdat_error_;
    reset_transaction();
    return error(r);
  }
  if (bdat_last_) {
    body_->finish_raw();
    return finish_body();
  }
  if (body_->problems() != BodyDecoder::kNone) return finish_body();
  state_ = State::kBdatMore;
  // RFC 3030 §2: the count is of octets received, which a pending CR is part of.
  reply(250, "2.0.0", std::to_string(bdat_octets_) + " octets received");
}

void ServerSession::finish_body() {
  const unsigned p = body_->problems();
  std::optional<core::Reply> refusal;
  if (p & BodyDecoder::kTooBig) {
    refusal = core::Reply{552, "5.3.4", "Message size exceeds fixed maximum message size (" +
                                            std::to_string(cfg_.max_message_size) + " octets)"};
  } else if (p & BodyDecoder::kBareCr) {
    refusal = core::Reply{554, "5.6.0", "Message refused: bare CR in content; lines must end "
                                        "with CRLF (RFC 5321 section 2.3.8)"};
  } else if (p & BodyDecoder::kBareLf) {
    refusal = core::Reply{554, "5.6.0", "Message refused: bare LF in content; lines must end "
                                        "with CRLF (RFC 5321 section 2.3.8)"};
  } else if (p & BodyDecoder::kLineTooLong) {
    refusal = core::Reply{554, "5.6.0", "Message refused: a line is longer than " +
                                            std::to_string(cfg_.max_line_length) +
                                            " octets (RFC 5322 section 2.1.1)"};
  }
  if (refusal) {
    reset_transaction();
    return error(*refusal);
  }
  wait_ = Wait::kCommit;
}

CommitRequest ServerSession::take_commit() {
  CommitRequest c;
  c.size = body_ ? body_->size() : 0;
  if (body_) c.chunks = body_->take_chunks();
  c.envelope = env_;
  return c;
}

void ServerSession::on_committed(const core::Reply& r) {
  wait_ = Wait::kNone;
  reset_transaction();
  if (r.positive()) {
    reply(r);
  } else {
    error(r);
  }
  process();
}

void ServerSession::cmd_rset(std::string_view) {
  reset_transaction();
  reply(250, "2.0.0", "Ok");
}

void ServerSession::cmd_noop(std::string_view) { reply(250, "2.0.0", "Ok"); }

void ServerSession::cmd_quit(std::string_view) {
  reply(221, "2.0.0", "Bye");
  closing_ = true;
  state_ = State::kClosed;
}

void ServerSession::cmd_help(std::string_view) {
  reply(214, "2.0.0",
        "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH\n"
        "See RFC 5321");
}

void ServerSession::cmd_vrfy(std::string_view) {
  // RFC 5321 §3.5.3: 252 when the server will not verify but would accept RCPT.
  reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

void ServerSession::cmd_expn(std::string_view) {
  error(502, "5.5.1", "Error: EXPN command is disabled");
}

void ServerSession::cmd_starttls(std::string_view) {
  if (tls_) return error(503, "5.5.1", "Error: TLS already active");
  if (!cfg_.starttls_available) return error(502, "5.5.1", "Error: command not implemented");
  reply(220, "2.0.0", "Ready to start TLS");
  wait_ = Wait::kStartTls;
}

void ServerSession::on_tls_started() {
  // RFC 3207 §4.2: discard all knowledge obtained from the client before TLS.
  wait_ = Wait::kNone;
  tls_ = true;
  helo_.clear();
  esmtp_ = false;
  auth_user_.clear();
  in_.clear();
  reset_transaction();
}

void ServerSession::cmd_auth(std::string_view args) {
  if (!cfg_.auth_enabled) return error(502, "5.5.1", "Error: authentication not enabled");
  if (!tls_)
    return error(538, "5.7.11", "Encryption required for requested authentication mechanism");
  if (!auth_user_.empty()) return error(503, "5.5.1", "Error: already authenticated");
  const size_t sp = args.find(' ');
  const std::string_view mech = args.substr(0, sp);
  const std::optional<std::string_view> initial =
      sp == std::string_view::npos ? std::nullopt : std::optional(args.substr(sp + 1));
  auth_ = AuthRequest{};
  if (core::iequals(mech, "PLAIN")) {
    auth_.mechanism = "PLAIN";
    if (initial) return finish_plain(*initial);
    state_ = State::kAuthPlain;
    return reply(334, "", "");
  }
  if (core::iequals(mech, "LOGIN")) {
    auth_.mechanism = "LOGIN";
    if (initial) {
      auto user = core::decode_base64(*initial);
      if (!user) return error(501, "5.5.2", "Cannot decode AUTH response");
      auth_.login = *user;
      state_ = State::kAuthLoginPass;
      return reply(334, "", core::encode_base64("Password:"));
    }
    state_ = State::kAuthLoginUser;
    return reply(334, "", core::encode_base64("Username:"));
  }
  error(504, "5.5.4", "Unrecognized authentication type");
}

void ServerSession::sasl_line(std::string_view line) {
  const State s = state_;
  state_ = State::kReady;
  if (line == "*") return error(501, "5.0.0", "Authentication cancelled");
  if (s == State::kAuthPlain) return finish_plain(line);
  auto decoded = core::decode_base64(line);
  if (!decoded) return error(501, "5.5.2", "Cannot decode AUTH response");
  if (s == State::kAuthLoginUser) {
    auth_.login = *decoded;
    state_ = State::kAuthLoginPass;
    return reply(334, "", core::encode_base64("Password:"));
  }
  auth_.password = *decoded;
  wait_ = Wait::kAuth;
}

void ServerSession::finish_plain(std::string_view b64) {
  state_ = State::kReady;
  core::SaslError why = core::SaslError::kNone;
  auto creds = core::decode_sasl_plain(b64, &why);
  switch (why) {
    case core::SaslError::kNone: break;
    case core::SaslError::kBadBase64: return error(501, "5.5.2", "Cannot decode AUTH response");
    case core::SaslError::kMalformed: return error(501, "5.5.2", "Malformed AUTH PLAIN response");
    case core::SaslError::kOtherAuthzid:
      return error(535, "5.7.8", "Authentication credentials invalid");
  }
  auth_.login = std::move(creds->login);
  auth_.password = std::move(creds->password);
  wait_ = Wait::kAuth;
}

void ServerSession::on_auth(std::optional<std::string> user, const core::Reply& refusal) {
  wait_ = Wait::kNone;
  auth_.password.assign(auth_.password.size(), '\0');
  auth_ = AuthRequest{};
  if (user) {
    auth_user_ = std::move(*user);
    reply(235, "2.7.0", "Authentication successful");
  } else {
    error(refusal);
  }
  process();
}

void ServerSession::on_timeout() {
  if (closing_) return;
  reply(421, "4.4.2", cfg_.hostname + " Error: timeout exceeded");
  closing_ = true;
  state_ = State::kClosed;
}

}  // namespace mta::smtp
