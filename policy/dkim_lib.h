#pragma once
// OpenDKIM (libopendkim 2.11) behind RAII, for DkimSigner and DkimVerifier only: the one
// header that includes <opendkim/dkim.h>. That header spells its booleans with C's _Bool and
// only includes <stdbool.h> (which makes _Bool mean bool in C++) when HAVE_STDBOOL_H is set.
//
// Threading: a library handle is configured right after dkim_init() and only read after that,
// so it may be shared by threads (OpenDKIM's own filter shares one among its workers). A
// message handle (DKIM) belongs to one thread.
//
// Limits: internal to policy/; the public headers only forward-declare dkim_lib and KeyLoader.

#ifndef HAVE_STDBOOL_H
#define HAVE_STDBOOL_H 1
#endif
#include <opendkim/dkim.h>
#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>

namespace policy::dkim_internal {

// Frees the message handle and then empties this thread's OpenSSL error queue: OpenDKIM may
// leave entries there (a failed RSA_verify pushes some), and the TLS code running on the same
// loop thread would read them back through SSL_get_error() as its own.
struct HandleFreer {
  void operator()(DKIM* dkim) const;
};
using HandlePtr = std::unique_ptr<DKIM, HandleFreer>;

// A library handle with DKIM_LIBFLAGS_* `flags` set, closed by dkim_close() when the last
// owner lets go; nullptr if libopendkim cannot start (out of memory).
std::shared_ptr<DKIM_LIB> make_lib(unsigned flags);

// Passes a whole message to dkim_chunk() and then the end-of-input call dkim_chunk(NULL, 0);
// dkim_eom() is the caller's. Stops at the first status that is not DKIM_STAT_OK.
DKIM_STAT feed_message(DKIM* dkim, std::string_view message);

// For a verifying handle: passes the message to dkim_chunk() only until OpenDKIM has read
// the header section (dkim_getsiglist() then answers). DKIM_STAT_NOSIG: no signature.
DKIM_STAT feed_header_section(DKIM* dkim, std::string_view message);

// "Syntax error: required header "from" not found": OpenDKIM's name for the status, and the
// handle's own error text when it has one, for Status messages and logs.
std::string describe(DKIM* dkim, DKIM_STAT status);

// The id given to dkim_sign()/dkim_verify(), which keep the pointer rather than a copy.
inline constexpr unsigned char kHandleId[] = "porter";

// Loads a signing handle's private key ahead of dkim_eom(), the cheap way.
//
// libopendkim 2.11 keeps the key as PEM text and has dkim_eom() parse it for every message
// with PEM_read_bio_PrivateKey(). OpenSSL 3.0 sends that through its decoder framework, which
// matches every decoder against every key type of every loaded provider: 0.4-0.9 ms per call
// whatever the key, some 40 % of what an RSA signature cost in all. With a library context
// that has no providers as the thread's default, no decoder exists and OpenSSL falls back to
// its legacy PEM reader, which yields the same key in some 30 us. dkim_eom() leaves a key
// already loaded by the public dkim_privkey_load() alone, so that call is made here, under
// that context, and everything else (hashing, signing, the field) stays with OpenDKIM. The
// legacy key is bound to no library context, so dkim_eom(), which runs after the switch is
// undone, signs with the default one's providers.
//
// Threading: the context is only read after create(); the default-context switch is per
// thread and undone before load() returns, so any number of threads may call load().
// Limits: RSA keys only in practice: OpenSSL's legacy reader derives an Ed25519 public key
// with a SHA-512 fetched from a provider, so can_load() says no and those keys keep
// OpenDKIM's own loading in dkim_eom().
class KeyLoader {
 public:
  // nullptr if OpenSSL cannot make the context (out of memory).
  static std::shared_ptr<const KeyLoader> create();
  ~KeyLoader();
  KeyLoader(const KeyLoader&) = delete;
  KeyLoader& operator=(const KeyLoader&) = delete;

  // Whether load() reads `pem` into a key that `alg` signs with. libopendkim frees part of a
  // handle when a load fails but keeps the pointer to it, so a key is only given to load()
  // after this has read it under the same conditions.
  bool can_load(const std::string& pem, dkim_alg_t alg) const;

  // dkim_privkey_load() on a signing handle made by dkim_sign(). After a failure the handle
  // must not be passed to dkim_free() (see can_load()).
  DKIM_STAT load(DKIM* dkim) const;

 private:
  explicit KeyLoader(OSSL_LIB_CTX* ctx) : ctx_(ctx) {}

  OSSL_LIB_CTX* ctx_;  // only OpenSSL's "null" provider: no decoders, no fallback provider
};

}  // namespace policy::dkim_internal
