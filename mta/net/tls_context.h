#pragma once
// TlsContext: the OpenSSL configuration shared by many connections (certificate, key,
// protocol floor, ciphers, session cache and tickets), plus the first-start self-signed
// certificate of the development default (DESIGN.md "Configuration").
//
// Server contexts: TLS 1.2 minimum, forward-secret AEAD ciphers for TLS 1.2 (Mozilla
// "intermediate"), OpenSSL's TLS 1.3 suites, no renegotiation, server-side session cache and
// tickets. Client contexts (delivery): TLS 1.2 minimum; with verify_peer the peer's chain
// is checked against ca_file (or the system store) and its name against the SNI host.
//
// Threading: immutable once made; one shared_ptr is used from every loop thread (OpenSSL
// locks its session cache internally). Connections keep the context alive.
//
// Limits: one certificate per context (no SNI-based selection); reloading a certificate
// means making a new context for new connections.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

struct ssl_ctx_st;

namespace net {

class TlsContext {
 public:
  // Errors name the file and OpenSSL's reason ("tls: certificate /etc/x.pem: no such file").
  static core::Result<std::shared_ptr<TlsContext>> server(const std::string& cert_pem_file,
                                                          const std::string& key_pem_file);
  // ca_file_or_empty: PEM bundle of trust anchors; empty means the system default store.
  static core::Result<std::shared_ptr<TlsContext>> client(bool verify_peer,
                                                          const std::string& ca_file_or_empty);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool is_server() const { return server_; }
  bool verify_peer() const { return verify_peer_; }
  // net-internal: the OpenSSL context, for SSL_new(). Valid as long as this TlsContext.
  ssl_ctx_st* native() const;

  // Reload: connections started from now on use `fresh`'s certificate and key (of the same
  // kind: both server contexts). Connections already running keep theirs. The replaced
  // OpenSSL contexts are kept until this TlsContext goes (a few KiB per reload), so a
  // pointer native() gave out never dangles. Any thread.
  void adopt(TlsContext& fresh);

 private:
  TlsContext(ssl_ctx_st* ctx, bool server, bool verify_peer)
      : ctx_(ctx), server_(server), verify_peer_(verify_peer) {}

  mutable std::mutex mu_;
  ssl_ctx_st* ctx_;                      // guarded by mu_
  std::vector<ssl_ctx_st*> retired_;     // guarded by mu_
  bool server_;
  bool verify_peer_;
};

// If neither file exists, writes a self-signed certificate (EC P-256, SHA-256, 10 years,
// CN = first DNS name, subjectAltName = every DNS name and IP) and its key (mode 0600),
// creating the parent directories. If both exist, leaves them alone. If only one exists,
// refuses: overwriting a key someone put there is worse than asking them to look.
core::Status ensure_self_signed(const std::string& cert_file, const std::string& key_file,
                                const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ips);

}  // namespace net
