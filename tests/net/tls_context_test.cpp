#include "mta/net/tls_context.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/net/test_support.h"

namespace net::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

X509* read_cert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  REQUIRE(f != nullptr);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(cert != nullptr);
  return cert;
}

EVP_PKEY* read_key(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  REQUIRE(f != nullptr);
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(key != nullptr);
  return key;
}

// "DNS:localhost", "IP:127.0.0.1", "IP:::1" for each subjectAltName entry.
std::vector<std::string> alt_names(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  REQUIRE(names != nullptr);
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(n, &type));
    const auto* data = ASN1_STRING_get0_data(value);
    const int len = ASN1_STRING_length(value);
    if (type == GEN_DNS) {
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(data), len));
    } else if (type == GEN_IPADD) {
      char text[64];
      inet_ntop(len == 4 ? AF_INET : AF_INET6, data, text, sizeof text);
      out.push_back(std::string("IP:") + text);
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

TEST_CASE("unit: ensure_self_signed makes a certificate with the SANs, once", "[net][unit]") {
  TempDir dir;
  const std::string cert_file = dir.file("tls/cert.pem");
  const std::string key_file = dir.file("tls/key.pem");
  REQUIRE(ensure_self_signed(cert_file, key_file, {"mail.example.org", "localhost"},
                             {"127.0.0.1", "::1"})
              .is_ok());

  X509* cert = read_cert(cert_file);
  CHECK(alt_names(cert) == std::vector<std::string>{"DNS:mail.example.org", "DNS:localhost",
                                                    "IP:127.0.0.1", "IP:::1"});
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "mail.example.org");
  CHECK(X509_check_host(cert, "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(cert, "::1", 0) == 1);
  CHECK(X509_check_host(cert, "other.example.org", 0, 0, nullptr) == 0);

  // Valid now, and for about ten years.
  int days = 0;
  int secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert)) == 1);
  CHECK(days >= 3649);
  CHECK(days <= 3651);
  CHECK(X509_cmp_current_time(X509_get0_notBefore(cert)) < 0);
  CHECK((X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE) != 0);
  CHECK((X509_get_extended_key_usage(cert) & XKU_SSL_SERVER) != 0);
  CHECK(X509_check_ca(cert) == 0);

  EVP_PKEY* key = read_key(key_file);
  CHECK(X509_check_private_key(cert, key) == 1);
  CHECK(EVP_PKEY_get_base_id(key) == EVP_PKEY_EC);
  CHECK(X509_verify(cert, key) == 1);  // self-signed
  EVP_PKEY_free(key);
  X509_free(cert);

  struct stat st {};
  REQUIRE(::stat(key_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  SECTION("existing files are left alone") {
    const std::string before = slurp(cert_file);
    REQUIRE(ensure_self_signed(cert_file, key_file, {"other.example.org"}, {}).is_ok());
    CHECK(slurp(cert_file) == before);
  }
  SECTION("a lone certificate or key is refused, not paired with a new partner") {
    const bool keep_cert = GENERATE(true, false);
    std::remove((keep_cert ? key_file : cert_file).c_str());
    const core::Status s = ensure_self_signed(cert_file, key_file, {"localhost"}, {});
    CHECK(s.kind() == core::Status::Kind::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains(cert_file) && Catch::Contains(key_file));
  }
  SECTION("the pair works as a server context") {
    CHECK(TlsContext::server(cert_file, key_file).is_ok());
  }
}

TEST_CASE("unit: ensure_self_signed refuses names it cannot put in a certificate", "[net][unit]") {
  TempDir dir;
  auto [dns, ips, bad] =
      GENERATE(table<std::vector<std::string>, std::vector<std::string>, std::string>({
          {{"localhost"}, {"127.0.0.300"}, "127.0.0.300"},
          {{"bad name"}, {}, "bad name"},
          {{}, {}, "host name or an IP"},
      }));
  const core::Status s = ensure_self_signed(dir.file("c.pem"), dir.file("k.pem"), dns, ips);
  CHECK(s.kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(s.message(), Catch::Contains(bad));
  CHECK_FALSE(std::filesystem::exists(dir.file("k.pem")));
}

TEST_CASE("unit: TlsContext errors name the file and OpenSSL's reason", "[net][unit]") {
  ServerCert a;
  TempDir dir;
  const std::string other_cert = dir.file("other-cert.pem");
  const std::string other_key = dir.file("other-key.pem");
  REQUIRE(ensure_self_signed(other_cert, other_key, {"localhost"}, {}).is_ok());
  const std::string garbage = dir.file("garbage.pem");
  std::ofstream(garbage) << "not a PEM file\n";
  const std::string missing = dir.file("missing.pem");

  SECTION("server") {
    // Roles, not paths: GENERATE keeps the values of the first run, whose TempDir is gone.
    const std::map<std::string, std::string> path = {{"cert", a.cert},
                                                     {"key", a.key},
                                                     {"missing", missing},
                                                     {"garbage", garbage},
                                                     {"other key", other_key}};
    auto [cert, key, named, reason] =
        GENERATE(table<std::string, std::string, std::string, std::string>({
            {"missing", "key", "missing", "No such file or directory"},
            {"garbage", "key", "garbage", "no start line"},
            {"cert", "missing", "missing", "No such file or directory"},
            {"cert", "garbage", "garbage", "unsupported"},
            {"cert", "other key", "other key", "key values mismatch"},
        }));
    auto ctx = TlsContext::server(path.at(cert), path.at(key));
    REQUIRE_FALSE(ctx.is_ok());
    CHECK(ctx.status().kind() == core::Status::Kind::kInvalid);
    CHECK_THAT(ctx.status().message(), Catch::Contains(path.at(named)) && Catch::Contains(reason));
  }
  SECTION("client CA file") {
    auto ctx = TlsContext::client(true, missing);
    REQUIRE_FALSE(ctx.is_ok());
    CHECK_THAT(ctx.status().message(), Catch::Contains(missing));
    CHECK(TlsContext::client(true, "").is_ok());
    CHECK(TlsContext::client(false, a.cert).is_ok());
  }
}

}  // namespace
}  // namespace net::test
