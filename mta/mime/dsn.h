#pragma once
// Delivery Status Notifications: whether to send one (RFC 3461) and what it says (RFC 3464
// in an RFC 6522 multipart/report, RFC 6533 types for internationalised mail).
//
// The failure policy (mta/) decides that a recipient failed, is delayed or was delivered;
// this module turns that decision into bytes. compose_dsn() is pure: no clock (now_ms comes
// in), no host name lookup, no I/O; any thread. The result is a complete RFC 5322 message
// with CRLF line ends, every line at most 998 octets, ready to be queued with a null
// reverse-path (RFC 5321 §4.5.5) to the original sender.
//
// Choices (document them where a reader of a DSN may wonder):
//   - Text from a remote server is made one line, stripped of controls and cut at 4 KiB
//     before it goes into a header field (Diagnostic-Code) or the text part.
//   - The text part is 7bit US-ASCII when it can be, otherwise UTF-8 in quoted-printable,
//     so it survives a path without 8BITMIME.
//   - The original goes back whole (message/rfc822) for a failure unless RET=HDRS, and as
//     its header section (text/rfc822-headers) for a delay or success unless RET=FULL; whole
//     only when it is at most max_returned_body octets and its lines are MIME-legal
//     (CRLF ends, at most 998 octets), else its header section with a note in the text.
//   - With SMTPUTF8 involved (the original used it, or an address is not ASCII) the
//     RFC 6533 types are used: message/global-delivery-status, message/global(-headers),
//     and "utf-8" address types. Such a DSN must be sent with SMTPUTF8
//     (uses_global_types() tells the caller).
//
// Limits: one DSN per call for one original message; no localisation of the human text;
// no RFC 2047 encoding (the top-level header fields are ASCII except the To: address of a
// UTF-8 sender, which RFC 6532 allows under SMTPUTF8).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.h"
#include "core/status.h"

namespace mta::mime {

struct DsnRecipient {
  // RFC 3464 §2.3.3 action values.
  enum class Action { kFailed, kDelayed, kDelivered, kRelayed, kExpanded };

  core::Recipient recipient;  // address and ORCPT
  Action action = Action::kFailed;
  std::string status;      // RFC 3463 "5.1.1"; empty or malformed: "5.0.0"/"4.0.0"/"2.0.0"
  std::string remote_mta;  // "mx.example.com", or "" when no server was reached
  std::string diagnostic;  // the remote reply ("550 5.1.1 <x@y>: User unknown") or our text
  bool diagnostic_from_remote = false;
  int64_t last_attempt_ms = 0;      // 0: not reported
  int64_t will_retry_until_ms = 0;  // delayed only; 0: not reported
};

struct DsnRequest {
  std::string reporting_mta;  // our host name
  std::string queue_id;       // of the original message
  core::Envelope original;    // sender, envid, ret, received_at_ms, smtputf8
  std::vector<DsnRecipient> recipients;
  std::string_view original_message;  // the stored bytes, header section and body
  size_t max_returned_body = 256 * 1024;
  int64_t now_ms = 0;
  std::string message_id;  // of the DSN itself: "<ID.dsn@host>"
  std::string postmaster;  // "MAILER-DAEMON@host"
};

// RFC 3464 §2.3.3 spelling: "failed", "delayed", "delivered", "relayed", "expanded".
std::string_view action_name(DsnRecipient::Action action);

// RFC 3461 §4.1 and §5.2: whether `action` for `rcpt` of the message with envelope `env`
// earns a DSN. Never for a null reverse-path (so never a DSN about a DSN); NOTIFY=NEVER
// never; a failure when NOTIFY has FAILURE or is absent; a delay when NOTIFY has DELAY or is
// absent (the MTA's discretion, §4.1: warnings help senders more than they annoy them);
// delivered, relayed and expanded only when NOTIFY has SUCCESS.
bool should_send_dsn(const core::Envelope& env, const core::Recipient& rcpt,
                     DsnRecipient::Action action);

// True when compose_dsn() uses the RFC 6533 global types for this request, and the DSN
// must therefore be relayed with SMTPUTF8.
bool uses_global_types(const DsnRequest& req);

// The complete DSN message. Invalid when the request cannot make one: a null sender, no
// recipients, or an empty reporting_mta, message_id or postmaster.
core::Result<std::string> compose_dsn(const DsnRequest& req);

}  // namespace mta::mime
