#pragma once
// Test support for the dns tests: a libuv loop that closes cleanly, a bounded run, and the
// loopback DNS server (fake_dns_server.py serving test.zone) as a child process.

#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <string>
#include <vector>

namespace dns::test {

class TestLoop {
 public:
  TestLoop() { uv_loop_init(&loop_); }
  ~TestLoop() { close(); }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  uv_loop_t* get() { return &loop_; }
  // Runs the loop until done() holds or timeout_ms passes; returns done().
  bool run_until(const std::function<bool()>& done, int timeout_ms = 5000);
  // Lets pending close callbacks run, then closes the loop; 0 when no handle was left open.
  int close();

 private:
  uv_loop_t loop_;
  bool closed_ = false;
};

// The server of fake_dns_server.py on 127.0.0.1 serving tests/dns/test.zone, with
// SERVFAIL for "broken.test" and no answer at all for "slow.test".
// Started on first use, once per process, stopped (SIGTERM, waitpid) at exit.
class FakeDnsServer {
 public:
  static FakeDnsServer& shared();
  ~FakeDnsServer();

  // "" when the server could not start; error() then says why.
  const std::string& address() const { return address_; }
  const std::string& error() const { return error_; }

 private:
  FakeDnsServer();
  pid_t pid_ = -1;
  std::string address_;
  std::string error_;
};

}  // namespace dns::test
