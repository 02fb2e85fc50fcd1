#include "mta/login.h"

#include <memory>

#include "mta/net/worker.h"

namespace mta {

LoginServices::LoginServices(RuntimeHolder& rt, policy::AuthThrottle& t, bool apps)
    : runtime(rt), throttle(t), apps_may_log_in(apps) {
  auto dummy = policy::UserDb::hash_password("porter-timing-equaliser");
  dummy_hash = dummy ? *dummy : std::string("$6$invalid$");
}

void check_login(net::Loop& loop, LoginServices& services, const std::string& client_key,
                 const std::string& login, std::string password, std::weak_ptr<void> owner,
                 net::Timer& delay, std::function<void(LoginResult)> done) {
  const auto decision = services.throttle.check(client_key, services.clock.now_ms());
  if (!decision.allowed) {
    LoginResult r{LoginResult::Outcome::kLockedOut, nullptr, {}, decision.retry_after_ms, 0};
    // Never inside the caller's call: through the timer, at once.
    delay.start(0, [done = std::move(done), r] { done(r); });
    return;
  }
  std::shared_ptr<const Runtime> rt = services.runtime.get();
  const policy::User* user = rt->users->find(login);
  const policy::App* app = rt->apps->find_by_login(login);
  if (app && !services.apps_may_log_in) user = nullptr;
  struct Job {
    std::string password;
    std::string hash;
    bool ok = false;
  };
  auto job = std::make_shared<Job>(
      Job{std::move(password), user ? user->password_hash : services.dummy_hash, false});
  net::run_blocking(
      loop, [job] { job->ok = policy::UserDb::verify_password(job->password, job->hash); },
      [job, user, app, rt, &services, client_key, owner, &delay, done = std::move(done)]() mutable {
        job->password.assign(job->password.size(), '\0');
        // The owner, and so `delay`, may be gone: the connection closed while crypt ran.
        if (owner.expired()) return;
        if (job->ok && user) {
          services.throttle.record_success(client_key);
          return done(LoginResult{LoginResult::Outcome::kOk, user, rt, 0, 0, app});
        }
        const int64_t wait = services.throttle.record_failure(client_key, services.clock.now_ms());
        delay.start(static_cast<uint64_t>(wait), [done = std::move(done), wait] {
          done(LoginResult{LoginResult::Outcome::kBadCredentials, nullptr, {}, 0, wait});
        });
      });
}

}  // namespace mta
