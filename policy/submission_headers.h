#pragma once
// Header hygiene for a received message (RFC 5321 §4.4, RFC 6409 §8), as a pure function:
// what to prepend to the message, and whether to refuse it because its From header names
// an address the authenticated user does not own.
//
// The caller passes the header section (core::header_end() tells where it ends) and gets
// back HeaderVerdict::prefix, complete CRLF-terminated header lines to write in front of
// the message bytes:
//   - always a Received field: "from HELO ([ip]) by HOST (Porter) with PROTO id QUEUEID
//     [for <rcpt>]; DATE", PROTO per RFC 3848 (ESMTP, ESMTPS with TLS, ESMTPA with AUTH,
//     ESMTPSA with both); "for" only when there is exactly one recipient, so that a message
//     with several does not disclose them all to each;
//   - "Date:" when options.add_date and the message has none (dated at envelope.
//     received_at_ms, in UTC);
//   - "Message-ID: <QUEUEID@HOST>" when options.add_message_id and the message has none.
// The caller sets add_date/add_message_id for the submission roles only: a relay passes
// mail through unchanged but for the trace field (RFC 5321 §4.4; RFC 6409 §8.2, §8.3).
//
// From ownership (options.check_from_ownership): every mailbox of every From field must
// pass may_send_as() for options.user, or the verdict carries 553 5.7.1 (and no prefix)
// and the caller answers the end of data with it. A message without From is neither
// refused nor given one: RFC 6409 §8 does not ask an MSA to add it, and a guessed From
// would hide the sending application's bug. A From that cannot be parsed is refused, since
// it cannot be shown to be owned.
//
// Every line written stays under 998 octets (RFC 5322 §2.1.1): the Received field is
// folded before a token that would pass 78 columns, and the client's HELO (the one token
// a client controls) is cut to 255 octets and stripped of bytes that could end the field
// or break its syntax.
//
// Pure: no clock (times come from the envelope), no locale (dates are formatted by hand
// from gmtime_r), no I/O.
//
// Limits: Sender, Resent-* and Reply-To are not checked; group syntax in From
// (RFC 6854) is refused when ownership is checked; the HELO is written as given (no reverse
// DNS lookup yet, so the TCP-info part holds only the address literal).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.h"
#include "core/envelope.h"
#include "core/reply.h"
#include "core/status.h"
#include "policy/users.h"

namespace policy {

struct HeaderOptions {
  bool add_message_id = false;
  bool add_date = false;
  bool check_from_ownership = false;
  const User* user = nullptr;  // the authenticated user; with none, nothing is owned
};

struct HeaderVerdict {
  std::string prefix;                  // header lines to prepend, each ending in CRLF
  std::optional<core::Reply> refusal;  // set when the message must be refused
};

HeaderVerdict submission_headers(std::string_view header_section, const core::Envelope& envelope,
                                 std::string_view host_name, std::string_view queue_id,
                                 const HeaderOptions& options);

// 553 5.7.1 when the user does not own the MAIL FROM address; the null sender ("<>",
// used for bounces and receipts) is allowed.
std::optional<core::Reply> check_envelope_sender(const User& user, const core::Address& sender);

// The addr-specs of a mailbox-list header value (RFC 5322 §3.4): "a@b", "Name <a@b>",
// "\"Doe, John\" <a@b>", comments and folding allowed, separated by commas. Display
// names (quoted, encoded words) are skipped, never read as addresses. An empty list,
// a group, or any mailbox that is not a valid address is an error.
core::Result<std::vector<core::Address>> parse_mailbox_list(std::string_view value);

}  // namespace policy
