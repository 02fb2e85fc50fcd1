#pragma once
// DKIM keys: what a signing key is made of, making new ones, and the DNS TXT record that
// publishes the public half (RFC 6376 §3.6.1; RFC 8463 §4 for Ed25519). This is what
// `porter dkim keygen DOMAIN SELECTOR` prints.
//
// Algorithms are named as in the a= tag: kDkimRsaSha256 ("rsa-sha256", the one every verifier
// knows) and kDkimEd25519Sha256 ("ed25519-sha256", RFC 8463, sent as a second signature beside
// an RSA one because many verifiers still ignore it). Private keys are PEM text: PKCS#8
// ("BEGIN PRIVATE KEY"), or PKCS#1 ("BEGIN RSA PRIVATE KEY") for RSA. Public keys are the
// base64 p= value: the DER SubjectPublicKeyInfo for RSA (as opendkim-genkey publishes it),
// the raw 32-byte key for Ed25519 (RFC 8463 §4.2).
//
// Threading: free functions without shared state; any thread.
// Limits: RSA keys are made with 2048 bits; RSA keys under 1024 bits are refused (RFC 8301
// §3.2: verifiers treat them as unsigned). No h= or t= tags in records made here.

#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace policy {

inline constexpr std::string_view kDkimRsaSha256 = "rsa-sha256";
inline constexpr std::string_view kDkimEd25519Sha256 = "ed25519-sha256";
inline constexpr int kDkimRsaBits = 2048;
inline constexpr int kDkimMinRsaBits = 1024;

// One signing key: d= domain, s= selector, a= algorithm and the private key in PEM.
struct DkimKey {
  std::string domain;
  std::string selector;
  std::string algorithm;  // kDkimRsaSha256 or kDkimEd25519Sha256
  std::string private_key_pem;
};

// A new key pair: (private key PEM in PKCS#8, public key base64 for p=). Status::invalid for
// an unknown algorithm; Status::temporary if OpenSSL fails (no entropy, out of memory).
core::Result<std::pair<std::string, std::string>> generate_key(std::string_view algorithm);

// The p= value for a private key, after checking that the key suits `algorithm` (RSA of at
// least kDkimMinRsaBits for rsa-sha256, Ed25519 for ed25519-sha256); Status::invalid says why
// it does not.
core::Result<std::string> dkim_public_key(std::string_view algorithm,
                                          std::string_view private_key_pem);

// "selector._domainkey.domain" in lower case, where the key is published; Status::invalid
// unless it is a DNS name: labels of 1 to 63 letters, digits, '-' or '_', 253 octets in all
// (selectors may hold dots: "2024.brisbane").
core::Result<std::string> dkim_key_name(std::string_view selector, std::string_view domain);

// "v=DKIM1; k=rsa; p=..." ("k=ed25519" for ed25519-sha256), the text of the TXT record at
// SELECTOR._domainkey.DOMAIN.
std::string dns_txt_record(std::string_view algorithm, std::string_view public_b64);

// The record as a zone-file line, split into quoted strings of at most 255 octets (a TXT
// character-string's limit, which a 2048-bit RSA record exceeds):
//   sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=MIIB..." "...AQAB" )
// `txt_record` must hold no '"' or '\' (records made by dns_txt_record() never do).
std::string dns_zone_entry(std::string_view selector, std::string_view domain,
                           std::string_view txt_record);

}  // namespace policy
