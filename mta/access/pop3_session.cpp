#include "mta/access/pop3_session.h"

#include <charconv>
#include <utility>

#include "core/address.h"
#include "core/sasl.h"

namespace mta::access {
namespace {

std::optional<uint64_t> parse_number(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.size() > 19) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Splits "VERB args" at the first space.
std::pair<std::string_view, std::string_view> split_command(std::string_view line) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return {line, {}};
  return {line.substr(0, sp), line.substr(sp + 1)};
}

// Appends `text` as a POP3 multi-line body (RFC 1939 §3): each line starting with "." gets
// another ".", the text ends with CRLF, then the terminating ".".
void append_stuffed(std::string& out, std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find("\r\n", pos);
    const size_t next = eol == std::string_view::npos ? text.size() : eol + 2;
    if (text[pos] == '.') out += '.';
    out.append(text.substr(pos, next - pos));
    if (eol == std::string_view::npos) out += "\r\n";
    pos = next;
  }
  out += ".\r\n";
}

// The header section, the empty line, and the first `lines` lines of the body (TOP).
std::string_view top_of(std::string_view message, uint64_t lines) {
  size_t end = message.find("\r\n\r\n");
  if (end == std::string_view::npos) return message;
  end += 4;
  for (uint64_t i = 0; i < lines && end < message.size(); ++i) {
    const size_t eol = message.find("\r\n", end);
    end = eol == std::string_view::npos ? message.size() : eol + 2;
  }
  return message.substr(0, end);
}

}  // namespace

// The command table, in RFC 1939 order; which state each command belongs to.
const Pop3Session::Command Pop3Session::kCommands[] = {
    {"CAPA", &Pop3Session::cmd_capa, true, true},
    {"STLS", &Pop3Session::cmd_stls, true, false},
    {"USER", &Pop3Session::cmd_user, true, false},
    {"PASS", &Pop3Session::cmd_pass, true, false},
    {"AUTH", &Pop3Session::cmd_auth, true, false},
    {"STAT", &Pop3Session::cmd_stat, false, true},
    {"LIST", &Pop3Session::cmd_list, false, true},
    {"UIDL", &Pop3Session::cmd_uidl, false, true},
    {"RETR", &Pop3Session::cmd_retr, false, true},
    {"TOP", &Pop3Session::cmd_top, false, true},
    {"DELE", &Pop3Session::cmd_dele, false, true},
    {"RSET", &Pop3Session::cmd_rset, false, true},
    {"NOOP", &Pop3Session::cmd_noop, false, true},
    {"QUIT", &Pop3Session::cmd_quit, true, true},
};

Pop3Session::Pop3Session(const Pop3Config& config, bool tls_active)
    : cfg_(config), tls_(tls_active) {}

void Pop3Session::greet() { ok(cfg_.hostname + " POP3 ready"); }

void Pop3Session::receive(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  in_.append(bytes);
  process();
}

std::string Pop3Session::take_output() { return std::exchange(out_, {}); }

std::vector<size_t> Pop3Session::deleted() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < deleted_.size(); ++i)
    if (deleted_[i]) out.push_back(i);
  return out;
}

void Pop3Session::ok(std::string_view text) {
  out_ += "+OK ";
  out_ += text;
  out_ += "\r\n";
}

void Pop3Session::err(std::string_view text) {
  out_ += "-ERR ";
  out_ += text;
  out_ += "\r\n";
  if (++errors_ >= cfg_.max_errors) close_with("-ERR Too many errors, closing");
}

void Pop3Session::close_with(std::string_view line) {
  if (closing_) return;
  out_ += line;
  out_ += "\r\n";
  closing_ = true;
  state_ = State::kClosed;
  in_.clear();
}

void Pop3Session::process() {
  while (wait_ == Pop3Wait::kNone && state_ != State::kClosed) {
    const size_t eol = in_.find('\n');
    if (eol == std::string::npos) {
      if (in_.size() > cfg_.max_command_line) {
        in_.clear();
        if (!skipping_long_line_) err("Line too long");
        skipping_long_line_ = true;  // the rest of it, up to its LF, is not a command
      }
      return;
    }
    std::string line = in_.substr(0, eol);
    in_.erase(0, eol + 1);
    if (std::exchange(skipping_long_line_, false)) continue;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() + 2 > cfg_.max_command_line) {
      err("Line too long");
      continue;
    }
    if (awaiting_sasl_) {
      awaiting_sasl_ = false;
      if (line == "*") {
        err("[AUTH] Authentication cancelled");
        continue;
      }
      sasl_plain(line);
      continue;
    }
    dispatch(line);
  }
}

void Pop3Session::dispatch(std::string_view line) {
  if (line.find('\0') != std::string_view::npos) return err("NUL in command");
  const auto [verb, args] = split_command(line);
  for (const Command& c : kCommands) {
    if (!core::iequals(verb, c.verb)) continue;
    const bool allowed = state_ == State::kAuthorization ? c.in_authorization : c.in_transaction;
    if (!allowed)
      return err(state_ == State::kAuthorization ? "Log in first" : "Already logged in");
    return (this->*c.handler)(args);
  }
  err("Unknown command");
}

void Pop3Session::cmd_capa(std::string_view) {
  out_ += "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
          "PIPELINING\r\n";
  // RFC 2595 §4: no way to send a password in clear is offered before TLS.
  if (tls_) {
    out_ += "USER\r\nSASL PLAIN\r\n";
  } else if (cfg_.starttls_available) {
    out_ += "STLS\r\n";
  }
  if (state_ == State::kAuthorization) out_ += "IMPLEMENTATION Porter\r\n";
  out_ += ".\r\n";
}

void Pop3Session::cmd_stls(std::string_view args) {
  if (!args.empty()) return err("STLS takes no arguments");
  if (tls_) return err("Already using TLS");
  if (!cfg_.starttls_available) return err("STLS not available");
  ok("Begin TLS negotiation");
  wait_ = Pop3Wait::kStartTls;
}

void Pop3Session::on_tls_started() {
  wait_ = Pop3Wait::kNone;
  tls_ = true;
  // RFC 2595 §4: anything the client sent before the handshake is discarded.
  in_.clear();
  pending_user_.clear();
  process();
}

void Pop3Session::cmd_user(std::string_view args) {
  if (!tls_) return err("[AUTH] Log in only after STLS");
  if (args.empty()) return err("USER needs a name");
  pending_user_ = std::string(args);
  ok("Send PASS");
}

void Pop3Session::cmd_pass(std::string_view args) {
  if (!tls_) return err("[AUTH] Log in only after STLS");
  if (pending_user_.empty()) return err("Send USER first");
  // RFC 1939 §7: the password is the rest of the line, spaces included.
  auth_ = {std::exchange(pending_user_, {}), std::string(args)};
  wait_ = Pop3Wait::kAuth;
}

void Pop3Session::cmd_auth(std::string_view args) {
  const auto [mechanism, initial] = split_command(args);
  if (mechanism.empty()) {
    out_ += "+OK Mechanisms follow\r\nPLAIN\r\n.\r\n";
    return;
  }
  if (!tls_) return err("[AUTH] Log in only after STLS");
  if (!core::iequals(mechanism, "PLAIN")) return err("Unsupported mechanism");
  if (initial.empty()) {
    out_ += "+ \r\n";
    awaiting_sasl_ = true;
    return;
  }
  sasl_plain(initial);
}

void Pop3Session::sasl_plain(std::string_view b64) {
  auto creds = core::decode_sasl_plain(b64);
  if (!creds) return err("[AUTH] Malformed AUTH PLAIN response");
  auth_ = {std::move(creds->login), std::move(creds->password)};
  wait_ = Pop3Wait::kAuth;
}

void Pop3Session::on_auth(std::optional<std::string> user, std::string_view refusal) {
  wait_ = Pop3Wait::kNone;
  auth_.password.assign(auth_.password.size(), '\0');
  auth_ = {};
  if (!user) {
    err(refusal.empty() ? "[AUTH] Authentication failed" : refusal);
    return process();
  }
  user_ = std::move(*user);
  wait_ = Pop3Wait::kMaildrop;
}

void Pop3Session::on_maildrop(std::optional<std::vector<Pop3Message>> messages,
                              std::string_view refusal) {
  wait_ = Pop3Wait::kNone;
  if (!messages) {
    user_.clear();
    err(refusal.empty() ? "[SYS/TEMP] Cannot open the mailbox" : refusal);
    return process();
  }
  messages_ = std::move(*messages);
  deleted_.assign(messages_.size(), false);
  state_ = State::kTransaction;
  uint64_t octets = 0;
  for (const auto& m : messages_) octets += m.size;
  ok("Logged in, " + std::to_string(messages_.size()) + " messages (" + std::to_string(octets) +
     " octets)");
  process();
}

std::optional<size_t> Pop3Session::message_arg(std::string_view arg) {
  auto n = parse_number(arg);
  if (!n || *n == 0 || *n > messages_.size()) {
    err("No such message");
    return std::nullopt;
  }
  if (deleted_[*n - 1]) {
    err("Message " + std::to_string(*n) + " is deleted");
    return std::nullopt;
  }
  return static_cast<size_t>(*n - 1);
}

void Pop3Session::cmd_stat(std::string_view) {
  uint64_t count = 0, octets = 0;
  for (size_t i = 0; i < messages_.size(); ++i) {
    if (deleted_[i]) continue;
    ++count;
    octets += messages_[i].size;
  }
  ok(std::to_string(count) + " " + std::to_string(octets));
}

void Pop3Session::cmd_list(std::string_view args) {
  if (!args.empty()) {
    auto i = message_arg(args);
    if (i) ok(std::to_string(*i + 1) + " " + std::to_string(messages_[*i].size));
    return;
  }
  out_ += "+OK Scan listing follows\r\n";
  for (size_t i = 0; i < messages_.size(); ++i)
    if (!deleted_[i])
      out_ += std::to_string(i + 1) + " " + std::to_string(messages_[i].size) + "\r\n";
  out_ += ".\r\n";
}

void Pop3Session::cmd_uidl(std::string_view args) {
  if (!args.empty()) {
    auto i = message_arg(args);
    if (i) ok(std::to_string(*i + 1) + " " + messages_[*i].unique_id);
    return;
  }
  out_ += "+OK Unique-ID listing follows\r\n";
  for (size_t i = 0; i < messages_.size(); ++i)
    if (!deleted_[i]) out_ += std::to_string(i + 1) + " " + messages_[i].unique_id + "\r\n";
  out_ += ".\r\n";
}

void Pop3Session::cmd_retr(std::string_view args) {
  auto i = message_arg(args);
  if (!i) return;
  retrieve_ = {*i, std::nullopt};
  wait_ = Pop3Wait::kRetrieve;
}

void Pop3Session::cmd_top(std::string_view args) {
  const auto [msg, lines] = split_command(args);
  auto n = parse_number(lines);
  if (!n) return err("TOP needs a message number and a line count");
  auto i = message_arg(msg);
  if (!i) return;
  retrieve_ = {*i, *n};
  wait_ = Pop3Wait::kRetrieve;
}

void Pop3Session::on_message(std::optional<std::string_view> message) {
  wait_ = Pop3Wait::kNone;
  if (!message) {
    err("[SYS/TEMP] Cannot read the message; try again later");
    return process();
  }
  if (retrieve_.top_lines) {
    out_ += "+OK Top of message follows\r\n";
    append_stuffed(out_, top_of(*message, *retrieve_.top_lines));
  } else {
    out_ += "+OK " + std::to_string(message->size()) + " octets\r\n";
    append_stuffed(out_, *message);
  }
  process();
}

void Pop3Session::cmd_dele(std::string_view args) {
  auto i = message_arg(args);
  if (!i) return;
  deleted_[*i] = true;
  ok("Message " + std::to_string(*i + 1) + " deleted");
}

void Pop3Session::cmd_rset(std::string_view) {
  deleted_.assign(messages_.size(), false);
  ok(std::to_string(messages_.size()) + " messages");
}

void Pop3Session::cmd_noop(std::string_view) { out_ += "+OK\r\n"; }

void Pop3Session::cmd_quit(std::string_view) {
  if (state_ == State::kAuthorization) return close_with("+OK Bye");
  wait_ = Pop3Wait::kUpdate;
}

void Pop3Session::on_updated(bool updated) {
  wait_ = Pop3Wait::kNone;
  if (updated) {
    close_with("+OK Bye, " + std::to_string(deleted().size()) + " messages deleted");
  } else {
    close_with("-ERR [SYS/TEMP] Deleted messages could not all be removed");
  }
}

void Pop3Session::on_timeout() { close_with("-ERR Autologout; idle for too long"); }

}  // namespace mta::access
