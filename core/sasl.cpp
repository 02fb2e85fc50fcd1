#include "core/sasl.h"

#include "core/base64.h"

namespace core {

std::optional<SaslPlain> decode_sasl_plain(std::string_view b64, SaslError* error) {
  auto fail = [&](SaslError e) -> std::optional<SaslPlain> {
    if (error) *error = e;
    return std::nullopt;
  };
  auto decoded = b64 == "=" ? std::optional<std::string>("") : decode_base64(b64);
  if (!decoded) return fail(SaslError::kBadBase64);
  const size_t a = decoded->find('\0');
  const size_t b = a == std::string::npos ? a : decoded->find('\0', a + 1);
  if (b == std::string::npos) return fail(SaslError::kMalformed);
  SaslPlain out{decoded->substr(a + 1, b - a - 1), decoded->substr(b + 1)};
  if (a > 0 && std::string_view(*decoded).substr(0, a) != out.login)
    return fail(SaslError::kOtherAuthzid);
  decoded->assign(decoded->size(), '\0');
  if (error) *error = SaslError::kNone;
  return out;
}

}  // namespace core
