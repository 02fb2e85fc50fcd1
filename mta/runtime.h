#pragma once
// Runtime: everything a reload (SIGHUP, `porter reload`) replaces, read from the config file
// and the files it names: the config itself, the users, the applications, who receives local
// mail, the DKIM keys and the TLS certificate. load_runtime() builds a whole new one or fails
// naming what is wrong; nothing of it is used before it is complete, so a broken config never
// replaces a good one.
//
// A Runtime never changes once built. Sessions take the current one when they start and keep
// it to their end (a reload never changes the rules under a transaction in progress); new
// sessions and the next delivery attempts see the new one.
//
// What a reload does not change (it logs that a restart is needed): listeners, data_dir,
// threads, server.user, the admin API's sockets, DNS servers, turning TLS on or off, the
// connection limits, the auth throttle, the [rate] limits and the [delivery] settings
// (restart_needed() names them). Users, aliases and who receives local mail do change for
// delivery too. Applications ([[app]]) change like users; their message counts live outside
// the Runtime (SmtpContext::app_quota) and so survive a reload.
//
// An app with a password is also a login: `users` holds it as a policy::User whose addresses
// are its senders, so AUTH and the sender checks treat it like a user, and `apps` holds its
// own rules. Apps receive no mail: `local` is built from the users alone.
// A new certificate and key do take effect: the TLS context in use adopts them.
//
// Threading: RuntimeHolder::get() and set() from any thread.

#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "mta/config.h"
#include "mta/net/tls_context.h"
#include "policy/apps.h"
#include "policy/dkim_signer.h"
#include "policy/local_recipients.h"
#include "policy/users.h"

namespace mta {

struct Runtime {
  std::shared_ptr<const Config> config;
  // Logins: [[user]], the users file, and every [[app]] with a password.
  std::shared_ptr<const policy::UserDb> users;
  std::shared_ptr<const policy::AppDb> apps = std::make_shared<const policy::AppDb>();
  std::shared_ptr<const policy::LocalRecipients> local;
  std::shared_ptr<const policy::DkimSigner> dkim;  // null: no [[dkim]] keys
  std::shared_ptr<net::TlsContext> tls;            // null: no STARTTLS, no implicit TLS
};

// `config_path` empty: the embedded development default.
core::Result<std::shared_ptr<const Runtime>> load_runtime(const std::string& config_path);

// Keys whose change needs a restart, as "server.threads, listener" ("" when none).
std::string restart_needed(const Config& running, const Config& loaded);

class RuntimeHolder {
 public:
  explicit RuntimeHolder(std::shared_ptr<const Runtime> r) : current_(std::move(r)) {}
  std::shared_ptr<const Runtime> get() const {
    std::lock_guard lock(mu_);
    return current_;
  }
  void set(std::shared_ptr<const Runtime> r) {
    std::lock_guard lock(mu_);
    current_ = std::move(r);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Runtime> current_;
};

}  // namespace mta
