#include "mta/runtime.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace mta {
namespace {

core::Result<Config> load_config(const std::string& path) {
  if (path.empty()) return load_config_string(embedded_default_config(), "<embedded default>");
  return load_config_file(path);
}

core::Result<policy::UserDb> load_users(const Config& c) {
  std::vector<policy::User> users;
  for (const auto& u : c.users) users.push_back({u.name, u.password_hash, u.addresses, u.quota_bytes});
  if (!c.users_file.empty()) {
    std::ifstream in(c.users_file);
    if (!in) return core::Status::io("cannot read users file " + c.users_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto more = policy::load_users_file(text);
    if (!more) return core::Status::invalid(c.users_file + ": " + more.status().message());
    for (auto& u : *more) users.push_back(std::move(u));
  }
  return policy::UserDb::create(std::move(users));
}

// Refuses aliases and a catch-all naming unknown logins (the users file is only read here,
// so config.cpp cannot check them).
core::Result<policy::LocalRecipients> load_local_recipients(const Config& c,
                                                            const policy::UserDb& users) {
  std::vector<policy::LocalAlias> aliases;
  for (const auto& a : c.aliases) aliases.push_back({a.address, a.users});
  auto r = policy::LocalRecipients::create(c.local_domains, users, aliases, c.recipient_delimiter,
                                           c.catch_all);
  if (!r) return core::Status::invalid(c.origin + ": " + r.status().message());
  return r;
}

// The apps, refusing one whose name a user of the users file has (config.cpp checks [[user]]).
core::Result<policy::AppDb> load_apps(const Config& c, const policy::UserDb& users) {
  for (const auto& a : c.apps)
    if (users.find(a.name))
      return core::Status::invalid(c.origin + ": app " + a.name + ": the login is also a user's" +
                                   (c.users_file.empty() ? "" : " (see " + c.users_file + ")"));
  auto apps = policy::AppDb::create(c.apps);
  if (!apps) return core::Status::invalid(c.origin + ": " + apps.status().message());
  return apps;
}

// The users plus the apps that log in with SMTP AUTH.
core::Result<policy::UserDb> with_app_logins(const policy::UserDb& users,
                                             const policy::AppDb& apps) {
  std::vector<policy::User> logins = users.all();
  for (const auto& a : apps.all())
    if (!a.password_hash.empty()) logins.push_back(policy::AppDb::as_user(a));
  return policy::UserDb::create(std::move(logins));
}

core::Result<std::shared_ptr<const policy::DkimSigner>> load_dkim(const Config& c) {
  if (c.dkim_keys.empty()) return std::shared_ptr<const policy::DkimSigner>();
  std::vector<policy::DkimKey> keys;
  for (const auto& k : c.dkim_keys) {
    std::ifstream in(k.key_file);
    if (!in) return core::Status::io("dkim: cannot read key_file " + k.key_file + " of " + k.domain);
    std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    keys.push_back({k.domain, k.selector, k.algorithm, std::move(pem)});
  }
  auto signer = policy::DkimSigner::create(std::move(keys));
  if (!signer) return core::Status::invalid("dkim: " + signer.status().message());
  return std::shared_ptr<const policy::DkimSigner>(
      std::make_shared<policy::DkimSigner>(std::move(*signer)));
}

core::Result<std::shared_ptr<net::TlsContext>> load_tls(const Config& c) {
  if (c.tls_cert.empty()) return std::shared_ptr<net::TlsContext>();
  if (c.tls_self_signed) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(c.tls_cert).parent_path(), ec);
    if (auto s = net::ensure_self_signed(c.tls_cert, c.tls_key, {c.hostname, "localhost"},
                                         {"127.0.0.1", "::1"});
        !s)
      return s;
  }
  return net::TlsContext::server(c.tls_cert, c.tls_key);
}

}  // namespace

core::Result<std::shared_ptr<const Runtime>> load_runtime(const std::string& config_path) {
  auto config = load_config(config_path);
  if (!config) return config.status();
  auto users = load_users(*config);
  if (!users) return users.status();
  auto local = load_local_recipients(*config, *users);
  if (!local) return local.status();
  auto apps = load_apps(*config, *users);
  if (!apps) return apps.status();
  auto logins = with_app_logins(*users, *apps);
  if (!logins) return logins.status();
  auto dkim = load_dkim(*config);
  if (!dkim) return dkim.status();
  auto tls = load_tls(*config);
  if (!tls) return tls.status();
  auto r = std::make_shared<Runtime>();
  r->config = std::make_shared<const Config>(std::move(*config));
  r->users = std::make_shared<const policy::UserDb>(std::move(*logins));
  r->apps = std::make_shared<const policy::AppDb>(std::move(*apps));
  r->local = std::make_shared<const policy::LocalRecipients>(std::move(*local));
  r->dkim = std::move(*dkim);
  r->tls = std::move(*tls);
  return std::shared_ptr<const Runtime>(std::move(r));
}

std::string restart_needed(const Config& running, const Config& loaded) {
  std::string out;
  auto note = [&out](bool changed, const char* key) {
    if (!changed) return;
    if (!out.empty()) out += ", ";
    out += key;
  };
  auto same_listeners = [&] {
    if (running.listeners.size() != loaded.listeners.size()) return false;
    for (size_t i = 0; i < running.listeners.size(); ++i) {
      const auto &a = running.listeners[i], &b = loaded.listeners[i];
      if (a.protocol != b.protocol || a.role != b.role || a.implicit_tls != b.implicit_tls ||
          a.address != b.address || a.port != b.port)
        return false;
    }
    return true;
  };
  note(!same_listeners(), "listener");
  note(running.data_dir != loaded.data_dir, "server.data_dir");
  note(running.threads != loaded.threads, "server.threads");
  note(running.run_as_user != loaded.run_as_user, "server.user");
  note(running.admin_socket != loaded.admin_socket ||
           running.admin_socket_mode != loaded.admin_socket_mode ||
           running.admin_listen != loaded.admin_listen,
       "admin");
  note(running.dns_servers != loaded.dns_servers, "delivery.dns_servers");
  note(running.tls_cert.empty() != loaded.tls_cert.empty(), "tls (on or off)");
  note(running.suppression_enabled != loaded.suppression_enabled ||
           running.suppression_expire_days != loaded.suppression_expire_days,
       "suppression (for delivery; RCPT checks follow the reload)");
  note(running.delivery_enabled != loaded.delivery_enabled || running.smarthost != loaded.smarthost ||
           running.smarthost_port != loaded.smarthost_port ||
           running.smarthost_user != loaded.smarthost_user ||
           running.smarthost_password != loaded.smarthost_password ||
           running.smarthost_tls != loaded.smarthost_tls ||
           running.remote_port != loaded.remote_port || running.default_tls != loaded.default_tls ||
           running.tls_policies != loaded.tls_policies || running.tls_ca_file != loaded.tls_ca_file ||
           running.max_delivery_connections != loaded.max_delivery_connections ||
           running.max_connections_per_destination != loaded.max_connections_per_destination ||
           running.messages_per_connection != loaded.messages_per_connection ||
           running.connect_timeout_s != loaded.connect_timeout_s ||
           running.command_timeout_s != loaded.command_timeout_s ||
           running.retry_s != loaded.retry_s || running.max_lifetime_s != loaded.max_lifetime_s ||
           running.delay_warning_s != loaded.delay_warning_s ||
           running.messages_per_minute_per_destination !=
               loaded.messages_per_minute_per_destination ||
           running.throttles != loaded.throttles,
       "delivery");
  note(running.max_connections != loaded.max_connections ||
           running.max_connections_per_ip != loaded.max_connections_per_ip,
       "limits.max_connections*");
  note(running.auth_max_failures != loaded.auth_max_failures ||
           running.auth_window_s != loaded.auth_window_s ||
           running.auth_lockout_s != loaded.auth_lockout_s ||
           running.auth_max_delay_ms != loaded.auth_max_delay_ms,
       "auth throttle");
  note(running.rate_window_s != loaded.rate_window_s || running.user_messages != loaded.user_messages ||
           running.user_recipients != loaded.user_recipients ||
           running.client_messages != loaded.client_messages ||
           running.client_recipients != loaded.client_recipients,
       "rate");
  return out;
}

}  // namespace mta
