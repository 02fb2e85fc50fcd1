#include "policy/dkim_key.h"

#include <catch2/catch.hpp>
#include <string>

#include "core/base64.h"
#include "dkim_test_support.h"

namespace {

using dkim_test::dkimpy_file;
using dkim_test::dkimpy_record;
using policy::kDkimEd25519Sha256;
using policy::kDkimRsaSha256;

// The p= value of a "v=DKIM1; ...; p=..." record.
std::string p_of(const std::string& record) {
  return record.substr(record.find("p=") + 2);
}

// Made with `openssl genrsa -traditional 512`: too small for RFC 8301.
const char* const kRsa512 =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIBOwIBAAJBALiQ0OW3u2jFsKbkZTr5miaV+YN4Y1MHsGKl3TMdW3m/4Xb1nUOI\n"
    "s7MRZ3dYMJOei7X2lEiUqi4kPrZEEalYWssCAwEAAQJAHvYcNQ0XYUIYmkaiPLx2\n"
    "gZaTHtzpPJqDmmjcrKB2IfwndAHzwZTorYcBj2moC5VwNXo/uBKcKlFPab2RNSh0\n"
    "4QIhAN0KuNGyGI0zEdHPCktN9FlRX8BpgTCujZmcrM1IYTJ5AiEA1cFKKqFNoqXS\n"
    "Pu7IwxtYDPmm3eBrQU/1bEJRS6xrBmMCIQCsacOVlTQ/VvlsTPE7odeZn7ZvUBw8\n"
    "C7tZeXL0QKPICQIhAIzYavVCCfTFDI75KgIdT1xlV8VVLXcAp7coz4ZsWqz/AiB1\n"
    "1rc/bUpQNLxjzHTAwiKto0ox7w4S/gvEnteIPVqc4A==\n"
    "-----END RSA PRIVATE KEY-----\n";

// Made with `openssl genpkey -algorithm ed25519 -aes-128-cbc`: a daemon cannot type the
// passphrase, so it must be refused rather than prompted for.
const char* const kEncryptedEd25519 =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgMu4YzXii8+gICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEECEVUBsqh74jDunWYzzPujsEQPKe\n"
    "GtukxZSpFGn9Ly9dO0Hsl4iVk8vz48tNl6Ti4iBcIksVCXVGsE+H+WDqyzZBFugB\n"
    "iD6FskLKIMle836/9XQ=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";

TEST_CASE("unit: generate_key makes a PKCS#8 key whose public half is the p= value",
          "[policy][unit]") {
  const auto [algorithm, public_bytes] = GENERATE(table<std::string_view, size_t>({
      {kDkimRsaSha256, 294},     // DER SubjectPublicKeyInfo of a 2048-bit key
      {kDkimEd25519Sha256, 32},  // the raw key, RFC 8463 §4.2
  }));
  CAPTURE(algorithm);
  auto pair = policy::generate_key(algorithm);
  REQUIRE(pair.is_ok());
  const auto& [pem, pub] = *pair;
  CHECK(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  const auto raw = core::decode_base64(pub);
  REQUIRE(raw.has_value());
  CHECK(raw->size() == public_bytes);
  auto derived = policy::dkim_public_key(algorithm, pem);
  REQUIRE(derived.is_ok());
  CHECK(*derived == pub);
  // Two calls make two different keys.
  auto again = policy::generate_key(algorithm);
  REQUIRE(again.is_ok());
  CHECK(again->second != pub);
}

TEST_CASE("unit: generate_key refuses an unknown algorithm", "[policy][unit]") {
  const std::string_view algorithm = GENERATE("rsa-sha1", "ed25519", "");
  auto pair = policy::generate_key(algorithm);
  REQUIRE_FALSE(pair.is_ok());
  CHECK(pair.status().kind() == core::Status::Kind::kInvalid);
}

TEST_CASE("unit: dkim_public_key reads the dkimpy test keys as their published records",
          "[policy][unit]") {
  const auto [key_file, record_file] = GENERATE(table<std::string_view, std::string_view>({
      {"2048_testkey.key", "2048_testkey_wo_markers.pub.txt"},       // PKCS#1
      {"2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt"},  // PKCS#8
      {"test.private", "test.txt"},                                  // 1024 bits
  }));
  CAPTURE(key_file);
  auto pub = policy::dkim_public_key(kDkimRsaSha256, dkimpy_file(key_file));
  REQUIRE(pub.is_ok());
  CHECK(*pub == p_of(dkimpy_record(record_file)));
}

TEST_CASE("unit: dkim_public_key refuses keys that do not suit the algorithm", "[policy][unit]") {
  const std::string rsa = dkimpy_file("2048_testkey.key");
  auto ed = policy::generate_key(kDkimEd25519Sha256);
  REQUIRE(ed.is_ok());
  const auto [algorithm, pem, why] =
      GENERATE_REF(table<std::string_view, std::string, std::string>({
          {kDkimEd25519Sha256, rsa, "needs an Ed25519 key"},
          {kDkimRsaSha256, ed->first, "needs an RSA key"},
          {kDkimRsaSha256, kRsa512, "512 bits"},
          {kDkimEd25519Sha256, kEncryptedEd25519, "not a PEM private key"},
          {kDkimRsaSha256, "MIIEpAIBAAKCAQEA5Ru5WVhkPiBuE", "not a PEM private key"},
          {kDkimRsaSha256, "", "not a PEM private key"},
          {"rsa-sha1", rsa, "unknown algorithm"},
      }));
  CAPTURE(algorithm, why);
  auto pub = policy::dkim_public_key(algorithm, pem);
  REQUIRE_FALSE(pub.is_ok());
  CHECK(pub.status().kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(pub.status().message(), Catch::Contains(why));
}

TEST_CASE("unit: dkim_key_name accepts selectors with dots and refuses what DNS cannot carry",
          "[policy][unit]") {
  SECTION("valid names come back in lower case") {
    auto name = policy::dkim_key_name("Brisbane", "Football.Example.COM");
    REQUIRE(name.is_ok());
    CHECK(*name == "brisbane._domainkey.football.example.com");
    auto dotted = policy::dkim_key_name("2024.q1", "example.com");
    REQUIRE(dotted.is_ok());
    CHECK(*dotted == "2024.q1._domainkey.example.com");
  }
  SECTION("invalid") {
    const auto [selector, domain] = GENERATE(table<std::string, std::string>({
        {"", "example.com"},
        {"s", ""},
        {"a b", "example.com"},
        {"s", "example..com"},
        {"s", "example.com."},
        {std::string(64, 'a'), "example.com"},
        {"s", std::string(250, 'a')},
        {"s", "ex\"ample.com"},
    }));
    CAPTURE(selector, domain);
    auto name = policy::dkim_key_name(selector, domain);
    REQUIRE_FALSE(name.is_ok());
    CHECK(name.status().kind() == core::Status::Kind::kInvalid);
  }
}

TEST_CASE("unit: dns_txt_record names the key type", "[policy][unit]") {
  CHECK(policy::dns_txt_record(kDkimRsaSha256, "MIIB") == "v=DKIM1; k=rsa; p=MIIB");
  CHECK(policy::dns_txt_record(kDkimEd25519Sha256, "yi50") == "v=DKIM1; k=ed25519; p=yi50");
}

TEST_CASE("unit: dns_zone_entry splits long records into 255-octet strings", "[policy][unit]") {
  SECTION("a short record is one string") {
    CHECK(policy::dns_zone_entry("brisbane", "example.com", "v=DKIM1; k=ed25519; p=yi50") ==
          "brisbane._domainkey.example.com. IN TXT ( \"v=DKIM1; k=ed25519; p=yi50\" )");
  }
  SECTION("a 2048-bit RSA record needs two, which join back into the record") {
    const std::string record = dkimpy_record("2048_testkey_wo_markers.pub.txt");
    REQUIRE(record.size() > 255);
    const std::string line = policy::dns_zone_entry("s", "example.com", record);
    const std::string prefix = "s._domainkey.example.com. IN TXT ( \"";
    REQUIRE(line.starts_with(prefix));
    REQUIRE(line.ends_with("\" )"));
    std::string joined;
    size_t strings = 0;
    for (size_t open = line.find('"'); open != std::string::npos;
         open = line.find('"', line.find('"', open + 1) + 1)) {
      const size_t close = line.find('"', open + 1);
      const std::string part = line.substr(open + 1, close - open - 1);
      CHECK(part.size() <= 255);
      joined += part;
      ++strings;
    }
    CHECK(strings == 2);
    CHECK(joined == record);
  }
}

}  // namespace
