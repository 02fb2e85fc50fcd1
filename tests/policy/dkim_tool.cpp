// porter_dkim_tool: DkimSigner and the key functions behind a command line, so that
// dkim_independent_check.py can have other programs (dkimpy, opendkim-testmsg) judge what
// they make. A test helper, not part of Porter.
//
//   porter_dkim_tool keygen ALGORITHM PRIVATE_KEY_FILE
//       writes a new private key, prints its TXT record ("v=DKIM1; k=...; p=...")
//   porter_dkim_tool sign DOMAIN SELECTOR:ALGORITHM:PRIVATE_KEY_FILE... < message > signed
//       prints the DKIM-Signature fields followed by the message

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "policy/dkim_key.h"
#include "policy/dkim_signer.h"

namespace {

int fail(const std::string& why) {
  std::cerr << "porter_dkim_tool: " << why << "\n";
  return 1;
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

int keygen(const std::string& algorithm, const std::string& path) {
  auto pair = policy::generate_key(algorithm);
  if (!pair) return fail(pair.status().to_string());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << pair->first;
  if (!out.flush()) return fail("cannot write " + path);
  std::cout << policy::dns_txt_record(algorithm, pair->second) << "\n";
  return 0;
}

int sign(const std::string& domain, const std::vector<std::string>& specs) {
  std::vector<policy::DkimKey> keys;
  for (const std::string& spec : specs) {
    const size_t a = spec.find(':');
    const size_t b = a == std::string::npos ? a : spec.find(':', a + 1);
    if (b == std::string::npos) return fail("key spec is SELECTOR:ALGORITHM:FILE: " + spec);
    policy::DkimKey key{domain, spec.substr(0, a), spec.substr(a + 1, b - a - 1), ""};
    if (!read_file(spec.substr(b + 1), &key.private_key_pem))
      return fail("cannot read " + spec.substr(b + 1));
    keys.push_back(std::move(key));
  }
  auto signer = policy::DkimSigner::create(std::move(keys));
  if (!signer) return fail(signer.status().to_string());
  const std::string message((std::istreambuf_iterator<char>(std::cin)),
                            std::istreambuf_iterator<char>());
  auto fields = signer->sign(message, domain);
  if (!fields) return fail(fields.status().to_string());
  std::cout << *fields << message;
  return std::cout.flush() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "keygen") return keygen(args[1], args[2]);
  if (args.size() >= 3 && args[0] == "sign")
    return sign(args[1], std::vector<std::string>(args.begin() + 2, args.end()));
  return fail("usage: keygen ALGORITHM FILE | sign DOMAIN SELECTOR:ALGORITHM:FILE...");
}
