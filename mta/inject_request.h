#pragma once
// The JSON body of `POST /api/v1/messages` turned into what Porter needs to queue a message:
// the composition (mta/mime/compose.h), the envelope recipients and the request's metadata.
//
//   {"from": "Shop <shop@example.com>",          string "Name <a@b>" or "a@b", or
//    "to": ["a@example.net", {"name": "B", "email": "b@example.net"}],   {"name","email"};
//    "cc": ..., "bcc": ..., "reply_to": ...,     to, cc, bcc, reply_to: one or an array
//    "subject": "...", "text": "...", "html": "...",
//    "attachments": [{"filename": "a.pdf", "content_type": "application/pdf",
//                     "content": "<base64>", "content_id": "logo"}],   (content_id: inline)
//    "headers": {"X-Campaign": "spring"}, "tags": ["welcome"], "idempotency_key": "k-1"}
//
// Every error is kInvalid and starts with the path of the field ("to[0]: not an address",
// "attachments[1].content: not base64", "bogus: unknown field") so that the HTTP layer can
// answer 400 naming it. null counts as absent for every field but from. After the JSON checks
// the composition is checked with mime::validate(), whose paths are the same.
// Envelope recipients are to, cc and bcc in that order, each address once; Bcc is never
// written into the message. message_id and date_ms are left for the caller (Porter) to set.
//
// Pure (no I/O, no clock); any thread. nlohmann::json exceptions do not leave this module.
// Limits: see InjectLimits; an address string holds one address (a list is refused, so that
// every error can name its index); RFC 2047 words in the display name of an address string
// are decoded (it is header syntax), names given as {"name": ...} are taken literally.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.h"
#include "core/status.h"
#include "mta/mime/compose.h"

namespace mta {

struct InjectLimits {
  size_t max_recipients = 1000;  // to, cc and bcc together, before duplicates
  size_t max_tags = 100;
  size_t max_tag_octets = 128;
  size_t max_idempotency_key = 200;             // printable ASCII
  size_t max_decoded_bytes = 25 * 1024 * 1024;  // text, html and attachments, decoded
  bool allow_smtputf8 = true;                   // non-ASCII addresses accepted
};

struct InjectRequest {
  mime::Composition composition;  // smtputf8 set when an address needs it
  std::vector<core::Address> recipients;
  std::vector<std::string> tags;
  std::string idempotency_key;  // "" when not given
};

core::Result<InjectRequest> parse_inject_request(std::string_view json_body,
                                                 const InjectLimits& limits = {});

}  // namespace mta
