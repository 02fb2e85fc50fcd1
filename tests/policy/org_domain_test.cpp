#include "policy/org_domain.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("unit: organizational domain follows the public suffix list", "[policy][unit]") {
  const auto [domain, expected] = GENERATE(table<std::string, std::string>({
      {"example.com", "example.com"},
      {"mail.example.com", "example.com"},
      {"a.b.c.example.com", "example.com"},
      {"example.co.uk", "example.co.uk"},
      {"a.b.example.co.uk", "example.co.uk"},
      {"co.uk", "co.uk"},  // a public suffix itself: nothing to add (RFC 7489 §3.2)
      {"com", "com"},
      {"Mail.Example.COM.", "example.com"},      // case and the trailing dot do not matter
      {"victim.github.io", "victim.github.io"},  // private section: one organisation each
      {"www.victim.github.io", "victim.github.io"},
      {"a.b.example.unknowntld", "example.unknowntld"},  // the implicit "*" rule
      {"", ""},
  }));
  CAPTURE(domain);
  CHECK(policy::organizational_domain(domain) == expected);
}

TEST_CASE("unit: organizational domain is safe to ask from several threads", "[policy][unit]") {
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&results, i] {
      for (int n = 0; n < 100; ++n) results[i] = policy::organizational_domain("x.example.co.uk");
    });
  for (auto& t : threads) t.join();
  for (const auto& r : results) CHECK(r == "example.co.uk");
}
