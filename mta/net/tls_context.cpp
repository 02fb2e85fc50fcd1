#include "mta/net/tls_context.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

#include "core/address.h"
#include "core/cidr.h"
#include "mta/net/openssl_util.h"

namespace net {
namespace {

using detail::openssl_errors;

// Mozilla "intermediate" (TLS 1.2 part): forward secrecy and AEAD only. TLS 1.3 suites are
// OpenSSL's defaults, which are all fine.
constexpr const char* kServerCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

constexpr int kSelfSignedDays = 3650;

core::Result<detail::SslCtxPtr> new_context(const SSL_METHOD* method) {
  ERR_clear_error();
  detail::SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) return core::Status::io("tls: cannot create context: " + openssl_errors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Idle IMAP and SMTP connections are many; their 34 KiB of record buffers are not needed.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  // An encrypted key must fail to load, not stop the daemon at a passphrase prompt.
  SSL_CTX_set_default_passwd_cb(ctx.get(), [](char*, int, int, void*) { return 0; });
  return ctx;
}

core::Status write_file_atomically(const std::string& path, const std::string& bytes, mode_t mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return core::Status::io("tls: cannot create " + tmp + ": " + std::strerror(errno));
  // The umask may have widened nothing but could have narrowed; the key must be exactly 0600.
  bool ok = ::fchmod(fd, mode) == 0;
  for (size_t done = 0; ok && done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(ok ? errno : saved);
    ::unlink(tmp.c_str());
    return core::Status::io("tls: cannot write " + path + ": " + why);
  }
  return core::Status::ok();
}

core::Result<std::string> to_pem(const std::function<int(BIO*)>& write) {
  detail::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1)
    return core::Status::io("tls: PEM encoding: " + openssl_errors());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

core::Result<detail::GeneralNamesPtr> subject_alt_names(const std::vector<std::string>& dns_names,
                                                        const std::vector<std::string>& ips) {
  detail::GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  for (const std::string& dns : dns_names) {
    if (!core::is_valid_domain(dns, false) || dns.front() == '[')
      return core::Status::invalid("tls: not a host name for a certificate: " + dns);
    ASN1_IA5STRING* value = ASN1_IA5STRING_new();
    ASN1_STRING_set(value, dns.data(), static_cast<int>(dns.size()));
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_DNS, value);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  for (const std::string& text : ips) {
    auto ip = core::IpAddress::parse(text);
    if (!ip) return core::Status::invalid("tls: " + ip.status().message());
    ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(value, ip->bytes().data(), ip->is_v4() ? 4 : 16);
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_IPADD, value);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  return names;
}

core::Status add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
  const bool ok = ext != nullptr && X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok ? core::Status::ok()
            : core::Status::io(std::string("tls: certificate extension ") + OBJ_nid2sn(nid) + ": " +
                               openssl_errors());
}

core::Result<detail::X509Ptr> make_certificate(EVP_PKEY* key, const std::string& common_name,
                                               GENERAL_NAMES* alt_names) {
  detail::X509Ptr cert(X509_new());
  detail::BignumPtr serial(BN_new());
  bool ok =
      cert && serial && X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
      BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr &&
      // An hour of slack for clients whose clock runs behind.
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), kSelfSignedDays, 0, nullptr) != nullptr &&
      X509_set_pubkey(cert.get(), key) == 1;
  X509_NAME* name = ok ? X509_get_subject_name(cert.get()) : nullptr;
  ok = ok &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                  -1, 0) == 1 &&
       X509_set_issuer_name(cert.get(), name) == 1 &&
       X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, alt_names, 0, X509V3_ADD_DEFAULT) == 1;
  if (!ok) return core::Status::io("tls: building certificate: " + openssl_errors());
  // A leaf, not a CA; an ECDSA key only signs (RFC 5480 §3).
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_key_usage, "critical,digitalSignature"},
                            std::pair{NID_ext_key_usage, "serverAuth"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (core::Status s = add_extension(cert.get(), nid, value); !s) return s;
  }
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0)
    return core::Status::io("tls: signing certificate: " + openssl_errors());
  return cert;
}

}  // namespace

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
  for (ssl_ctx_st* old : retired_) SSL_CTX_free(old);
}

ssl_ctx_st* TlsContext::native() const {
  std::lock_guard lock(mu_);
  return ctx_;
}

void TlsContext::adopt(TlsContext& fresh) {
  if (&fresh == this) return;
  std::scoped_lock lock(mu_, fresh.mu_);
  SSL_CTX_up_ref(fresh.ctx_);
  retired_.push_back(ctx_);
  ctx_ = fresh.ctx_;
}

core::Result<std::shared_ptr<TlsContext>> TlsContext::server(const std::string& cert_pem_file,
                                                             const std::string& key_pem_file) {
  auto made = new_context(TLS_server_method());
  if (!made) return made.status();
  SSL_CTX* ctx = made->get();
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_dh_auto(ctx, 1);
  if (SSL_CTX_set_cipher_list(ctx, kServerCiphers) != 1)
    return core::Status::io("tls: cipher list: " + openssl_errors());
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  static constexpr unsigned char kSessionContext[] = "porter";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_pem_file.c_str()) != 1)
    return core::Status::invalid("tls: certificate " + cert_pem_file + ": " + openssl_errors());
  // Also checks that the key belongs to the certificate ("key values mismatch").
  if (SSL_CTX_use_PrivateKey_file(ctx, key_pem_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return core::Status::invalid("tls: key " + key_pem_file + ": " + openssl_errors());
  return std::shared_ptr<TlsContext>(new TlsContext(made->release(), true, false));
}

core::Result<std::shared_ptr<TlsContext>> TlsContext::client(bool verify_peer,
                                                             const std::string& ca_file_or_empty) {
  auto made = new_context(TLS_client_method());
  if (!made) return made.status();
  SSL_CTX* ctx = made->get();
  // Trust anchors are loaded even without verify_peer, so that an opportunistic connection
  // can still report whether the peer would have been trusted.
  const bool loaded = ca_file_or_empty.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                               : SSL_CTX_load_verify_locations(
                                                     ctx, ca_file_or_empty.c_str(), nullptr) == 1;
  if (!loaded)
    return core::Status::invalid(
        "tls: CA file " + (ca_file_or_empty.empty() ? "(system default)" : ca_file_or_empty) +
        ": " + openssl_errors());
  SSL_CTX_set_verify(ctx, verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return std::shared_ptr<TlsContext>(new TlsContext(made->release(), false, verify_peer));
}

core::Status ensure_self_signed(const std::string& cert_file, const std::string& key_file,
                                const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ips) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool have_cert = fs::exists(cert_file, ec);
  const bool have_key = fs::exists(key_file, ec);
  if (have_cert && have_key) return core::Status::ok();
  if (have_cert != have_key) {
    const std::string& present = have_cert ? cert_file : key_file;
    const std::string& missing = have_cert ? key_file : cert_file;
    return core::Status::invalid("tls: " + present + " exists but " + missing +
                                 " does not; supply it, or remove " + present +
                                 " to have a self-signed pair made");
  }
  if (dns_names.empty() && ips.empty())
    return core::Status::invalid("tls: a self-signed certificate needs a host name or an IP");
  auto alt_names = subject_alt_names(dns_names, ips);
  if (!alt_names) return alt_names.status();

  ERR_clear_error();
  detail::PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return core::Status::io("tls: generating key: " + openssl_errors());
  auto cert = make_certificate(key.get(), dns_names.empty() ? ips.front() : dns_names.front(),
                               alt_names->get());
  if (!cert) return cert.status();
  auto key_pem = to_pem([&](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  if (!key_pem) return key_pem.status();
  auto cert_pem = to_pem([&](BIO* bio) { return PEM_write_bio_X509(bio, cert->get()); });
  if (!cert_pem) return cert_pem.status();

  for (const std::string& file : {key_file, cert_file}) {
    const fs::path parent = fs::path(file).parent_path();
    if (!parent.empty() && !fs::create_directories(parent, ec) && ec)
      return core::Status::io("tls: cannot create directory " + parent.string() + ": " +
                              ec.message());
  }
  // Key first: a crash between the two renames leaves a key without a certificate, which
  // the next start reports instead of silently pairing it with a new certificate.
  if (core::Status s = write_file_atomically(key_file, *key_pem, 0600); !s) return s;
  return write_file_atomically(cert_file, *cert_pem, 0644);
}

}  // namespace net
