#pragma once
// DkimSigner: DKIM-Signature header fields (RFC 6376) for outgoing mail, made by OpenDKIM.
//
// Built once from the configured keys; a domain may have several (typically rsa-sha256 with a
// 2048-bit key plus an ed25519-sha256 one, RFC 8463), and a message then gets one signature
// per key. sign() returns the fields to write in front of the message, so the caller queues
// exactly the bytes that were signed (DESIGN.md: sign once, at acceptance).
//
// Every signature has relaxed/relaxed canonicalisation (it survives relays that refold header
// fields or touch trailing white space), t= (signing time), and no l= (a body length limit
// would let anyone append text below the signed part) and no x=. Signed fields: those of
// kDkimSignedHeaders that the message has, every occurrence; From is listed once more than it
// occurs (RFC 6376 §8.15), so that a second From added on the way breaks the signature
// rather than being shown to the reader as signed.
//
// Ed25519: libopendkim 2.11 as Debian builds it signs and verifies ed25519-sha256 itself
// (dkim.h has DKIM_SIGN_ED25519SHA256 and dkim_libfeature(DKIM_FEATURE_ED25519) is true),
// signing the SHA-256 header hash with PureEdDSA as RFC 8463 §3 asks; no code of ours does
// Ed25519 arithmetic.
//
// Threading: sign() is const and may run on any number of threads at once. The OpenDKIM
// library handle is configured in create() and only read afterwards (OpenDKIM's own filter
// shares one handle among its worker threads the same way); each call makes its own
// per-message handles. Copies share the library handle and the key loader.
//
// Cost: OpenDKIM keeps the key as PEM text and loads it anew for every signature. RSA keys
// are loaded through OpenSSL's legacy reader (dkim_internal::KeyLoader: 30 us rather than
// 0.4-0.9 ms in OpenSSL 3.0's decoders); what stays per RSA 2048 signature is the RSA
// operation (0.4 ms) and the blinding OpenSSL sets up for every newly loaded key (0.5 ms).
// Ed25519 keys are still read by the decoders, most of an Ed25519 signature's 0.5-0.9 ms.
//
// Limits: the message is passed whole, with CRLF line ends (a bare LF is signed as CRLF); no
// i= or z= tags; which domain signs is the caller's choice (normally the From domain).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "policy/dkim_key.h"

struct dkim_lib;  // OpenDKIM's DKIM_LIB

namespace policy {
namespace dkim_internal {
class KeyLoader;
}

// Header fields signed when present (RFC 6376 §5.4.1's list, plus MIME-Version and the
// RFC 8058 List-Unsubscribe-Post that one-click unsubscription requires to be signed).
inline constexpr const char* kDkimSignedHeaders[] = {
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-message-id",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
};

class DkimSigner {
 public:
  // Checks every key: a known algorithm, a private key of the matching type (RSA of at least
  // kDkimMinRsaBits), not encrypted, and a selector and domain that make a valid DNS name.
  // Status::invalid names the first bad key; Status::temporary if OpenDKIM cannot start.
  static core::Result<DkimSigner> create(std::vector<DkimKey> keys);

  // Whether sign() has a key for this domain (ASCII case-insensitive).
  bool has_key(std::string_view domain) const;

  // One "DKIM-Signature: ...CRLF" field (folded) per key of `domain`, in configuration order.
  // A non-empty `selector` that one of the domain's keys has (an application's dkim_selector)
  // narrows this to that key; one the domain lacks is ignored, and every key signs.
  // Status::not_found: no key for the domain. Status::invalid: the message cannot be signed
  // (no From field, a malformed header section). Status::temporary: OpenDKIM failed
  // otherwise (out of memory).
  core::Result<std::string> sign(std::string_view message, std::string_view domain,
                                 std::string_view selector = {}) const;

 private:
  struct SigningKey {
    DkimKey key;           // domain in lower case
    bool preload = false;  // loaded by loader_ before dkim_eom() rather than by OpenDKIM in it
  };

  DkimSigner(std::shared_ptr<dkim_lib> lib, std::shared_ptr<const dkim_internal::KeyLoader> loader,
             std::vector<SigningKey> keys)
      : lib_(std::move(lib)), loader_(std::move(loader)), keys_(std::move(keys)) {}

  core::Result<std::string> sign_one(std::string_view message, const SigningKey& signing) const;

  std::shared_ptr<dkim_lib> lib_;
  std::shared_ptr<const dkim_internal::KeyLoader> loader_;  // nullptr: no key is preloaded
  std::vector<SigningKey> keys_;
};

}  // namespace policy
