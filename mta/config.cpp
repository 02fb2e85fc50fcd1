#include "mta/config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <toml++/toml.h>

namespace mta {
namespace {

// Reads one TOML table, remembering which keys were used so the rest can be reported as
// unknown. The first error wins; later reads are no-ops once an error is recorded.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string path, const std::string& origin,
              std::optional<core::Status>& err)
      : t_(t), path_(std::move(path)), origin_(origin), err_(err) {}

  void fail(const toml::node* n, std::string_view key, const std::string& what) {
    if (err_) return;
    const auto line = n ? n->source().begin.line : t_.source().begin.line;
    err_ = core::Status::invalid(origin_ + ":" + std::to_string(line) + ": " + full(key) +
                                 ": " + what);
  }

  const toml::node* node(std::string_view key) {
    used_.insert(std::string(key));
    return t_.get(key);
  }

  void str(std::string_view key, std::string& out) {
    const toml::node* n = node(key);
    if (!n) return;
    if (auto v = n->value<std::string>()) {
      out = *v;
    } else {
      fail(n, key, "must be a string");
    }
  }

  void boolean(std::string_view key, bool& out) {
    const toml::node* n = node(key);
    if (!n) return;
    if (auto v = n->value<bool>()) {
      out = *v;
    } else {
      fail(n, key, "must be true or false");
    }
  }

  template <typename T>
  void integer(std::string_view key, T& out, int64_t min, int64_t max) {
    const toml::node* n = node(key);
    if (!n) return;
    auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
    if (!v || *v < min || *v > max) {
      fail(n, key, "must be an integer between " + std::to_string(min) + " and " +
                       std::to_string(max));
      return;
    }
    out = static_cast<T>(*v);
  }

  void strings(std::string_view key, std::vector<std::string>& out) {
    const toml::node* n = node(key);
    if (!n) return;
    const toml::array* a = n->as_array();
    if (!a) return fail(n, key, "must be an array of strings");
    out.clear();
    for (const auto& e : *a) {
      auto v = e.value<std::string>();
      if (!v) return fail(&e, key, "must be an array of strings");
      out.push_back(*v);
    }
  }

  // Reports keys nobody read: almost always a typo.
  void finish() {
    for (const auto& [k, v] : t_)
      if (!used_.count(std::string(k.str()))) fail(&v, k.str(), "unknown key");
  }

  std::string full(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  const toml::node* last_node(std::string_view key) const { return t_.get(key); }

 private:
  const toml::table& t_;
  std::string path_;
  const std::string& origin_;
  std::optional<core::Status>& err_;
  std::set<std::string> used_;
};

// Calls `fn(reader)` for the sub-table `name` if present.
template <typename Fn>
void with_table(TableReader& top, const toml::table& root, std::string_view name,
                const std::string& origin, std::optional<core::Status>& err, Fn fn) {
  const toml::node* n = top.node(name);
  if (!n) return;
  const toml::table* t = n->as_table();
  if (!t) return top.fail(n, name, "must be a table");
  TableReader r(*t, std::string(name), origin, err);
  fn(r);
  r.finish();
}

template <typename Fn>
void with_array_of_tables(TableReader& top, std::string_view name, const std::string& origin,
                          std::optional<core::Status>& err, Fn fn) {
  const toml::node* n = top.node(name);
  if (!n) return;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables()) return top.fail(n, name, "must be [[" + std::string(name) + "]] tables");
  size_t i = 0;
  for (const auto& e : *a) {
    TableReader r(*e.as_table(), std::string(name) + "[" + std::to_string(i++) + "]", origin, err);
    fn(r);
    r.finish();
  }
}

void read_tls_policy(TableReader& r, std::string_view key, TlsPolicy& out) {
  std::string v;
  r.str(key, v);
  if (v.empty()) return;
  if (v == "none") {
    out = TlsPolicy::kNone;
  } else if (v == "may") {
    out = TlsPolicy::kMay;
  } else if (v == "encrypt") {
    out = TlsPolicy::kEncrypt;
  } else if (v == "verify") {
    out = TlsPolicy::kVerify;
  } else {
    r.fail(r.last_node(key), key, "must be \"none\", \"may\", \"encrypt\" or \"verify\"");
  }
}

void read_check_mode(TableReader& r, std::string_view key, CheckMode& out) {
  std::string v;
  r.str(key, v);
  if (v.empty()) return;
  if (v == "enforce") {
    out = CheckMode::kEnforce;
  } else if (v == "report") {
    out = CheckMode::kReport;
  } else if (v == "off") {
    out = CheckMode::kOff;
  } else {
    r.fail(r.last_node(key), key, "must be \"enforce\", \"report\" or \"off\"");
  }
}

// Matches `domain` against a configured domain: itself or any subdomain.
bool covers(std::string_view configured, std::string_view domain) {
  if (domain == configured) return true;
  return domain.size() > configured.size() &&
         domain.substr(domain.size() - configured.size()) == configured &&
         domain[domain.size() - configured.size() - 1] == '.';
}

// One [[app]]. `api_keys` holds the key hashes of the apps read before it.
void read_app(TableReader& r, Config& c, std::set<std::string>& api_keys) {
  policy::App a;
  r.str("name", a.name);
  if (a.name.empty()) return r.fail(nullptr, "name", "every [[app]] needs a name");
  if (auto s = policy::validate_app_name(a.name); !s)
    return r.fail(r.last_node("name"), "name", s.message());
  const auto taken = [&a](const auto& list) {
    return std::any_of(list.begin(), list.end(),
                       [&a](const auto& x) { return core::iequals(x.name, a.name); });
  };
  if (taken(c.users) || taken(c.apps))
    return r.fail(r.last_node("name"), "name",
                  "\"" + a.name + "\" is already the login of a [[user]] or [[app]]");
  r.str("password", a.password_hash);
  if (!a.password_hash.empty() && (a.password_hash.size() < 3 || a.password_hash[0] != '$'))
    r.fail(r.last_node("password"), "password",
           "must be a crypt(3) hash made by `porter passwd` (starts with '$')");
  r.str("api_key_sha256", a.api_key_sha256);
  a.api_key_sha256 = core::to_lower_ascii(a.api_key_sha256);
  if (!a.api_key_sha256.empty()) {
    if (!policy::is_sha256_hex(a.api_key_sha256))
      r.fail(r.last_node("api_key_sha256"), "api_key_sha256",
             "must be 64 hex digits: the SHA-256 of the key (`printf %s KEY | sha256sum`)");
    else if (!api_keys.insert(a.api_key_sha256).second)
      r.fail(r.last_node("api_key_sha256"), "api_key_sha256", "another [[app]] has this key");
  }
  if (a.password_hash.empty() && a.api_key_sha256.empty())
    r.fail(nullptr, "password",
           "app " + a.name + " needs a password (SMTP AUTH) or an api_key_sha256 (HTTP API)");
  r.strings("senders", a.senders);
  if (a.senders.empty()) r.fail(r.last_node("senders"), "senders", "every [[app]] needs senders");
  for (const auto& entry : a.senders)
    if (auto s = policy::validate_sender(entry); !s)
      r.fail(r.last_node("senders"), "senders", s.message());
  r.integer("messages_per_minute", a.messages_per_minute, 0, 10000000);
  r.integer("messages_per_day", a.messages_per_day, 0, 1000000000);
  r.str("dkim_selector", a.dkim_selector);
  if (!a.dkim_selector.empty()) {
    // A key with this selector for one of the app's sender domains; mail with a From domain
    // lacking one is signed with all that domain's keys (DkimSigner::sign).
    const bool found = std::any_of(c.dkim_keys.begin(), c.dkim_keys.end(), [&](const auto& k) {
      return core::iequals(k.selector, a.dkim_selector) &&
             std::any_of(a.senders.begin(), a.senders.end(), [&](const std::string& entry) {
               return core::iequals(std::string_view(entry).substr(entry.rfind('@') + 1), k.domain);
             });
    });
    if (!found)
      r.fail(r.last_node("dkim_selector"), "dkim_selector",
             "no [[dkim]] key with selector \"" + a.dkim_selector +
                 "\" for a domain of this app's senders");
  }
  std::string route;
  r.str("route", route);
  if (route.empty()) {
    a.route = c.smarthost.empty() ? policy::App::Route::kDirect : policy::App::Route::kSmarthost;
  } else if (route == "direct") {
    a.route = policy::App::Route::kDirect;
  } else if (route == "smarthost") {
    a.route = policy::App::Route::kSmarthost;
    if (c.smarthost.empty())
      r.fail(r.last_node("route"), "route", "\"smarthost\" needs [delivery] smarthost");
  } else {
    r.fail(r.last_node("route"), "route", "must be \"direct\" (by MX) or \"smarthost\"");
  }
  r.strings("tags", a.tags);
  for (const auto& tag : a.tags)
    if (auto s = policy::validate_tag(tag); !s) r.fail(r.last_node("tags"), "tags", s.message());
  c.apps.push_back(std::move(a));
}

void read_config(const toml::table& root, Config& c, std::optional<core::Status>& err) {
  TableReader top(root, "", c.origin, err);
  with_table(top, root, "server", c.origin, err, [&](TableReader& r) {
    r.str("hostname", c.hostname);
    r.str("data_dir", c.data_dir);
    r.integer("threads", c.threads, 0, 256);
    r.str("user", c.run_as_user);
    r.integer("shutdown_grace_s", c.shutdown_grace_s, 0, 3600);
  });
  with_table(top, root, "tls", c.origin, err, [&](TableReader& r) {
    r.str("cert", c.tls_cert);
    r.str("key", c.tls_key);
    r.boolean("self_signed", c.tls_self_signed);
    if (c.tls_cert.empty() != c.tls_key.empty())
      r.fail(nullptr, "cert", "tls.cert and tls.key must be given together");
  });
  with_array_of_tables(top, "listener", c.origin, err, [&](TableReader& r) {
    ListenerConfig l;
    std::string role;
    r.str("role", role);
    if (role == "pop3" || role == "pop3s") {
      l.protocol = Protocol::kPop3;
      l.implicit_tls = role == "pop3s";
    } else if (role == "imap" || role == "imaps") {
      l.protocol = Protocol::kImap;
      l.implicit_tls = role == "imaps";
    } else if (auto parsed = policy::parse_role(role)) {
      l.role = *parsed;
      l.implicit_tls = *parsed == policy::ListenerRole::kSubmissions;
    } else {
      r.fail(r.last_node("role"), "role",
             "must be \"submission\", \"submissions\", \"relay\", \"pop3\", \"pop3s\", "
             "\"imap\" or \"imaps\"");
    }
    r.str("address", l.address);
    if (!core::IpAddress::parse(l.address))
      r.fail(r.last_node("address"), "address", "not an IP address: " + l.address);
    r.integer("port", l.port, 1, 65535);
    c.listeners.push_back(l);
  });
  with_table(top, root, "relay", c.origin, err, [&](TableReader& r) {
    std::vector<std::string> nets;
    r.strings("trusted_networks", nets);
    for (const auto& n : nets) {
      auto cidr = core::Cidr::parse(n);
      if (!cidr) return r.fail(r.last_node("trusted_networks"), "trusted_networks", cidr.status().message());
      c.trusted_networks.push_back(*cidr);
    }
    r.strings("local_domains", c.local_domains);
    for (auto& d : c.local_domains) {
      d = core::to_lower_ascii(d);
      if (!core::is_valid_domain(d, true))
        return r.fail(r.last_node("local_domains"), "local_domains", "not a domain: " + d);
    }
    r.str("recipient_delimiter", c.recipient_delimiter);
    if (c.recipient_delimiter.size() > 1 || c.recipient_delimiter == "@" ||
        (c.recipient_delimiter.size() == 1 &&
         static_cast<unsigned char>(c.recipient_delimiter[0]) <= ' '))
      r.fail(r.last_node("recipient_delimiter"), "recipient_delimiter",
             "must be one printable character other than '@', or empty");
    r.str("catch_all", c.catch_all);
  });
  with_array_of_tables(top, "alias", c.origin, err, [&](TableReader& r) {
    AliasConfig a;
    r.str("address", a.address);
    a.address = core::to_lower_ascii(a.address);
    auto parsed = core::parse_mailbox(a.address, true);
    if (!parsed || parsed->domain.empty())
      r.fail(r.last_node("address"), "address", "not an address: \"" + a.address + "\"");
    r.strings("users", a.users);
    if (a.users.empty()) r.fail(r.last_node("users"), "users", "every [[alias]] needs users");
    c.aliases.push_back(std::move(a));
  });
  with_table(top, root, "limits", c.origin, err, [&](TableReader& r) {
    r.integer("max_message_size", c.max_message_size, 1024, int64_t(4) << 30);
    r.integer("max_recipients", c.max_recipients, 1, 100000);
    r.integer("max_command_line", c.max_command_line, 512, 65536);
    r.integer("max_line_length", c.max_line_length, 78, 1 << 20);
    r.integer("max_errors", c.max_errors, 1, 1000);
    r.integer("idle_timeout", c.idle_timeout_s, 1, 86400);
    r.integer("session_timeout", c.session_timeout_s, 1, 7 * 86400);
    r.integer("max_connections", c.max_connections, 1, 1000000);
    r.integer("max_connections_per_ip", c.max_connections_per_ip, 1, 1000000);
    std::string bare_lf = "normalize";
    r.str("bare_lf", bare_lf);
    if (bare_lf == "normalize") {
      c.bare_lf = smtp::BareLfPolicy::kNormalize;
    } else if (bare_lf == "refuse") {
      c.bare_lf = smtp::BareLfPolicy::kRefuse;
    } else {
      r.fail(r.last_node("bare_lf"), "bare_lf", "must be \"normalize\" or \"refuse\"");
    }
  });
  with_table(top, root, "auth", c.origin, err, [&](TableReader& r) {
    r.integer("max_failures", c.auth_max_failures, 1, 1000);
    r.integer("failure_window", c.auth_window_s, 1, 86400);
    r.integer("lockout", c.auth_lockout_s, 0, 86400);
    r.integer("max_delay_ms", c.auth_max_delay_ms, 0, 60000);
    r.str("users_file", c.users_file);
  });
  with_array_of_tables(top, "user", c.origin, err, [&](TableReader& r) {
    UserConfig u;
    r.str("name", u.name);
    r.str("password", u.password_hash);
    r.strings("addresses", u.addresses);
    uint64_t quota_mb = 0;
    r.integer("quota_mb", quota_mb, 0, int64_t(1) << 24);
    u.quota_bytes = quota_mb << 20;
    if (u.name.empty()) r.fail(nullptr, "name", "every [[user]] needs a name");
    if (u.password_hash.size() < 3 || u.password_hash[0] != '$')
      r.fail(r.last_node("password"), "password",
             "must be a crypt(3) hash made by `porter passwd` (starts with '$')");
    c.users.push_back(std::move(u));
  });
  with_table(top, root, "submission", c.origin, err, [&](TableReader& r) {
    r.boolean("check_sender", c.check_sender);
    r.boolean("add_message_id", c.add_message_id);
    r.boolean("add_date", c.add_date);
    std::string alignment;
    r.str("dmarc_alignment", alignment);
    if (alignment == "off") {
      c.dmarc_alignment = AlignmentMode::kOff;
    } else if (alignment == "warn") {
      c.dmarc_alignment = AlignmentMode::kWarn;
    } else if (alignment == "refuse") {
      c.dmarc_alignment = AlignmentMode::kRefuse;
    } else if (!alignment.empty()) {
      r.fail(r.last_node("dmarc_alignment"), "dmarc_alignment",
             "must be \"off\", \"warn\" or \"refuse\"");
    }
  });
  with_table(top, root, "inbound", c.origin, err, [&](TableReader& r) {
    read_check_mode(r, "spf", c.spf);
    r.boolean("dkim", c.dkim_verify);
    read_check_mode(r, "dmarc", c.dmarc);
    r.str("authserv_id", c.authserv_id);
    if (!c.authserv_id.empty() && !core::is_valid_domain(c.authserv_id, false))
      r.fail(r.last_node("authserv_id"), "authserv_id", "must be a host name");
  });
  with_table(top, root, "rate", c.origin, err, [&](TableReader& r) {
    r.integer("window", c.rate_window_s, 1, 7 * 86400);
    r.integer("user_messages", c.user_messages, 0, 100000000);
    r.integer("user_recipients", c.user_recipients, 0, 100000000);
    r.integer("client_messages", c.client_messages, 0, 100000000);
    r.integer("client_recipients", c.client_recipients, 0, 100000000);
  });
  with_table(top, root, "delivery", c.origin, err, [&](TableReader& r) {
    r.boolean("enabled", c.delivery_enabled);
    std::string smarthost;
    r.str("smarthost", smarthost);
    if (!smarthost.empty()) {
      const size_t colon = smarthost.rfind(':');
      c.smarthost = smarthost.substr(0, colon);
      if (colon != std::string::npos) {
        int port = 0;
        auto [end, ec] = std::from_chars(smarthost.data() + colon + 1,
                                         smarthost.data() + smarthost.size(), port);
        if (ec != std::errc() || end != smarthost.data() + smarthost.size() || port < 1 ||
            port > 65535)
          r.fail(r.last_node("smarthost"), "smarthost", "must be \"host\" or \"host:port\"");
        c.smarthost_port = static_cast<uint16_t>(port);
      }
    }
    r.str("smarthost_user", c.smarthost_user);
    r.str("smarthost_password", c.smarthost_password);
    read_tls_policy(r, "smarthost_tls", c.smarthost_tls);
    r.integer("remote_port", c.remote_port, 1, 65535);
    r.strings("dns_servers", c.dns_servers);
    read_tls_policy(r, "tls", c.default_tls);
    r.str("tls_ca_file", c.tls_ca_file);
    r.integer("max_connections", c.max_delivery_connections, 1, 100000);
    r.integer("max_connections_per_destination", c.max_connections_per_destination, 1, 10000);
    r.integer("messages_per_connection", c.messages_per_connection, 1, 100000);
    r.integer("connect_timeout", c.connect_timeout_s, 1, 600);
    r.integer("command_timeout", c.command_timeout_s, 1, 3600);
    if (const toml::node* n = r.node("retry")) {
      const toml::array* a = n->as_array();
      c.retry_s.clear();
      if (a) {
        for (const auto& e : *a) {
          auto v = e.value<int64_t>();
          if (!v || *v < 1 || *v > 7 * 86400) {
            c.retry_s.clear();
            break;
          }
          c.retry_s.push_back(static_cast<uint32_t>(*v));
        }
      }
      if (c.retry_s.empty())
        r.fail(n, "retry", "must be a non-empty array of seconds between 1 and 604800");
    }
    r.integer("max_lifetime", c.max_lifetime_s, 60, 60 * 86400);
    r.integer("delay_warning", c.delay_warning_s, 0, 60 * 86400);
    r.integer("messages_per_minute_per_destination", c.messages_per_minute_per_destination, 0,
              10000000);
    if (const toml::node* n = r.node("throttle")) {
      const toml::array* a = n->as_array();
      if (!a || !a->is_array_of_tables())
        return r.fail(n, "throttle", "must be [[delivery.throttle]] tables");
      size_t i = 0;
      for (const auto& e : *a) {
        TableReader t(*e.as_table(), "delivery.throttle[" + std::to_string(i++) + "]",
                      c.origin, err);
        DestinationThrottle th;
        t.str("domain", th.domain);
        th.domain = core::to_lower_ascii(th.domain);
        if (!core::is_valid_domain(th.domain, true))
          t.fail(t.last_node("domain"), "domain", "not a domain: " + th.domain);
        t.integer("messages_per_minute", th.messages_per_minute, 0, 10000000);
        t.finish();
        c.throttles.push_back(th);
      }
    }
    if (const toml::node* n = r.node("tls_policy")) {
      const toml::array* a = n->as_array();
      if (!a || !a->is_array_of_tables())
        return r.fail(n, "tls_policy", "must be [[delivery.tls_policy]] tables");
      size_t i = 0;
      for (const auto& e : *a) {
        TableReader t(*e.as_table(), "delivery.tls_policy[" + std::to_string(i++) + "]",
                      c.origin, err);
        DomainTlsPolicy p;
        t.str("domain", p.domain);
        p.domain = core::to_lower_ascii(p.domain);
        if (!core::is_valid_domain(p.domain, true))
          t.fail(t.last_node("domain"), "domain", "not a domain: " + p.domain);
        read_tls_policy(t, "policy", p.policy);
        t.finish();
        c.tls_policies.push_back(p);
      }
    }
  });
  with_array_of_tables(top, "dkim", c.origin, err, [&](TableReader& r) {
    DkimKeyConfig k;
    r.str("domain", k.domain);
    k.domain = core::to_lower_ascii(k.domain);
    if (!core::is_valid_domain(k.domain, false))
      r.fail(r.last_node("domain"), "domain", "not a domain: \"" + k.domain + "\"");
    r.str("selector", k.selector);
    if (k.selector.empty()) r.fail(nullptr, "selector", "every [[dkim]] needs a selector");
    r.str("algorithm", k.algorithm);
    if (k.algorithm != "rsa-sha256" && k.algorithm != "ed25519-sha256")
      r.fail(r.last_node("algorithm"), "algorithm", "must be \"rsa-sha256\" or \"ed25519-sha256\"");
    r.str("key_file", k.key_file);
    if (k.key_file.empty()) r.fail(nullptr, "key_file", "every [[dkim]] needs a key_file");
    c.dkim_keys.push_back(std::move(k));
  });
  // After [[user]], [delivery] and [[dkim]]: an app's name, route and selector refer to them.
  std::set<std::string> api_keys;
  with_array_of_tables(top, "app", c.origin, err,
                       [&](TableReader& r) { read_app(r, c, api_keys); });
  with_table(top, root, "suppression", c.origin, err, [&](TableReader& r) {
    r.boolean("enabled", c.suppression_enabled);
    std::string action;
    r.str("action", action);
    // "refuse" is the one action so far: 550 5.1.1 at RCPT TO, naming the reason.
    if (action == "drop")
      r.fail(r.last_node("action"), "action",
             "\"drop\" (accept and not deliver) is not implemented yet; use \"refuse\"");
    else if (!action.empty() && action != "refuse")
      r.fail(r.last_node("action"), "action", "must be \"refuse\"");
    r.integer("expire_days", c.suppression_expire_days, 0, 36500);
  });
  with_table(top, root, "log", c.origin, err, [&](TableReader& r) {
    r.str("level", c.log_level);
    if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
        c.log_level != "error")
      r.fail(r.last_node("level"), "level", "must be debug, info, warn or error");
    std::string format = "text";
    r.str("format", format);
    if (format != "text" && format != "json")
      r.fail(r.last_node("format"), "format", "must be \"text\" (key=value) or \"json\"");
    c.log_json = format == "json";
    r.str("file", c.log_file);
  });
  with_table(top, root, "admin", c.origin, err, [&](TableReader& r) {
    r.str("socket", c.admin_socket);
    std::string mode;
    r.str("socket_mode", mode);
    if (!mode.empty()) {
      char* end = nullptr;
      const unsigned long m = std::strtoul(mode.c_str(), &end, 8);
      if (*end != 0 || m > 0777 || (m & 0600) != 0600)
        r.fail(r.last_node("socket_mode"), "socket_mode",
               "must be an octal mode such as \"0600\" or \"0660\" that the owner can use");
      c.admin_socket_mode = static_cast<uint32_t>(m);
    }
    r.str("listen", c.admin_listen);
    if (!c.admin_listen.empty()) {
      const size_t colon = c.admin_listen.rfind(':');
      std::string host = colon == std::string::npos ? "" : c.admin_listen.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
      const auto ip = core::IpAddress::parse(host);
      const auto loopback = core::Cidr::parse(ip && !ip->is_v4() ? "::1/128" : "127.0.0.0/8");
      unsigned long port = 0;
      if (colon != std::string::npos) {
        char* end = nullptr;
        port = std::strtoul(c.admin_listen.c_str() + colon + 1, &end, 10);
        if (*end != 0 || colon + 1 == c.admin_listen.size()) port = 0;
      }
      if (!ip || !loopback || !loopback->contains(*ip) || port == 0 || port > 65535)
        r.fail(r.last_node("listen"), "listen",
               "must be a loopback address and port such as \"127.0.0.1:8025\" or \"[::1]:8025\"");
      c.admin_listen_host = host;
      c.admin_listen_port = static_cast<uint16_t>(port);
    }
    r.str("token_file", c.admin_token_file);
    if (!c.admin_listen.empty() && c.admin_token_file.empty())
      r.fail(r.last_node("listen"), "listen", "a TCP admin listener needs admin.token_file");
  });
  top.finish();
  if (!err && !c.catch_all.empty() && c.local_domains.empty())
    err = core::Status::invalid(c.origin + ": relay.catch_all is set but relay.local_domains is empty");
  if (!err && c.listeners.empty())
    err = core::Status::invalid(c.origin + ": no [[listener]] configured; nothing to do");
}

}  // namespace

// The entry of `entries` whose domain covers `domain` most specifically, or nullptr.
template <typename T>
const T* most_specific(const std::vector<T>& entries, std::string_view domain) {
  const T* best = nullptr;
  for (const auto& e : entries)
    if (covers(e.domain, domain) && (!best || e.domain.size() > best->domain.size())) best = &e;
  return best;
}

TlsPolicy tls_policy_for(const Config& c, std::string_view domain) {
  const DomainTlsPolicy* best = most_specific(c.tls_policies, domain);
  return best ? best->policy : c.default_tls;
}

uint32_t throttle_for(const Config& c, std::string_view domain) {
  const DestinationThrottle* best = most_specific(c.throttles, domain);
  return best ? best->messages_per_minute : c.messages_per_minute_per_destination;
}

std::string admin_socket_path(const Config& c) {
  if (c.admin_socket.empty() || c.admin_socket.front() == '/') return c.admin_socket;
  return c.data_dir + "/" + c.admin_socket;
}

std::string queue_dir(const Config& c) { return c.data_dir + "/queue"; }

const char* tls_policy_name(TlsPolicy p) {
  switch (p) {
    case TlsPolicy::kNone: return "none";
    case TlsPolicy::kMay: return "may";
    case TlsPolicy::kEncrypt: return "encrypt";
    case TlsPolicy::kVerify: return "verify";
  }
  return "?";
}

core::Result<Config> load_config_string(const std::string& text, const std::string& origin) {
  Config c;
  c.origin = origin;
  std::optional<core::Status> err;
  try {
    toml::table root = toml::parse(text, origin);
    read_config(root, c, err);
  } catch (const toml::parse_error& e) {
    return core::Status::invalid(origin + ":" + std::to_string(e.source().begin.line) + ": " +
                                 std::string(e.description()));
  }
  if (err) return *err;
  if (c.hostname.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    c.hostname = host[0] ? host : "localhost";
  }
  if (c.authserv_id.empty()) c.authserv_id = c.hostname;
  return c;
}

core::Result<Config> load_config_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return core::Status::io("cannot open config file " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  std::fclose(f);
  return load_config_string(text, path);
}

const std::string& embedded_default_config() {
  static const std::string kText = R"(# Porter's embedded development default: loopback only, unprivileged ports.
[server]
data_dir = "./var"

[tls]
cert = "./var/tls/cert.pem"
key = "./var/tls/key.pem"
self_signed = true

[[listener]]
role = "relay"
address = "127.0.0.1"
port = 2525

[[listener]]
role = "submission"
address = "127.0.0.1"
port = 2587

[[listener]]
role = "submissions"
address = "127.0.0.1"
port = 2465

[[listener]]
role = "pop3"
address = "127.0.0.1"
port = 2110

[[listener]]
role = "pop3s"
address = "127.0.0.1"
port = 2995

[[listener]]
role = "imap"
address = "127.0.0.1"
port = 2143

[[listener]]
role = "imaps"
address = "127.0.0.1"
port = 2993

[relay]
trusted_networks = ["127.0.0.0/8", "::1/128"]
local_domains = ["porter.test"]
# Every address in porter.test reaches the demo user's mailbox.
catch_all = "demo"

[auth]
users_file = "./var/users"
)";
  return kText;
}

}  // namespace mta
