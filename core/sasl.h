#pragma once
// SASL PLAIN (RFC 4616) as SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE carry it: the base64
// of "authzid NUL authcid NUL passwd", or "=" for an empty initial response.
//
// Pure function; any thread.
// Limits: an authorization identity other than the login (acting for another user) is
// refused, because Porter has no proxy authorization.

#include <optional>
#include <string>
#include <string_view>

namespace core {

struct SaslPlain {
  std::string login;
  std::string password;
};

enum class SaslError { kNone, kBadBase64, kMalformed, kOtherAuthzid };

// The credentials, or nullopt with `error` saying why (undecodable, not three fields,
// an authzid that is not the login).
std::optional<SaslPlain> decode_sasl_plain(std::string_view b64, SaslError* error = nullptr);

}  // namespace core
