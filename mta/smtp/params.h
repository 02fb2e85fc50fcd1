#pragma once
// Parsing of the MAIL and RCPT command arguments: the path and ESMTP parameters
// (RFC 5321 §4.1.2, SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531, DSN RFC 3461,
// AUTH RFC 4954 §5).
//
// Results are values: either the parsed command or the exact reply to send.
// Limits: BODY=BINARYMIME is refused (not advertised); the AUTH= parameter is accepted and
// ignored, as RFC 4954 §5 allows a server that does not trust the client.

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/envelope.h"
#include "core/reply.h"

namespace mta::smtp {

struct MailCommand {
  core::Address sender;
  uint64_t size = 0;
  core::BodyType body = core::BodyType::k7Bit;
  bool smtputf8 = false;
  core::DsnRet ret = core::DsnRet::kUnset;
  std::string envid;
};

struct RcptCommand {
  core::Recipient recipient;
};

// `args` is what follows the verb, e.g. "FROM:<a@b> SIZE=10".
std::variant<MailCommand, core::Reply> parse_mail(std::string_view args);
// `smtputf8` says whether the transaction's MAIL carried SMTPUTF8.
std::variant<RcptCommand, core::Reply> parse_rcpt(std::string_view args, bool smtputf8);
// RFC 3461 §4: "+XX" hex escapes; nullopt when malformed.
std::optional<std::string> decode_xtext(std::string_view s);
// The reverse: "+", "=" and anything outside "!".."~" become "+XX".
std::string encode_xtext(std::string_view s);
// A NOTIFY value (RFC 3461 §4.1) from core::DsnNotify bits: "NEVER" or "SUCCESS,DELAY".
std::string format_notify(uint8_t notify);

}  // namespace mta::smtp
