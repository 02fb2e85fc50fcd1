#include "policy/dkim_lib.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace policy::dkim_internal {
namespace {

// dkim_chunk() takes a non-const buffer; the message is copied through this much at a time
// rather than handing OpenDKIM a pointer into the caller's read-only bytes.
constexpr size_t kChunkBytes = 16 * 1024;

bool header_section_read(DKIM* dkim) {
  DKIM_SIGINFO** list = nullptr;
  int count = 0;
  return dkim_getsiglist(dkim, &list, &count) == DKIM_STAT_OK;
}

DKIM_STAT feed(DKIM* dkim, std::string_view message, bool header_section_only) {
  std::array<unsigned char, kChunkBytes> buffer;
  while (!message.empty()) {
    const size_t n = std::min(message.size(), buffer.size());
    std::memcpy(buffer.data(), message.data(), n);
    const DKIM_STAT status = dkim_chunk(dkim, buffer.data(), n);
    if (status != DKIM_STAT_OK) return status;
    message.remove_prefix(n);
    if (header_section_only && header_section_read(dkim)) return DKIM_STAT_OK;
  }
  return dkim_chunk(dkim, nullptr, 0);
}

// Makes `ctx` this thread's default library context (what OpenSSL calls with a NULL context
// use, as libopendkim's do) until the end of the scope.
class ThreadDefaultContext {
 public:
  explicit ThreadDefaultContext(OSSL_LIB_CTX* ctx) : previous_(OSSL_LIB_CTX_set0_default(ctx)) {}
  ~ThreadDefaultContext() { OSSL_LIB_CTX_set0_default(previous_); }
  ThreadDefaultContext(const ThreadDefaultContext&) = delete;
  ThreadDefaultContext& operator=(const ThreadDefaultContext&) = delete;

 private:
  OSSL_LIB_CTX* previous_;
};

}  // namespace

void HandleFreer::operator()(DKIM* dkim) const {
  dkim_free(dkim);
  ERR_clear_error();
}

std::shared_ptr<DKIM_LIB> make_lib(unsigned flags) {
  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  if (lib == nullptr) return nullptr;
  std::shared_ptr<DKIM_LIB> owned(lib, [](DKIM_LIB* l) { dkim_close(l); });
  if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK)
    return nullptr;
  return owned;
}

DKIM_STAT feed_message(DKIM* dkim, std::string_view message) {
  return feed(dkim, message, /*header_section_only=*/false);
}

DKIM_STAT feed_header_section(DKIM* dkim, std::string_view message) {
  return feed(dkim, message, /*header_section_only=*/true);
}

std::shared_ptr<const KeyLoader> KeyLoader::create() {
  OSSL_LIB_CTX* ctx = OSSL_LIB_CTX_new();
  if (ctx == nullptr) return nullptr;
  // A context with no provider loaded activates the default one on first use; loading "null"
  // keeps it empty.
  if (OSSL_PROVIDER_load(ctx, "null") == nullptr) {
    OSSL_LIB_CTX_free(ctx);
    ERR_clear_error();
    return nullptr;
  }
  return std::shared_ptr<const KeyLoader>(new KeyLoader(ctx));
}

// Also unloads the "null" provider.
KeyLoader::~KeyLoader() { OSSL_LIB_CTX_free(ctx_); }

bool KeyLoader::can_load(const std::string& pem, dkim_alg_t alg) const {
  // The same call on the same bytes as dkim_privkey_load() (which measures the key with
  // strlen()), but refusing to ask for a passphrase.
  BIO* bio = BIO_new_mem_buf(pem.c_str(), -1);
  if (bio == nullptr) return false;
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return 0; };
  EVP_PKEY* key = nullptr;
  {
    ThreadDefaultContext scope(ctx_);
    key = PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr);
  }
  BIO_free(bio);
  const int want = alg == DKIM_SIGN_ED25519SHA256 ? EVP_PKEY_ED25519 : EVP_PKEY_RSA;
  const bool ok = key != nullptr && EVP_PKEY_get_base_id(key) == want;
  EVP_PKEY_free(key);
  ERR_clear_error();
  return ok;
}

DKIM_STAT KeyLoader::load(DKIM* dkim) const {
  DKIM_STAT status = DKIM_STAT_OK;
  {
    ThreadDefaultContext scope(ctx_);
    status = dkim_privkey_load(dkim);
  }
  // The handle, and with it HandleFreer's clearing, may be given up after a failure.
  if (status != DKIM_STAT_OK) ERR_clear_error();
  return status;
}

std::string describe(DKIM* dkim, DKIM_STAT status) {
  const char* name = dkim_getresultstr(status);
  std::string text = name != nullptr ? name : "status " + std::to_string(status);
  const char* detail = dkim != nullptr ? dkim_geterror(dkim) : nullptr;
  if (detail != nullptr && detail[0] != '\0') text += std::string(": ") + detail;
  return text;
}

}  // namespace policy::dkim_internal
