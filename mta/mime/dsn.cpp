#include "mta/mime/dsn.h"

#include <cctype>
#include <initializer_list>

#include "core/header.h"
#include "core/date.h"
#include "mta/mime/header_fold.h"
#include "mta/mime/quoted_printable.h"

namespace mta::mime {
namespace {

using Action = DsnRecipient::Action;

// What the DSN as a whole reports; a failure outranks a delay, which outranks a success.
enum class Kind { kFailure, kDelay, kSuccess };

constexpr size_t kTextWidth = 76;
// A word longer than this is cut in the text part; well under 998 with room for an indent.
constexpr size_t kTextHardWidth = 900;

Kind report_kind(const std::vector<DsnRecipient>& rcpts) {
  Kind kind = Kind::kSuccess;
  for (const auto& r : rcpts) {
    if (r.action == Action::kFailed) return Kind::kFailure;
    if (r.action == Action::kDelayed) kind = Kind::kDelay;
  }
  return kind;
}

// RFC 3463 §2: class "." subject "." detail, class 2, 4 or 5, one to three digits each.
bool valid_status(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
    if (digits < 1 || digits > 3) return false;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

std::string status_of(const DsnRecipient& r) {
  if (valid_status(r.status)) return r.status;
  switch (r.action) {
    case Action::kFailed:
      return "5.0.0";
    case Action::kDelayed:
      return "4.0.0";
    default:
      return "2.0.0";
  }
}

// RFC 3464 §2.3.2 address-type; "utf-8" for an internationalised address (RFC 6533 §3),
// which only appears in a global DSN, where it is written as raw UTF-8.
std::string typed_address(const core::Address& a, bool global) {
  return (a.needs_utf8() ? "utf-8; " : "rfc822; ") + sanitize_field_text(a.str(), global);
}

// ORCPT as kept in the envelope ("rfc822;user@example.com", xtext decoded) to the
// Original-Recipient form "rfc822; user@example.com"; empty when malformed.
std::string original_recipient(std::string_view orcpt, bool global) {
  const size_t semi = orcpt.find(';');
  if (semi == std::string_view::npos) return {};
  const std::string type = sanitize_field_text(orcpt.substr(0, semi), false, 64);
  const std::string addr = sanitize_field_text(orcpt.substr(semi + 1), global);
  if (type.empty() || addr.empty()) return {};
  return type + "; " + addr;
}

// The header section without the empty line that ends it, each field with its CRLF.
std::string_view header_section(std::string_view msg) {
  const auto end = core::header_end(msg);
  if (!end) return msg;
  std::string_view s = msg.substr(0, *end);
  if (s == "\r\n") return {};
  if (s.size() >= 4 && s.substr(s.size() - 4) == "\r\n\r\n") s.remove_suffix(2);
  return s;
}

// Content that may go into a MIME part unchanged: CRLF line ends only, no NUL, lines of at
// most 998 octets (RFC 5322 §2.1.1, RFC 2045 §2.8). A last line without CRLF is fine: the
// delimiter that follows supplies it.
bool mime_legal_lines(std::string_view s) {
  size_t line = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\r') {
      if (i + 1 >= s.size() || s[i + 1] != '\n') return false;
      ++i;
      line = 0;
    } else if (c == '\n' || c == '\0' || ++line > kMaxLineOctets) {
      return false;
    }
  }
  return true;
}

struct Returned {
  enum class What { kFull, kHeaders, kNone };
  What what = What::kNone;
  std::string_view content;
  std::string note;  // why less than the sender could expect is attached; may be empty
};

// RFC 3461 §4.3 RET, with §5.3's freedom for the unset case (see the header comment).
Returned choose_returned(const DsnRequest& req, Kind kind) {
  const std::string_view msg = req.original_message;
  if (msg.empty()) return {Returned::What::kNone, {}, "The original message is not available."};
  const core::DsnRet ret = req.original.ret;
  const bool want_full =
      ret == core::DsnRet::kFull || (ret == core::DsnRet::kUnset && kind == Kind::kFailure);
  std::string note;
  if (want_full) {
    if (msg.size() > req.max_returned_body) {
      note = "The message body was omitted because the message is larger than " +
             std::to_string(req.max_returned_body) + " bytes; only its header section is attached.";
    } else if (!mime_legal_lines(msg)) {
      note =
          "The message body was omitted because it has lines that cannot be returned "
          "unchanged; only its header section is attached.";
    } else {
      return {Returned::What::kFull, msg, {}};
    }
  }
  const std::string_view headers = header_section(msg);
  if (headers.empty() || !mime_legal_lines(headers))
    return {Returned::What::kNone, {}, "The original message could not be attached."};
  return {Returned::What::kHeaders, headers, std::move(note)};
}

// Characters, not octets: a line of UTF-8 text should look as wide as an ASCII one.
size_t columns(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Word-wraps one paragraph of already sanitized text (single spaces) into out.
void wrap(std::string_view text, std::string_view first_prefix, std::string_view prefix,
          std::string& out) {
  std::string line(first_prefix);
  size_t prefix_len = line.size();
  auto flush = [&] {
    out += line;
    out += "\r\n";
    line = prefix;
    prefix_len = line.size();
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t space = text.find(' ', pos);
    if (space == std::string_view::npos) space = text.size();
    std::string_view word = text.substr(pos, space - pos);
    pos = space + 1;
    if (word.empty()) continue;
    if (line.size() > prefix_len && columns(line) + 1 + columns(word) > kTextWidth) flush();
    if (line.size() > prefix_len) line += ' ';
    while (line.size() + word.size() > kTextHardWidth) {
      const size_t room = kTextHardWidth - line.size();
      size_t take = utf8_cut(word, room);
      if (take == 0) take = room;
      line += word.substr(0, take);
      word.remove_prefix(take);
      flush();
    }
    line += word;
  }
  if (line.size() > prefix_len) flush();
}

std::string recipient_sentence(const DsnRecipient& r, const std::string& status) {
  std::string addr = "<" + sanitize_field_text(r.recipient.address.str(), true) + ">: ";
  const std::string remote = sanitize_field_text(r.remote_mta, true, 255);
  switch (r.action) {
    case Action::kFailed:
      return addr + "delivery failed permanently (status " + status + ").";
    case Action::kDelayed: {
      std::string s = addr + "delivery is delayed (status " + status + ")";
      if (r.will_retry_until_ms > 0)
        s += "; the mail system will keep trying until " + core::rfc5322_date(r.will_retry_until_ms);
      return s + ".";
    }
    case Action::kDelivered:
      return addr + "delivered" + (remote.empty() ? "" : " to " + remote) + " (status " + status +
             ").";
    case Action::kRelayed:
      return addr + "relayed" + (remote.empty() ? "" : " to " + remote) +
             ", which sends no further delivery reports (status " + status + ").";
    case Action::kExpanded:
      return addr + "delivered and expanded to further recipients (status " + status + ").";
  }
  return addr;
}

std::string human_text(const DsnRequest& req, Kind kind, const std::string& note) {
  std::string out;
  wrap("This is the mail system at host " + sanitize_field_text(req.reporting_mta, true, 255) + ".",
       "", "", out);
  out += "\r\n";
  switch (kind) {
    case Kind::kFailure:
      wrap(
          "Your message could not be delivered to one or more recipients. The details are "
          "below, followed by the message or its header section.",
          "", "", out);
      break;
    case Kind::kDelay:
      wrap("THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.", "", "", out);
      out += "\r\n";
      wrap(
          "Your message has not yet been delivered to one or more recipients. The mail "
          "system will keep trying and will tell you if it gives up.",
          "", "", out);
      break;
    case Kind::kSuccess:
      wrap("This is the delivery report that you asked for.", "", "", out);
      break;
  }
  if (!note.empty()) {
    out += "\r\n";
    wrap(note, "", "", out);
  }
  for (const auto& r : req.recipients) {
    out += "\r\n";
    wrap(recipient_sentence(r, status_of(r)), "", "    ", out);
    const std::string diag = sanitize_field_text(r.diagnostic, true);
    if (diag.empty()) continue;
    if (r.diagnostic_from_remote) {
      const std::string remote = sanitize_field_text(r.remote_mta, true, 255);
      wrap(remote.empty() ? "The remote mail server answered:"
                          : "The mail server " + remote + " answered:",
           "    ", "    ", out);
      wrap(diag, "        ", "        ", out);
    } else {
      wrap("Reason: " + diag, "    ", "    ", out);
    }
  }
  out += "\r\n";
  std::string origin = "The original message";
  if (!req.queue_id.empty())
    origin += " has queue ID " + sanitize_field_text(req.queue_id, false, 64);
  if (req.original.received_at_ms > 0)
    origin += std::string(req.queue_id.empty() ? "" : " and") + " arrived on " +
              core::rfc5322_date(req.original.received_at_ms);
  wrap(origin + ".", "", "", out);
  return out;
}

// RFC 3464 §2.2 per-message fields, then §2.3 per-recipient groups, each group after an
// empty line.
std::string delivery_status(const DsnRequest& req, bool global) {
  std::string out;
  if (!req.original.envid.empty())
    out += fold_field("Original-Envelope-Id", sanitize_field_text(req.original.envid, global));
  out += fold_field("Reporting-MTA", "dns; " + sanitize_field_text(req.reporting_mta, global));
  if (!req.queue_id.empty())
    out += fold_field("X-Porter-Queue-ID", sanitize_field_text(req.queue_id, false));
  if (req.original.received_at_ms > 0)
    out += fold_field("Arrival-Date", core::rfc5322_date(req.original.received_at_ms));
  for (const auto& r : req.recipients) {
    out += "\r\n";
    if (const std::string orcpt = original_recipient(r.recipient.orcpt, global); !orcpt.empty())
      out += fold_field("Original-Recipient", orcpt);
    out += fold_field("Final-Recipient", typed_address(r.recipient.address, global));
    out += fold_field("Action", action_name(r.action));
    out += fold_field("Status", status_of(r));
    if (const std::string remote = sanitize_field_text(r.remote_mta, global); !remote.empty())
      out += fold_field("Remote-MTA", "dns; " + remote);
    if (const std::string diag = sanitize_field_text(r.diagnostic, global); !diag.empty())
      out += fold_field("Diagnostic-Code",
                        (r.diagnostic_from_remote ? "smtp; " : "X-Porter; ") + diag);
    if (r.last_attempt_ms > 0)
      out += fold_field("Last-Attempt-Date", core::rfc5322_date(r.last_attempt_ms));
    if (r.action == Action::kDelayed && r.will_retry_until_ms > 0)
      out += fold_field("Will-Retry-Until", core::rfc5322_date(r.will_retry_until_ms));
  }
  return out;
}

// A boundary that occurs in none of the parts (RFC 2046 §5.1.1). Derived from the queue ID
// and time, so a DSN can be reproduced in a test; a counter moves it off any collision.
std::string choose_boundary(const DsnRequest& req, std::initializer_list<std::string_view> parts) {
  std::string base = "porter-dsn-";
  for (char c : req.queue_id)
    if (std::isalnum(static_cast<unsigned char>(c)) && base.size() < 40) base += c;
  base += '.' + std::to_string(req.now_ms < 0 ? -req.now_ms : req.now_ms) + '.';
  for (uint64_t n = 0;; ++n) {
    std::string b = base + std::to_string(n);
    bool clash = false;
    for (std::string_view p : parts) clash = clash || p.find(b) != std::string_view::npos;
    if (!clash) return b;
  }
}

std::string_view transfer_encoding(std::string_view content) {
  return is_ascii(content) ? "7bit" : "8bit";
}

void append_part(std::string& out, std::string_view boundary, std::string_view headers,
                 std::string_view content) {
  out += "\r\n--";
  out += boundary;
  out += "\r\n";
  out += headers;
  out += "\r\n";
  out += content;
}

}  // namespace

std::string_view action_name(Action action) {
  switch (action) {
    case Action::kFailed:
      return "failed";
    case Action::kDelayed:
      return "delayed";
    case Action::kDelivered:
      return "delivered";
    case Action::kRelayed:
      return "relayed";
    case Action::kExpanded:
      return "expanded";
  }
  return "failed";
}

bool should_send_dsn(const core::Envelope& env, const core::Recipient& rcpt, Action action) {
  if (env.sender.empty()) return false;  // RFC 3461 §6.2 / RFC 5321 §6.1: no DSN about a DSN
  const uint8_t notify = rcpt.notify;
  if (notify & core::kNotifyNever) return false;
  switch (action) {
    case Action::kFailed:
      return notify == 0 || (notify & core::kNotifyFailure);
    case Action::kDelayed:
      return notify == 0 || (notify & core::kNotifyDelay);
    case Action::kDelivered:
    case Action::kRelayed:
    case Action::kExpanded:
      return (notify & core::kNotifySuccess) != 0;
  }
  return false;
}

bool uses_global_types(const DsnRequest& req) {
  if (req.original.smtputf8 || req.original.sender.needs_utf8()) return true;
  for (const auto& r : req.recipients)
    if (r.recipient.address.needs_utf8() || !is_ascii(r.recipient.orcpt)) return true;
  return false;
}

core::Result<std::string> compose_dsn(const DsnRequest& req) {
  if (req.original.sender.empty())
    return core::Status::invalid("dsn: the original has a null sender");
  if (req.recipients.empty()) return core::Status::invalid("dsn: no recipients to report");
  if (req.reporting_mta.empty() || req.message_id.empty() || req.postmaster.empty())
    return core::Status::invalid("dsn: reporting_mta, message_id and postmaster are required");

  const bool global = uses_global_types(req);
  const Kind kind = report_kind(req.recipients);
  const Returned returned = choose_returned(req, kind);
  const std::string text = human_text(req, kind, returned.note);
  const bool text_ascii = is_ascii(text);
  const std::string text_body = text_ascii ? text : encode_quoted_printable(text);
  const std::string status = delivery_status(req, global);
  const std::string boundary = choose_boundary(req, {text_body, status, returned.content});
  const bool eight_bit = !is_ascii(status) || !is_ascii(returned.content);

  std::string message_id = sanitize_field_text(req.message_id, false, 900);
  if (message_id.empty()) return core::Status::invalid("dsn: message_id is blank");
  if (message_id.front() != '<') message_id = "<" + message_id + ">";
  static constexpr const char* kSubjects[] = {"Undelivered Mail Returned to Sender",
                                              "Delayed Mail (still being retried)",
                                              "Successful Mail Delivery Report"};

  std::string out;
  out.reserve(text_body.size() + status.size() + returned.content.size() + 2048);
  out += fold_field(
      "From", "\"Mail Delivery System\" <" + sanitize_field_text(req.postmaster, false, 255) + ">");
  out += fold_field("To", "<" + sanitize_field_text(req.original.sender.str(), true, 300) + ">");
  out += fold_field("Subject", kSubjects[static_cast<int>(kind)]);
  out += fold_field("Date", core::rfc5322_date(req.now_ms));
  out += fold_field("Message-ID", message_id);
  out += fold_field("Auto-Submitted", "auto-replied");  // RFC 3834 §5
  out += fold_field("MIME-Version", "1.0");
  out += fold_field("Content-Type",
                    "multipart/report; report-type=delivery-status; boundary=\"" + boundary + "\"");
  // RFC 2045 §6.4: a multipart's encoding names the widest of its parts.
  out += fold_field("Content-Transfer-Encoding", eight_bit ? "8bit" : "7bit");
  out += "\r\nThis is a MIME-encapsulated message.\r\n";

  append_part(out, boundary,
              text_ascii ? "Content-Description: Notification\r\n"
                           "Content-Type: text/plain; charset=us-ascii\r\n"
                           "Content-Transfer-Encoding: 7bit\r\n"
                         : "Content-Description: Notification\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n",
              text_body);
  append_part(
      out, boundary,
      "Content-Description: Delivery report\r\nContent-Type: " +
          std::string(global ? "message/global-delivery-status" : "message/delivery-status") +
          "\r\nContent-Transfer-Encoding: " + std::string(transfer_encoding(status)) + "\r\n",
      status);
  if (returned.what != Returned::What::kNone) {
    const bool full = returned.what == Returned::What::kFull;
    const char* type = full ? (global ? "message/global" : "message/rfc822")
                            : (global ? "message/global-headers" : "text/rfc822-headers");
    std::string description = kind == Kind::kSuccess ? "Message" : "Undelivered Message";
    if (!full) description += " Headers";
    append_part(out, boundary,
                "Content-Description: " + description + "\r\nContent-Type: " + type +
                    "\r\nContent-Transfer-Encoding: " +
                    std::string(transfer_encoding(returned.content)) + "\r\n",
                returned.content);
  }
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

}  // namespace mta::mime
