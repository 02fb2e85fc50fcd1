#include "policy/submission_headers.h"

#include "core/date.h"

#include <cstdio>
#include <ctime>

#include "core/cidr.h"
#include "core/header.h"

namespace policy {
namespace {

constexpr size_t kFoldAt = 78;    // RFC 5322 §2.1.1 "SHOULD" line length
constexpr size_t kMaxHelo = 255;  // a domain's maximum (RFC 5321 §4.5.3.1.2)

// "Name: t1 t2 ...\r\n", starting a continuation line before any token that would carry
// the current line past kFoldAt. Tokens hold no CR or LF; the callers bound their length,
// so no line reaches 998 octets.
std::string fold_tokens(std::string_view name, const std::vector<std::string>& tokens) {
  std::string out(name);
  out += ':';
  size_t line_len = out.size();
  for (const auto& token : tokens) {
    if (line_len + 1 + token.size() > kFoldAt && line_len > name.size() + 1) {
      out += "\r\n\t";
      line_len = 1;
    } else {
      out += ' ';
      ++line_len;
    }
    out += token;
    line_len += token.size();
  }
  out += "\r\n";
  return out;
}

// The HELO argument is the only free text a client puts in our trace field: keep visible
// ASCII but for the bytes that would end the field (CR, LF), end or open a comment or a
// quoted string, or start the date (';').
std::string sanitize_helo(std::string_view helo) {
  if (helo.empty()) return "unknown";
  std::string out;
  for (char ch : helo.substr(0, kMaxHelo)) {
    const auto c = static_cast<unsigned char>(ch);
    const bool bad =
        c <= 0x20 || c >= 0x7f || ch == '(' || ch == ')' || ch == ';' || ch == '"' || ch == '\\';
    out += bad ? '_' : ch;
  }
  return out;
}

std::string address_literal(std::string_view ip_text) {
  auto ip = core::IpAddress::parse(ip_text);
  if (!ip) return "unknown";
  return ip->is_v4() ? "[" + ip->str() + "]" : "[IPv6:" + ip->str() + "]";
}

// RFC 3848 "with" protocol names.
const char* with_protocol(const core::Envelope& env) {
  const bool auth = !env.auth_user.empty();
  if (env.tls) return auth ? "ESMTPSA" : "ESMTPS";
  return auth ? "ESMTPA" : "ESMTP";
}

std::string received_field(const core::Envelope& env, std::string_view host,
                           std::string_view queue_id) {
  std::vector<std::string> tokens = {
      "from " + sanitize_helo(env.client_helo) + " (" + address_literal(env.client_ip) + ")",
      "by " + std::string(host) + " (Porter)",
      std::string("with ") + with_protocol(env),
      "id " + std::string(queue_id),
  };
  if (env.recipients.size() == 1) tokens.push_back("for <" + env.recipients[0].address.str() + ">");
  tokens.back() += ';';
  tokens.push_back(core::rfc5322_date(env.received_at_ms));
  return fold_tokens("Received", tokens);
}

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

// One mailbox of a list, split while scanning: the text outside angle brackets (a display
// name, or the whole addr-spec when there are no brackets) and the text inside them.
struct RawMailbox {
  std::string outside;
  std::string inside;
  int angles = 0;  // how many <...> groups were seen
  bool text_after_angle = false;
};

core::Result<core::Address> mailbox_address(const RawMailbox& m) {
  std::string_view spec;
  if (m.angles == 0) {
    spec = trim(m.outside);
  } else {
    if (m.angles > 1 || m.text_after_angle) return core::Status::invalid("malformed mailbox");
    spec = trim(m.inside);
    // obs-route "<@a,@b:local@domain>" (RFC 5322 §4.4): the route is ignored.
    if (!spec.empty() && spec.front() == '@') {
      const size_t colon = spec.find(':');
      if (colon == std::string_view::npos) return core::Status::invalid("malformed route");
      spec = trim(spec.substr(colon + 1));
    }
  }
  if (spec.find(':') != std::string_view::npos && spec.find('"') == std::string_view::npos)
    return core::Status::invalid("group syntax");
  return core::parse_mailbox(spec, /*allow_utf8=*/true);
}

std::string owner_name(const User* user) { return user ? user->name : "(none)"; }

}  // namespace

core::Result<std::vector<core::Address>> parse_mailbox_list(std::string_view value) {
  std::vector<RawMailbox> raw(1);
  bool in_quote = false;
  bool in_angle = false;
  int comment_depth = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    RawMailbox& cur = raw.back();
    std::string& text = in_angle ? cur.inside : cur.outside;
    if (comment_depth > 0) {
      // Comments (RFC 5322 §3.2.2) nest and may hold quoted pairs; they vanish.
      if (c == '\\')
        ++i;
      else if (c == '(')
        ++comment_depth;
      else if (c == ')')
        --comment_depth;
      continue;
    }
    if (in_quote) {
      text += c;
      if (c == '\\' && i + 1 < value.size())
        text += value[++i];
      else if (c == '"')
        in_quote = false;
      continue;
    }
    if (cur.angles > 0 && !in_angle && !is_wsp(c) && c != ',' && c != '(')
      cur.text_after_angle = true;
    switch (c) {
      case '"':
        in_quote = true;
        text += c;
        break;
      case '(':
        ++comment_depth;
        text += ' ';
        break;
      case '<':
        if (in_angle) return core::Status::invalid("nested '<'");
        in_angle = true;
        ++cur.angles;
        break;
      case '>':
        if (!in_angle) return core::Status::invalid("'>' without '<'");
        in_angle = false;
        break;
      case ',':
        if (in_angle)
          text += c;  // inside an obs-route
        else
          raw.emplace_back();
        break;
      case '\r':
      case '\n':
        break;  // folding
      default:
        text += c;
    }
  }
  if (in_quote || in_angle || comment_depth > 0)
    return core::Status::invalid("unterminated quoted string, comment or <address>");

  std::vector<core::Address> out;
  for (const auto& m : raw) {
    // obs-mbox-list (RFC 5322 §4.4) allows empty elements: "a@b, , c@d".
    if (m.angles == 0 && trim(m.outside).empty()) continue;
    auto address = mailbox_address(m);
    if (!address) return address.status();
    out.push_back(std::move(*address));
  }
  if (out.empty()) return core::Status::invalid("no address");
  return out;
}

HeaderVerdict submission_headers(std::string_view header_section, const core::Envelope& envelope,
                                 std::string_view host_name, std::string_view queue_id,
                                 const HeaderOptions& options) {
  HeaderVerdict verdict;
  const auto fields = core::parse_header_fields(header_section);

  if (options.check_from_ownership) {
    for (const auto& field : fields) {
      if (!core::iequals(field.name, "From")) continue;
      auto mailboxes = parse_mailbox_list(field.value);
      if (!mailboxes) {
        verdict.refusal = core::Reply{
            553, "5.7.1",
            "From header cannot be parsed (" + mailboxes.status().message() +
                "), so it is not shown to be owned by user " + owner_name(options.user)};
        return verdict;
      }
      for (const auto& address : *mailboxes) {
        if (options.user != nullptr && may_send_as(*options.user, address)) continue;
        verdict.refusal = core::Reply{
            553, "5.7.1",
            "From header <" + address.str() + "> is not owned by user " + owner_name(options.user)};
        return verdict;
      }
    }
  }

  verdict.prefix = received_field(envelope, host_name, queue_id);
  if (options.add_date && core::find_field(fields, "Date") == nullptr)
    verdict.prefix += "Date: " + core::rfc5322_date(envelope.received_at_ms) + "\r\n";
  if (options.add_message_id && core::find_field(fields, "Message-ID") == nullptr)
    verdict.prefix +=
        "Message-ID: <" + std::string(queue_id) + "@" + std::string(host_name) + ">\r\n";
  return verdict;
}

std::optional<core::Reply> check_envelope_sender(const User& user, const core::Address& sender) {
  if (sender.empty() || may_send_as(user, sender)) return std::nullopt;
  return core::Reply{553, "5.7.1",
                     "Sender address <" + sender.str() + "> is not owned by user " + user.name};
}

}  // namespace policy
