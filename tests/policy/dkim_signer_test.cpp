#include "policy/dkim_signer.h"

#include <openssl/evp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "core/address.h"
#include "core/header.h"
#include "dkim_test_support.h"
#include "policy/dkim_lib.h"

namespace {

using dkim_test::dkimpy_file;
using dkim_test::kMessage;
using policy::DkimKey;
using policy::DkimSigner;

DkimKey rsa_key(std::string domain = "example.com", std::string selector = "test") {
  return DkimKey{std::move(domain), std::move(selector), "rsa-sha256",
                 dkimpy_file("2048_testkey.key")};
}

DkimKey ed25519_key(std::string domain = "example.com", std::string selector = "ed") {
  auto pair = policy::generate_key(policy::kDkimEd25519Sha256);
  REQUIRE(pair.is_ok());
  return DkimKey{std::move(domain), std::move(selector), "ed25519-sha256", pair->first};
}

DkimSigner make_signer(std::vector<DkimKey> keys) {
  auto signer = DkimSigner::create(std::move(keys));
  REQUIRE(signer.is_ok());
  return std::move(signer).value();
}

// The value of one tag of a DKIM-Signature field value, white space removed.
std::string tag(std::string_view value, std::string_view name) {
  std::string unfolded;
  for (char c : value)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') unfolded += c;
  const std::string needle = std::string(name) + "=";
  for (size_t at = 0; at < unfolded.size();) {
    const size_t end = unfolded.find(';', at);
    const std::string spec = unfolded.substr(at, end - at);
    if (spec.starts_with(needle)) return spec.substr(needle.size());
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return "<absent>";
}

// The DKIM-Signature fields of sign()'s output, which must be a well-formed header block.
std::vector<core::HeaderField> fields_of(const std::string& out) {
  const auto fields = core::parse_header_fields(out);
  for (const auto& f : fields) CHECK(f.name == "DKIM-Signature");
  return fields;
}

std::vector<std::string> split(const std::string& list, char sep) {
  std::vector<std::string> parts;
  size_t at = 0;
  for (size_t end; (end = list.find(sep, at)) != std::string::npos; at = end + 1)
    parts.push_back(list.substr(at, end - at));
  parts.push_back(list.substr(at));
  return parts;
}

TEST_CASE("unit: sign writes one relaxed rsa-sha256 signature field to prepend", "[policy][unit]") {
  const DkimSigner signer = make_signer({rsa_key()});
  auto out = signer.sign(kMessage, "example.com");
  REQUIRE(out.is_ok());
  const std::string& text = *out;
  REQUIRE(text.starts_with("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;"));
  REQUIRE(text.ends_with("\r\n"));

  SECTION("every line ends in CRLF, is folded and short") {
    size_t start = 0;
    for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
      REQUIRE(nl > start);
      CHECK(text[nl - 1] == '\r');
      CHECK(nl - start - 1 <= 78);
      if (start > 0) CHECK((text[start] == ' ' || text[start] == '\t'));
      start = nl + 1;
    }
    CHECK(start == text.size());
  }
  SECTION("tags: d=, s=, t= now, bh=, b=, no l= and no x=") {
    const auto fields = fields_of(text);
    REQUIRE(fields.size() == 1);
    const std::string_view v = fields[0].value;
    CHECK(tag(v, "d") == "example.com");
    CHECK(tag(v, "s") == "test");
    CHECK(tag(v, "l") == "<absent>");
    CHECK(tag(v, "x") == "<absent>");
    CHECK(tag(v, "bh").size() == 44);  // base64 of a SHA-256 digest
    CHECK(tag(v, "b").size() == 344);  // base64 of a 2048-bit RSA signature
    const long long now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    const long long t = std::stoll(tag(v, "t"));
    CHECK(t <= now);
    CHECK(t > now - 60);
  }
  SECTION("h=: the fields present, From oversigned, trace fields left out") {
    const auto fields = fields_of(text);
    REQUIRE(fields.size() == 1);
    std::vector<std::string> h = split(core::to_lower_ascii(tag(fields[0].value, "h")), ':');
    std::sort(h.begin(), h.end());
    CHECK(h == std::vector<std::string>{"content-type", "date", "from", "from", "message-id",
                                        "mime-version", "subject", "to"});
  }
}

TEST_CASE("unit: sign signs with every key of the domain, in configuration order",
          "[policy][unit]") {
  const DkimSigner signer = make_signer({rsa_key(), ed25519_key(), rsa_key("other.example", "x")});
  auto out = signer.sign(kMessage, "EXAMPLE.com");
  REQUIRE(out.is_ok());
  const auto fields = fields_of(*out);
  REQUIRE(fields.size() == 2);
  CHECK(tag(fields[0].value, "a") == "rsa-sha256");
  CHECK(tag(fields[0].value, "s") == "test");
  CHECK(tag(fields[1].value, "a") == "ed25519-sha256");
  CHECK(tag(fields[1].value, "s") == "ed");
  CHECK(tag(fields[1].value, "b").size() == 88);  // base64 of a 64-byte Ed25519 signature
  // Both hash the same canonical body.
  CHECK(tag(fields[0].value, "bh") == tag(fields[1].value, "bh"));
}

TEST_CASE("unit: sign with a selector uses only that key of the domain", "[policy][unit]") {
  const DkimSigner signer = make_signer({rsa_key(), ed25519_key(), rsa_key("other.example", "ed")});
  auto [selector, expected] = GENERATE(table<std::string, std::vector<std::string>>({
      {"ed", {"ed"}},
      {"TEST", {"test"}},
      {"", {"test", "ed"}},
      {"absent", {"test", "ed"}},  // a selector the domain lacks narrows nothing
  }));
  auto out = signer.sign(kMessage, "example.com", selector);
  REQUIRE(out.is_ok());
  std::vector<std::string> selectors;
  for (const auto& f : fields_of(*out)) {
    CHECK(tag(f.value, "d") == "example.com");
    selectors.push_back(tag(f.value, "s"));
  }
  CHECK(selectors == expected);
}

TEST_CASE("unit: sign knows which domains it has keys for", "[policy][unit]") {
  const DkimSigner signer = make_signer({rsa_key("Example.COM")});
  CHECK(signer.has_key("example.com"));
  CHECK(signer.has_key("EXAMPLE.COM"));
  CHECK_FALSE(signer.has_key("sub.example.com"));
  auto out = signer.sign(kMessage, "example.org");
  REQUIRE_FALSE(out.is_ok());
  CHECK(out.status().kind() == core::Status::Kind::kNotFound);
  auto ok = signer.sign(kMessage, "example.com");
  REQUIRE(ok.is_ok());
  CHECK(tag(fields_of(*ok).at(0).value, "d") == "example.com");
}

TEST_CASE("unit: sign refuses a message without From", "[policy][unit]") {
  const DkimSigner signer = make_signer({rsa_key()});
  auto out = signer.sign("To: bob@example.net\r\nSubject: x\r\n\r\nbody\r\n", "example.com");
  REQUIRE_FALSE(out.is_ok());
  CHECK(out.status().kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(out.status().message(), Catch::Contains("from"));
}

TEST_CASE("unit: create refuses unusable keys and says which", "[policy][unit]") {
  auto ed = policy::generate_key(policy::kDkimEd25519Sha256);
  REQUIRE(ed.is_ok());
  const std::string rsa = dkimpy_file("2048_testkey.key");
  const auto [key, why] = GENERATE_REF(table<DkimKey, std::string>({
      {DkimKey{"example.com", "s", "rsa-sha1", rsa}, "unknown algorithm"},
      {DkimKey{"example.com", "s", "ed25519-sha256", rsa}, "needs an Ed25519 key"},
      {DkimKey{"example.com", "s", "rsa-sha256", ed->first}, "needs an RSA key"},
      {DkimKey{"example.com", "s", "rsa-sha256", "garbage"}, "not a PEM private key"},
      {DkimKey{"example.com", "", "rsa-sha256", rsa}, "not a valid DNS name"},
      {DkimKey{"", "s", "rsa-sha256", rsa}, "not a valid DNS name"},
      {DkimKey{"exa mple.com", "s", "rsa-sha256", rsa}, "not a valid DNS name"},
  }));
  CAPTURE(why);
  auto signer = DkimSigner::create({rsa_key(), key});
  REQUIRE_FALSE(signer.is_ok());
  CHECK(signer.status().kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(signer.status().message(), Catch::Contains(why));
  CHECK_THAT(signer.status().message(), Catch::Contains("dkim key"));
}

// The DKIM-Signature field OpenDKIM makes for kMessage, at a fixed t=, with the key loaded by
// `loader` ahead of dkim_eom() or, without one, by OpenDKIM itself.
std::string opendkim_field(const std::string& pem, const policy::dkim_internal::KeyLoader* loader) {
  namespace di = policy::dkim_internal;
  auto lib = di::make_lib(DKIM_LIBFLAGS_FIXCRLF);
  REQUIRE(lib);
  uint64_t fixed_time = 1700000000;
  REQUIRE(dkim_options(lib.get(), DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &fixed_time,
                       sizeof fixed_time) == DKIM_STAT_OK);
  DKIM_STAT status = DKIM_STAT_OK;
  di::HandlePtr dkim(dkim_sign(lib.get(), di::kHandleId, nullptr,
                               reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(pem.c_str())),
                               reinterpret_cast<const unsigned char*>("test"),
                               reinterpret_cast<const unsigned char*>("example.com"),
                               DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1,
                               &status));
  REQUIRE(dkim);
  if (loader != nullptr) {
    REQUIRE(loader->load(dkim.get()) == DKIM_STAT_OK);
    // The thread's default library context is back: a digest is found in it again.
    EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    CHECK(sha256 != nullptr);
    EVP_MD_free(sha256);
  }
  REQUIRE(di::feed_message(dkim.get(), kMessage) == DKIM_STAT_OK);
  REQUIRE(dkim_eom(dkim.get(), nullptr) == DKIM_STAT_OK);
  unsigned char* value = nullptr;
  size_t len = 0;
  REQUIRE(dkim_getsighdr_d(dkim.get(), 16, &value, &len) == DKIM_STAT_OK);
  return std::string(reinterpret_cast<char*>(value), len);
}

TEST_CASE("unit: an RSA key loaded ahead by KeyLoader signs exactly as OpenDKIM's own loading",
          "[policy][unit]") {
  const std::string file = GENERATE("2048_testkey.key", "2048_testkey_PKCS8.key");
  CAPTURE(file);
  const std::string pem = dkimpy_file(file);
  const auto loader = policy::dkim_internal::KeyLoader::create();
  REQUIRE(loader);
  REQUIRE(loader->can_load(pem, DKIM_SIGN_RSASHA256));
  // RSA PKCS#1 v1.5 signatures are deterministic: the same key gives the same b=.
  const std::string own = opendkim_field(pem, nullptr);
  CHECK(tag(own, "b").size() == 344);
  CHECK(opendkim_field(pem, loader.get()) == own);
}

TEST_CASE("unit: KeyLoader refuses keys it cannot read or that do not suit the algorithm",
          "[policy][unit]") {
  const auto loader = policy::dkim_internal::KeyLoader::create();
  REQUIRE(loader);
  const std::string rsa = dkimpy_file("2048_testkey.key");
  CHECK_FALSE(loader->can_load("garbage", DKIM_SIGN_RSASHA256));
  CHECK_FALSE(loader->can_load(rsa.substr(0, rsa.size() / 2), DKIM_SIGN_RSASHA256));
  CHECK_FALSE(loader->can_load(rsa, DKIM_SIGN_ED25519SHA256));
}

}  // namespace
