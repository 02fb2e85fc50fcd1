#pragma once
// Porter's configuration: one TOML file, validated completely at start.
//
// load_config() parses and checks every key; an error names the key and the line
// ("porter.toml:12: limits.max_recipients: must be between 1 and 100000"), and unknown keys
// are errors too, so a typo never silently falls back to a default. With no file,
// embedded_default_config() is the development default (loopback, unprivileged ports,
// data in ./var, self-signed certificate) documented in the README.
//
// Limits: values are read once; reloading is a later concern of the daemon.

#include <cstdint>
#include <string>
#include <vector>

#include "core/cidr.h"
#include "core/status.h"
#include "mta/smtp/body_decoder.h"
#include "mta/smtp/client_session.h"
#include "policy/apps.h"
#include "policy/inbound_verdict.h"
#include "policy/relay.h"

namespace mta {

// Which protocol a [[listener]] speaks: its role "submission", "submissions" or "relay"
// is SMTP; "pop3" and "pop3s" are POP3, "imap" and "imaps" IMAP (the "s" ones implicit TLS).
enum class Protocol { kSmtp, kPop3, kImap };

struct ListenerConfig {
  Protocol protocol = Protocol::kSmtp;
  policy::ListenerRole role = policy::ListenerRole::kRelay;  // for SMTP
  bool implicit_tls = false;  // submissions, pop3s and imaps
  std::string address = "127.0.0.1";
  uint16_t port = 25;
};

using smtp::TlsPolicy;

struct DomainTlsPolicy {
  std::string domain;  // lower case; applies to the domain and its subdomains
  TlsPolicy policy = TlsPolicy::kMay;
  bool operator==(const DomainTlsPolicy&) const = default;
};

struct DkimKeyConfig {
  std::string domain;     // lower case: the From domain this key signs for
  std::string selector;
  std::string algorithm = "rsa-sha256";  // or "ed25519-sha256"
  std::string key_file;   // PEM private key, from `porter dkim keygen`
};

struct UserConfig {
  std::string name;
  std::string password_hash;
  std::vector<std::string> addresses;  // "a@b" or "@domain"
  uint64_t quota_bytes = 0;            // mailbox quota; 0: none
};

// [[alias]]: one local address delivered to several users.
struct AliasConfig {
  std::string address;             // lower case "local@domain", in a local domain
  std::vector<std::string> users;  // logins
};

// [[delivery.throttle]]: how many messages per minute one destination domain gets.
struct DestinationThrottle {
  std::string domain;  // lower case; applies to the domain and its subdomains
  uint32_t messages_per_minute = 0;
  bool operator==(const DestinationThrottle&) const = default;
};

// What an inbound check does with its result: act on it, only record it, or not run.
using policy::CheckMode;
// What submission does when the From domain publishes DMARC and Porter holds no DKIM key.
enum class AlignmentMode { kOff, kWarn, kRefuse };

struct Config {
  std::string origin;  // file name or "<embedded default>", for messages
  // [server]
  std::string hostname;
  std::string data_dir = "/var/lib/porter";
  int threads = 0;  // 0: one loop per core
  std::string run_as_user;  // drop to this user after binding when started as root
  uint32_t shutdown_grace_s = 30;  // SIGTERM: how long open transactions may take to finish
  // [tls]
  std::string tls_cert;
  std::string tls_key;
  bool tls_self_signed = false;  // make cert and key if missing
  // [[listener]]
  std::vector<ListenerConfig> listeners;
  // [relay]
  std::vector<core::Cidr> trusted_networks;
  std::vector<std::string> local_domains;
  std::string recipient_delimiter = "+";  // user+tag@domain is user@domain; empty: off
  std::string catch_all;                  // login receiving unknown local addresses; empty: none
  std::vector<AliasConfig> aliases;       // [[alias]]
  // [limits]
  uint64_t max_message_size = 50ull << 20;
  uint32_t max_recipients = 1000;
  uint32_t max_command_line = 2048;
  uint32_t max_line_length = 998;
  uint32_t max_errors = 20;
  uint32_t idle_timeout_s = 300;      // RFC 5321 §4.5.3.2.7 server timeout: 5 minutes
  uint32_t session_timeout_s = 3600;
  uint32_t max_connections = 2000;
  uint32_t max_connections_per_ip = 50;
  smtp::BareLfPolicy bare_lf = smtp::BareLfPolicy::kNormalize;
  // [auth]
  uint32_t auth_max_failures = 5;
  uint32_t auth_window_s = 900;
  uint32_t auth_lockout_s = 900;
  uint32_t auth_max_delay_ms = 5000;
  std::string users_file;
  std::vector<UserConfig> users;  // [[user]]
  // [[app]]: applications sending through Porter (policy/apps.h). An app's route defaults to
  // "smarthost" when [delivery] smarthost is set, else "direct".
  std::vector<policy::App> apps;
  // [submission]
  bool check_sender = true;   // envelope sender and From must belong to the user
  bool add_message_id = true;
  bool add_date = true;
  AlignmentMode dmarc_alignment = AlignmentMode::kWarn;
  // [inbound]: checks on port 25 mail from clients neither trusted nor authenticated
  CheckMode spf = CheckMode::kEnforce;    // enforce: SPF fail for MAIL FROM is refused (550 5.7.23)
  bool dkim_verify = true;
  CheckMode dmarc = CheckMode::kEnforce;  // enforce: p=reject refused, p=quarantine to Junk
  std::string authserv_id;                // empty: the host name
  // [rate]: 0 is unlimited; counted over a sliding window
  uint32_t rate_window_s = 3600;
  uint32_t user_messages = 0;       // per authenticated user
  uint32_t user_recipients = 0;
  uint32_t client_messages = 0;     // per client address (IPv6 per /64)
  uint32_t client_recipients = 0;
  // [delivery]
  bool delivery_enabled = true;
  std::string smarthost;          // "host" or "host:port"; empty: deliver by MX
  uint16_t smarthost_port = 25;
  std::string smarthost_user;     // AUTH PLAIN to the smarthost when set
  std::string smarthost_password;
  TlsPolicy smarthost_tls = TlsPolicy::kEncrypt;
  uint16_t remote_port = 25;      // the port MX hosts are contacted on (tests change it)
  std::vector<std::string> dns_servers;  // "ip" or "ip:port"; empty: /etc/resolv.conf
  TlsPolicy default_tls = TlsPolicy::kMay;  // opportunistic STARTTLS (RFC 3207)
  std::vector<DomainTlsPolicy> tls_policies;
  std::string tls_ca_file;        // for "verify"; empty: the system store
  uint32_t max_delivery_connections = 100;
  uint32_t max_connections_per_destination = 10;
  uint32_t messages_per_connection = 100;
  uint32_t connect_timeout_s = 30;
  uint32_t command_timeout_s = 300;  // RFC 5321 §4.5.3.2: 5 minutes for most replies
  std::vector<uint32_t> retry_s = {60, 300, 900, 1800, 3600, 7200, 14400};
  uint32_t max_lifetime_s = 5 * 86400;
  uint32_t delay_warning_s = 4 * 3600;  // 0: never
  uint32_t messages_per_minute_per_destination = 0;  // 0: unlimited
  std::vector<DestinationThrottle> throttles;         // [[delivery.throttle]] overrides
  // [[dkim]]: keys that sign accepted mail whose From domain they name
  std::vector<DkimKeyConfig> dkim_keys;
  // [suppression]: addresses that must not be mailed again (hard bounces, complaints)
  bool suppression_enabled = true;
  uint32_t suppression_expire_days = 30;  // 0: entries never expire
  // [log]
  std::string log_level = "info";
  bool log_json = false;  // format = "json": one JSON object per line
  std::string log_file;   // empty: stderr (journald)
  // [admin]: the admin HTTP API (JSON); the `porter` CLI talks to it
  std::string admin_socket = "admin.sock";  // relative to data_dir; "" disables
  uint32_t admin_socket_mode = 0600;
  std::string admin_listen;      // "127.0.0.1:8025": also on TCP (loopback only); "" off
  std::string admin_listen_host;  // admin_listen's address, without brackets
  uint16_t admin_listen_port = 0;
  std::string admin_token_file;  // its first line: the bearer token TCP clients must send
};

// The admin socket's path: admin_socket made absolute against data_dir ("" when disabled).
std::string admin_socket_path(const Config& c);
// Where the queue's RocksDB instance lives: data_dir/queue.
std::string queue_dir(const Config& c);

// Messages per minute allowed to a destination domain (0: unlimited): the most specific
// [[delivery.throttle]], else delivery.messages_per_minute_per_destination.
uint32_t throttle_for(const Config& c, std::string_view domain);

// The STARTTLS policy for a destination domain: the most specific [[delivery.tls_policy]]
// entry, else the default.
TlsPolicy tls_policy_for(const Config& c, std::string_view domain);
const char* tls_policy_name(TlsPolicy p);

core::Result<Config> load_config_file(const std::string& path);
core::Result<Config> load_config_string(const std::string& text, const std::string& origin);
// The development default; `data_dir` relative paths are relative to the working directory.
const std::string& embedded_default_config();

}  // namespace mta
