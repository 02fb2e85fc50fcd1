#pragma once
// Failed-login throttling per client: a growing delay before each failure is answered, and
// a lockout once a client has failed too often within a window.
//
// One AuthThrottle is shared by all event loops (and by POP3/IMAP later); every method
// takes its mutex briefly and never blocks otherwise. Time is passed in by the caller
// (milliseconds since the epoch, from core::Clock), so tests move it by hand.
//
// Clients are named by a string key; use client_key() (policy/client_key.h) so that an
// IPv6 client is counted by its /64.
//
// What the glue replies (RFC 4954 §6, RFC 3463):
//   check() says locked out -> "454 4.7.0 Too many failed logins from this address; try
//                              again later" (sent instead of running the AUTH exchange)
//   a failed AUTH           -> wait record_failure()'s delay (a timer, never a sleep),
//                              then "535 5.7.8 Authentication credentials invalid"
//   a successful AUTH       -> record_success()
//
// Limits: the table holds at most max_entries clients; past that, the client whose last
// failure is oldest is forgotten. A client with more addresses than that can therefore
// flush a lockout; the per-IP connection limit and the delays still bound its rate.

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace policy {

struct AuthThrottleConfig {
  int max_failures = 5;  // failures within window_ms that lock a client out
  int64_t window_ms = 15 * 60 * 1000;
  int64_t lockout_ms = 15 * 60 * 1000;
  int64_t base_delay_ms = 1000;  // delay after the first failure; doubles after each
  int64_t max_delay_ms = 5000;   // cap of that delay
  size_t max_entries = 16384;    // clients remembered at once
};

class AuthThrottle {
 public:
  struct Decision {
    bool allowed = true;
    int64_t retry_after_ms = 0;  // when !allowed: time until the lockout ends
  };

  explicit AuthThrottle(AuthThrottleConfig config = {});
  AuthThrottle(const AuthThrottle&) = delete;
  AuthThrottle& operator=(const AuthThrottle&) = delete;

  // May this client try to log in now?
  Decision check(const std::string& client, int64_t now_ms);
  // Records a failed login and returns how long to wait before answering it:
  // base_delay_ms * 2^(failures in the window - 1), capped at max_delay_ms. The failure
  // that reaches max_failures starts the lockout.
  int64_t record_failure(const std::string& client, int64_t now_ms);
  // Forgets the client's failures (a correct password ends the suspicion).
  void record_success(const std::string& client);

  // Clients currently remembered (for tests and metrics).
  size_t size() const;

 private:
  struct Entry {
    std::vector<int64_t> failures;  // times of recent failures, oldest first, <= max_failures
    int64_t locked_until_ms = 0;    // 0: not locked
    std::list<std::string>::iterator lru;  // position in lru_
  };

  void drop_expired_lock(Entry& entry, int64_t now_ms);
  Entry& touch(const std::string& client);

  const AuthThrottleConfig config_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // least recently failed first
};

}  // namespace policy
