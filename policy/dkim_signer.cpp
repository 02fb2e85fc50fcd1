#include "policy/dkim_signer.h"

#include <algorithm>

#include "core/address.h"
#include "policy/dkim_lib.h"

namespace policy {
namespace {

using dkim_internal::HandlePtr;

constexpr std::string_view kFieldName = "DKIM-Signature: ";

// Fields OpenDKIM lists once more than they occur in h= (RFC 6376 §8.15).
const char* const kOversigned[] = {"from", nullptr};

core::Status configure(DKIM_LIB* lib) {
  std::vector<const char*> sign(std::begin(kDkimSignedHeaders), std::end(kDkimSignedHeaders));
  sign.push_back(nullptr);
  // OpenDKIM copies both lists (into a regular expression and its own array).
  if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, sign.data(), sizeof(char**)) !=
          DKIM_STAT_OK ||
      dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, const_cast<char**>(kOversigned),
                   sizeof(char**)) != DKIM_STAT_OK)
    return core::Status::temporary("dkim: cannot configure OpenDKIM's header lists");
  return core::Status::ok();
}

core::Status check_key(const DkimKey& key) {
  const std::string where =
      "dkim key " + key.selector + "._domainkey." + key.domain + " (" + key.algorithm + ")";
  if (auto name = dkim_key_name(key.selector, key.domain); !name)
    return core::Status::invalid(where + ": " + name.status().message());
  auto pub = dkim_public_key(key.algorithm, key.private_key_pem);
  if (!pub) return core::Status::invalid(where + ": " + pub.status().message());
  return core::Status::ok();
}

// OpenDKIM folds with CRLF already; a bare LF is still mended so that the queued message
// never gets one from here.
std::string with_crlf(std::string_view folded) {
  std::string out;
  out.reserve(folded.size() + 8);
  for (size_t i = 0; i < folded.size(); ++i) {
    if (folded[i] == '\n' && (i == 0 || folded[i - 1] != '\r')) out += '\r';
    out += folded[i];
  }
  return out;
}

dkim_alg_t alg_of(const DkimKey& key) {
  return key.algorithm == kDkimEd25519Sha256 ? DKIM_SIGN_ED25519SHA256 : DKIM_SIGN_RSASHA256;
}

}  // namespace

core::Result<DkimSigner> DkimSigner::create(std::vector<DkimKey> keys) {
  for (DkimKey& key : keys) {
    key.domain = core::to_lower_ascii(key.domain);
    if (core::Status s = check_key(key); !s) return s;
  }
  // FIXCRLF: a message with bare LF line ends is signed as the CRLF form it will travel in.
  auto lib = dkim_internal::make_lib(DKIM_LIBFLAGS_FIXCRLF);
  if (!lib) return core::Status::temporary("dkim: OpenDKIM could not start");
  if (core::Status s = configure(lib.get()); !s) return s;
  // Without a loader every key is read by OpenDKIM itself: slower, same signatures.
  auto loader = dkim_internal::KeyLoader::create();
  std::vector<SigningKey> signing;
  signing.reserve(keys.size());
  for (DkimKey& key : keys) {
    const bool preload = loader && loader->can_load(key.private_key_pem, alg_of(key));
    signing.push_back(SigningKey{std::move(key), preload});
  }
  return DkimSigner(std::move(lib), std::move(loader), std::move(signing));
}

bool DkimSigner::has_key(std::string_view domain) const {
  for (const SigningKey& k : keys_)
    if (core::iequals(k.key.domain, domain)) return true;
  return false;
}

core::Result<std::string> DkimSigner::sign(std::string_view message, std::string_view domain,
                                           std::string_view selector) const {
  const auto of_domain = [domain](const SigningKey& k) {
    return core::iequals(k.key.domain, domain);
  };
  const bool narrowed =
      !selector.empty() && std::any_of(keys_.begin(), keys_.end(), [&](const SigningKey& k) {
        return of_domain(k) && core::iequals(k.key.selector, selector);
      });
  std::string fields;
  for (const SigningKey& k : keys_) {
    if (!of_domain(k) || (narrowed && !core::iequals(k.key.selector, selector))) continue;
    auto field = sign_one(message, k);
    if (!field) return field.status();
    fields += *field;
  }
  if (fields.empty())
    return core::Status::not_found("dkim: no signing key for " + std::string(domain));
  return fields;
}

core::Result<std::string> DkimSigner::sign_one(std::string_view message,
                                               const SigningKey& signing) const {
  const DkimKey& key = signing.key;
  DKIM_STAT status = DKIM_STAT_OK;
  HandlePtr dkim(
      dkim_sign(lib_.get(), dkim_internal::kHandleId, nullptr,
                reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(key.private_key_pem.c_str())),
                reinterpret_cast<const unsigned char*>(key.selector.c_str()),
                reinterpret_cast<const unsigned char*>(key.domain.c_str()), DKIM_CANON_RELAXED,
                DKIM_CANON_RELAXED, alg_of(key), -1, &status));
  if (!dkim) return core::Status::temporary("dkim: " + dkim_internal::describe(nullptr, status));
  if (signing.preload) {
    status = loader_->load(dkim.get());
    if (status != DKIM_STAT_OK) {
      std::string why = "dkim: cannot load the key for " + key.domain + ": " +
                        dkim_internal::describe(dkim.get(), status);
      // Leaked, not freed: after a failed load the handle points at a BIO libopendkim has
      // already freed (see KeyLoader::can_load), and dkim_free() would free it again.
      (void)dkim.release();
      return core::Status::temporary(std::move(why));
    }
  }
  status = dkim_internal::feed_message(dkim.get(), message);
  if (status == DKIM_STAT_OK) status = dkim_eom(dkim.get(), nullptr);
  unsigned char* value = nullptr;
  size_t len = 0;
  if (status == DKIM_STAT_OK)
    status = dkim_getsighdr_d(dkim.get(), kFieldName.size(), &value, &len);
  if (status != DKIM_STAT_OK) {
    std::string why =
        "dkim: cannot sign for " + key.domain + ": " + dkim_internal::describe(dkim.get(), status);
    if (status == DKIM_STAT_SYNTAX) return core::Status::invalid(std::move(why));
    return core::Status::temporary(std::move(why));
  }
  std::string field(kFieldName);
  field += with_crlf(std::string_view(reinterpret_cast<const char*>(value), len));
  field += "\r\n";
  return field;
}

}  // namespace policy
