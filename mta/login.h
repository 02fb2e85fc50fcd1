#pragma once
// Login: checking a password for SMTP AUTH, POP3 and IMAP alike, with the failed-login
// throttle (policy/auth_throttle.h) in front.
//
//   locked-out client   -> kLockedOut at once (the caller answers 454 4.7.0 / -ERR [AUTH] ...)
//   password checked    -> on the worker pool (crypt is slow by design); an unknown login
//                          still costs one hash of `dummy_hash`, so timing does not reveal
//                          which logins exist
//   failure             -> answered only after the throttle's growing delay (a timer)
//
// Applications ([[app]] with a password) are logins only where `apps_may_log_in` (SMTP
// submission): elsewhere (POP3, IMAP: an app has no mailbox) an app's login is treated as
// unknown, dummy hash and failure count included.
//
// Threading: call on a loop thread; `done` runs later on that thread, exactly once unless
// `owner` has expired or `delay` was stopped first (then never: a closed connection wants no
// answer). `delay` belongs to `owner` (a connection's timer, stopped when it closes); the
// services must outlive the call.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/clock.h"
#include "mta/net/loop.h"
#include "mta/net/timer.h"
#include "mta/runtime.h"
#include "policy/auth_throttle.h"
#include "policy/users.h"

namespace mta {

struct LoginServices {
  LoginServices(RuntimeHolder& runtime, policy::AuthThrottle& throttle,
                bool apps_may_log_in = false);

  RuntimeHolder& runtime;  // each check reads the users in force when it starts
  policy::AuthThrottle& throttle;
  const bool apps_may_log_in;
  std::string dummy_hash;  // verified for unknown logins
  core::SystemClock clock;
};

struct LoginResult {
  enum class Outcome { kOk, kLockedOut, kBadCredentials };
  Outcome outcome = Outcome::kBadCredentials;
  const policy::User* user = nullptr;  // when kOk; valid while `runtime` is held
  std::shared_ptr<const Runtime> runtime;  // the users `user` belongs to
  int64_t retry_after_ms = 0;          // when kLockedOut
  int64_t delay_ms = 0;                // when kBadCredentials: how long the answer waited
  const policy::App* app = nullptr;    // when kOk and the login is an app; as `user`
};

// `client_key` is policy::client_key() of the client's address.
void check_login(net::Loop& loop, LoginServices& services, const std::string& client_key,
                 const std::string& login, std::string password, std::weak_ptr<void> owner,
                 net::Timer& delay, std::function<void(LoginResult)> done);

}  // namespace mta
