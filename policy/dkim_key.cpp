#include "policy/dkim_key.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <limits>
#include <memory>

#include "core/address.h"
#include "core/base64.h"

namespace policy {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Ed25519 keys are exactly this long (RFC 8032 §5.1.5).
constexpr size_t kEd25519KeyBytes = 32;
// RFC 1035 §2.3.4 (253 in text form, without the trailing dot).
constexpr size_t kMaxDnsLabel = 63;
constexpr size_t kMaxDnsName = 253;
// A TXT character-string holds at most 255 octets (RFC 1035 §3.3).
constexpr size_t kTxtStringMax = 255;

// OpenSSL's error queue is per thread and outlives the call that filled it; a failure here
// must not be read later by the TLS code on the same thread as one of its own.
core::Status openssl_failure(core::Status status) {
  ERR_clear_error();
  return status;
}

bool is_ed25519(std::string_view algorithm) {
  return algorithm == kDkimEd25519Sha256;
}

core::Status check_algorithm(std::string_view algorithm) {
  if (algorithm == kDkimRsaSha256 || is_ed25519(algorithm)) return core::Status::ok();
  return core::Status::invalid("dkim: unknown algorithm \"" + std::string(algorithm) +
                               "\" (rsa-sha256 or ed25519-sha256)");
}

core::Result<std::string> public_b64(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519) {
    unsigned char raw[kEd25519KeyBytes];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof raw)
      return openssl_failure(core::Status::temporary("dkim: cannot read the Ed25519 public key"));
    return core::encode_base64(std::string_view(reinterpret_cast<const char*>(raw), len));
  }
  const int len = i2d_PUBKEY(key, nullptr);
  if (len <= 0)
    return openssl_failure(core::Status::temporary("dkim: cannot encode the RSA public key"));
  std::string der(static_cast<size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_PUBKEY(key, &out) != len)
    return openssl_failure(core::Status::temporary("dkim: cannot encode the RSA public key"));
  return core::encode_base64(der);
}

core::Result<std::string> private_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return openssl_failure(core::Status::temporary("dkim: cannot write the private key"));
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

core::Result<std::pair<std::string, std::string>> generate_key(std::string_view algorithm) {
  if (core::Status s = check_algorithm(algorithm); !s) return s;
  PkeyPtr key(is_ed25519(algorithm)
                  ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(kDkimRsaBits)));
  if (!key) return openssl_failure(core::Status::temporary("dkim: key generation failed"));
  auto pem = private_pem(key.get());
  if (!pem) return pem.status();
  auto pub = public_b64(key.get());
  if (!pub) return pub.status();
  return std::pair(std::move(pem).value(), std::move(pub).value());
}

core::Result<std::string> dkim_public_key(std::string_view algorithm,
                                          std::string_view private_key_pem) {
  if (core::Status s = check_algorithm(algorithm); !s) return s;
  if (private_key_pem.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    return core::Status::invalid("dkim: private key too large");
  BioPtr bio(BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  // With no callback OpenSSL would ask for the passphrase of an encrypted key on the terminal.
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return 0; };
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  if (!key)
    return openssl_failure(core::Status::invalid("dkim: not a PEM private key (or encrypted)"));
  const int type = EVP_PKEY_get_base_id(key.get());
  if (is_ed25519(algorithm) && type != EVP_PKEY_ED25519)
    return core::Status::invalid("dkim: ed25519-sha256 needs an Ed25519 key");
  if (!is_ed25519(algorithm)) {
    if (type != EVP_PKEY_RSA) return core::Status::invalid("dkim: rsa-sha256 needs an RSA key");
    const int bits = EVP_PKEY_get_bits(key.get());
    if (bits < kDkimMinRsaBits)
      return core::Status::invalid("dkim: RSA key of " + std::to_string(bits) + " bits; at least " +
                                   std::to_string(kDkimMinRsaBits) + " are needed (RFC 8301)");
  }
  return public_b64(key.get());
}

core::Result<std::string> dkim_key_name(std::string_view selector, std::string_view domain) {
  std::string name(selector);
  name += "._domainkey.";
  name += domain;
  name = core::to_lower_ascii(name);
  auto bad = [&] {
    return core::Status::invalid("dkim: \"" + name + "\" is not a valid DNS name");
  };
  if (selector.empty() || domain.empty() || name.size() > kMaxDnsName) return bad();
  size_t label = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (label == 0 || label > kMaxDnsLabel) return bad();
      label = 0;
      continue;
    }
    const char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return bad();
    ++label;
  }
  return name;
}

std::string dns_txt_record(std::string_view algorithm, std::string_view public_b64) {
  std::string record = is_ed25519(algorithm) ? "v=DKIM1; k=ed25519; p=" : "v=DKIM1; k=rsa; p=";
  record += public_b64;
  return record;
}

std::string dns_zone_entry(std::string_view selector, std::string_view domain,
                           std::string_view txt_record) {
  std::string line(selector);
  line += "._domainkey.";
  line += domain;
  line += ". IN TXT (";
  do {
    const std::string_view part = txt_record.substr(0, kTxtStringMax);
    line += " \"";
    line += part;
    line += '"';
    txt_record.remove_prefix(part.size());
  } while (!txt_record.empty());
  line += " )";
  return line;
}

}  // namespace policy
