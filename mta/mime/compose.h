#pragma once
// Composing a new message (RFC 5322, MIME RFC 2045-2047, RFC 2183, RFC 2231, RFC 2387) from
// what an application hands Porter over the HTTP API: addresses, a subject, a text and/or
// HTML body, attachments and a few extra header fields.
//
// The result is the complete message as CRLF bytes, ready to be queued:
//   - structure: text only -> text/plain; html only -> text/html; both ->
//     multipart/alternative (text first, RFC 2046 §5.1.4); attachments with a content_id ->
//     multipart/related (RFC 2387) holding that body first; other attachments ->
//     multipart/mixed holding the body (or the related part) first;
//   - every line ends in CRLF (bare CR and LF in the bodies are made CRLF) and is at most
//     998 octets; header fields Porter folds stay within 78 octets where RFC 5322 allows it;
//   - the body is 7-bit clean: text parts are 7bit when ASCII with short lines, else
//     quoted-printable; attachments are base64 in 76-character lines. Only SMTPUTF8
//     addresses (allowed when `smtputf8` is set) make the header section 8-bit;
//   - non-ASCII header text (Subject, display names, extra header values) is written as
//     RFC 2047 "utf-8" encoded words of at most 75 characters; non-ASCII filenames as
//     RFC 2231 "filename*" (with continuations), in Content-Disposition and as the name
//     parameter of Content-Type;
//   - boundaries are drawn from `boundary_seed` and checked to occur in none of the parts.
//
// validate() checks what the caller supplied and names the field in its message, in the
// form of the JSON API ("to[2]: not an address", "headers.X-Foo: value has a line break"),
// so that an HTTP layer can answer 400 with it. compose() validates first.
//
// Pure and deterministic (the same input and seed give the same bytes); any thread.
// Limits: Bcc is never written (it belongs to the envelope); white space at the ends of the
// subject and of extra header values is not kept; an ASCII extra header value is written as
// it is (folded at its white space), so it may hold structured syntax, but a run of more
// than kMaxHeaderWord octets without white space is refused; composite attachment types
// (multipart/*, message/*) are refused because base64 is not allowed for them (RFC 2046
// §5.1.1, §5.2.1).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.h"
#include "core/status.h"

namespace mta::mime {

inline constexpr size_t kMaxHeaderWord = 900;   // ASCII extra header value, see Limits
inline constexpr size_t kMaxFieldName = 76;     // "Name: " still fits on a 78-octet line
inline constexpr size_t kMaxDisplayName = 256;  // octets of UTF-8
inline constexpr size_t kMaxFilename = 255;     // octets of UTF-8, as most file systems
inline constexpr size_t kMaxSubject = 998;      // octets of UTF-8, before encoding

struct Mailbox {
  std::string name;  // display name, UTF-8; "" for none
  core::Address address;
};

struct Attachment {
  std::string filename;      // UTF-8, required
  std::string content_type;  // "application/pdf"; "" is application/octet-stream
  std::string bytes;         // the content, any octets
  // Set for an inline part that the HTML refers to as "cid:<content_id>"; with or without
  // the angle brackets.
  std::optional<std::string> content_id;
};

struct Composition {
  core::Address from;
  std::string from_name;
  std::vector<Mailbox> to, cc, reply_to;
  std::string subject;  // UTF-8; "" writes no Subject field
  std::optional<std::string> text, html;
  std::vector<Attachment> attachments;
  // Extra header fields, in order; see is_reserved_field() for the names refused.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string message_id;  // "<id@host>" (brackets added when missing); set by Porter
  int64_t date_ms = 0;     // Date: field, Unix milliseconds
  bool smtputf8 = false;   // non-ASCII addresses allowed (the message needs SMTPUTF8)
};

// True for the fields Porter writes itself (From, To, Cc, Bcc, Date, Message-ID,
// MIME-Version, Content-*, Subject, Reply-To, Received, Return-Path, DKIM-Signature),
// case-insensitive.
bool is_reserved_field(std::string_view name);

// Everything compose() checks except message_id: addresses, names, subject, bodies, extra
// header fields and attachments. kInvalid with the field path first in the message.
core::Status validate(const Composition& c);

// The message, or the first validate() error (also "message_id: ..." when it is empty or
// not an RFC 5322 msg-id).
core::Result<std::string> compose(const Composition& c, uint64_t boundary_seed);

}  // namespace mta::mime
