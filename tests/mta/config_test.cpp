#include "mta/config.h"

#include <catch2/catch.hpp>

using mta::load_config_string;

namespace {
const std::string kListener = "[[listener]]\nrole = \"relay\"\nport = 2525\n";
}

TEST_CASE("config: the embedded default and the example file are valid", "[mta][unit]") {
  auto c = load_config_string(mta::embedded_default_config(), "<embedded>");
  REQUIRE(c);
  CHECK(c->listeners.size() == 7);
  int pop3 = 0, imap = 0;
  for (const auto& l : c->listeners) {
    CHECK(l.address == "127.0.0.1");
    if (l.protocol == mta::Protocol::kPop3) ++pop3;
    if (l.protocol == mta::Protocol::kImap) ++imap;
  }
  CHECK(pop3 == 2);
  CHECK(imap == 2);
  CHECK(c->catch_all == "demo");
  CHECK(c->data_dir == "./var");
  CHECK(c->tls_self_signed);
  auto example = mta::load_config_file(PORTER_EXAMPLE_CONFIG);
  INFO(example.status().message());
  CHECK(example);
}

TEST_CASE("config: values are read", "[mta][unit]") {
  auto c = load_config_string(kListener +
                                  "[limits]\nmax_recipients = 7\nbare_lf = \"refuse\"\n"
                                  "[relay]\ntrusted_networks = [\"10.0.0.0/8\"]\n"
                                  "local_domains = [\"Example.COM\"]\n",
                              "t.toml");
  REQUIRE(c);
  CHECK(c->max_recipients == 7);
  CHECK(c->bare_lf == mta::smtp::BareLfPolicy::kRefuse);
  CHECK(c->local_domains == std::vector<std::string>{"example.com"});
  CHECK(c->trusted_networks.size() == 1);
}

TEST_CASE("config: errors name file, line and key", "[mta][unit]") {
  auto [text, expected] = GENERATE(table<std::string, std::string>({
      {kListener + "[limits]\nmax_recipients = 0\n", "t.toml:5: limits.max_recipients: must be"},
      {kListener + "[limits]\nmax_recipents = 5\n", "t.toml:5: limits.max_recipents: unknown key"},
      {kListener + "[relay]\ntrusted_networks = [\"10.0.0.0/33\"]\n",
       "t.toml:5: relay.trusted_networks: bad prefix length"},
      {"[[listener]]\nrole = \"mx\"\n", "t.toml:2: listener[0].role: must be"},
      {"[[listener]]\nrole = \"relay\"\nport = 70000\n", "t.toml:3: listener[0].port: must be"},
      {kListener + "[server]\nthreads = \"two\"\n", "t.toml:5: server.threads: must be an integer"},
      {kListener + "[[user]]\nname = \"a\"\npassword = \"plain\"\n",
       "t.toml:6: user[0].password: must be a crypt(3) hash"},
      {kListener + "[limits\n", "t.toml:4:"},
      {"", "t.toml: no [[listener]] configured"},
      {"bogus = 1\n" + kListener, "t.toml:1: bogus: unknown key"},
      {kListener + "bogus = 1\n", "t.toml:4: listener[0].bogus: unknown key"},
  }));
  auto c = load_config_string(text, "t.toml");
  REQUIRE_FALSE(c);
  INFO(c.status().message());
  CHECK(c.status().message().rfind(expected, 0) == 0);
}

TEST_CASE("config: delivery settings and per-domain TLS policy", "[mta][unit]") {
  auto c = load_config_string(kListener +
                                  "[delivery]\nsmarthost = \"relay.example.com:587\"\n"
                                  "smarthost_tls = \"verify\"\nretry = [10, 20]\n"
                                  "dns_servers = [\"127.0.0.1:5353\"]\ntls = \"none\"\n"
                                  "[[delivery.tls_policy]]\ndomain = \"Example.com\"\n"
                                  "policy = \"encrypt\"\n"
                                  "[[delivery.tls_policy]]\ndomain = \"secure.example.com\"\n"
                                  "policy = \"verify\"\n",
                              "t.toml");
  REQUIRE(c);
  CHECK(c->smarthost == "relay.example.com");
  CHECK(c->smarthost_port == 587);
  CHECK(c->smarthost_tls == mta::TlsPolicy::kVerify);
  CHECK(c->retry_s == std::vector<uint32_t>{10, 20});
  CHECK(c->dns_servers == std::vector<std::string>{"127.0.0.1:5353"});
  CHECK(mta::tls_policy_for(*c, "example.com") == mta::TlsPolicy::kEncrypt);
  CHECK(mta::tls_policy_for(*c, "mx.example.com") == mta::TlsPolicy::kEncrypt);
  CHECK(mta::tls_policy_for(*c, "secure.example.com") == mta::TlsPolicy::kVerify);
  CHECK(mta::tls_policy_for(*c, "a.secure.example.com") == mta::TlsPolicy::kVerify);
  CHECK(mta::tls_policy_for(*c, "badexample.com") == mta::TlsPolicy::kNone);
  CHECK(mta::tls_policy_for(*c, "other.org") == mta::TlsPolicy::kNone);
}

TEST_CASE("config: delivery errors name the key", "[mta][unit]") {
  auto [text, expected] = GENERATE(table<std::string, std::string>({
      {kListener + "[delivery]\ntls = \"sometimes\"\n", "t.toml:5: delivery.tls: must be"},
      {kListener + "[delivery]\nsmarthost = \"h:99999\"\n", "t.toml:5: delivery.smarthost: must be"},
      {kListener + "[delivery]\nretry = []\n", "t.toml:5: delivery.retry: must be a non-empty"},
      {kListener + "[[delivery.tls_policy]]\ndomain = \"a..b\"\n",
       "t.toml:5: delivery.tls_policy[0].domain: not a domain"},
      {kListener + "[[dkim]]\ndomain = \"a.test\"\nselector = \"s\"\nkey_file = \"k\"\n"
                   "algorithm = \"rsa-sha1\"\n",
       "t.toml:8: dkim[0].algorithm: must be"},
  }));
  auto c = load_config_string(text, "t.toml");
  REQUIRE_FALSE(c);
  INFO(c.status().message());
  CHECK(c.status().message().rfind(expected, 0) == 0);
}

TEST_CASE("config: inbound checks, rates, throttles, aliases and POP3", "[mta][unit]") {
  auto c = load_config_string(kListener +
                                  "[[listener]]\nrole = \"pop3s\"\nport = 995\n"
                                  "[inbound]\nspf = \"report\"\ndkim = false\ndmarc = \"off\"\n"
                                  "[submission]\ndmarc_alignment = \"refuse\"\n"
                                  "[rate]\nwindow = 60\nuser_messages = 5\nclient_recipients = 9\n"
                                  "[delivery]\nmessages_per_minute_per_destination = 100\n"
                                  "[[delivery.throttle]]\ndomain = \"Example.com\"\n"
                                  "messages_per_minute = 3\n"
                                  "[relay]\nlocal_domains = [\"l.test\"]\ncatch_all = \"x\"\n"
                                  "[[alias]]\naddress = \"Team@L.test\"\nusers = [\"a\", \"b\"]\n",
                              "t.toml");
  INFO(c.status().message());
  REQUIRE(c);
  CHECK(c->listeners[1].protocol == mta::Protocol::kPop3);
  CHECK(c->listeners[1].implicit_tls);
  CHECK(c->spf == mta::CheckMode::kReport);
  CHECK_FALSE(c->dkim_verify);
  CHECK(c->dmarc == mta::CheckMode::kOff);
  CHECK(c->dmarc_alignment == mta::AlignmentMode::kRefuse);
  CHECK(c->rate_window_s == 60);
  CHECK(c->user_messages == 5);
  CHECK(c->client_recipients == 9);
  CHECK(mta::throttle_for(*c, "example.com") == 3);
  CHECK(mta::throttle_for(*c, "mx.example.com") == 3);
  CHECK(mta::throttle_for(*c, "other.org") == 100);
  REQUIRE(c->aliases.size() == 1);
  CHECK(c->aliases[0].address == "team@l.test");
  CHECK(c->authserv_id == c->hostname);
}

TEST_CASE("config: policy errors name the key", "[mta][unit]") {
  auto [text, expected] = GENERATE(table<std::string, std::string>({
      {kListener + "[inbound]\nspf = \"strict\"\n", "t.toml:5: inbound.spf: must be"},
      {kListener + "[submission]\ndmarc_alignment = 1\n",
       "t.toml:5: submission.dmarc_alignment: must be a string"},
      {kListener + "[rate]\nwindow = 0\n", "t.toml:5: rate.window: must be an integer"},
      {kListener + "[relay]\nrecipient_delimiter = \"@\"\n",
       "t.toml:5: relay.recipient_delimiter: must be one printable character"},
      {kListener + "[[alias]]\naddress = \"nope\"\nusers = [\"a\"]\n",
       "t.toml:5: alias[0].address: not an address"},
      {kListener + "[[listener]]\nrole = \"imap4\"\n", "t.toml:5: listener[1].role: must be"},
  }));
  auto c = load_config_string(text, "t.toml");
  REQUIRE_FALSE(c);
  CHECK_THAT(c.status().message(), Catch::StartsWith(expected));
}

TEST_CASE("config: admin API, logs and shutdown", "[mta][unit]") {
  SECTION("defaults: a socket in data_dir, no TCP, text logs on stderr") {
    auto c = load_config_string(kListener + "[server]\ndata_dir = \"/srv/p\"\n", "t.toml");
    REQUIRE(c);
    CHECK(mta::admin_socket_path(*c) == "/srv/p/admin.sock");
    CHECK(c->admin_socket_mode == 0600);
    CHECK(c->admin_listen.empty());
    CHECK_FALSE(c->log_json);
    CHECK(c->log_file.empty());
    CHECK(c->shutdown_grace_s == 30);
  }
  SECTION("values are read") {
    auto c = load_config_string(
        kListener +
            "[server]\nshutdown_grace_s = 5\n[log]\nformat = \"json\"\nfile = \"/var/log/p.log\"\n"
            "[admin]\nsocket = \"/run/porter/admin.sock\"\nsocket_mode = \"0660\"\n"
            "listen = \"127.0.0.1:8025\"\ntoken_file = \"/etc/porter/token\"\n",
        "t.toml");
    REQUIRE(c);
    CHECK(c->shutdown_grace_s == 5);
    CHECK(c->log_json);
    CHECK(c->log_file == "/var/log/p.log");
    CHECK(mta::admin_socket_path(*c) == "/run/porter/admin.sock");
    CHECK(c->admin_socket_mode == 0660);
    CHECK(c->admin_listen == "127.0.0.1:8025");
  }
  SECTION("an empty socket turns the socket off") {
    auto c = load_config_string(kListener + "[admin]\nsocket = \"\"\n", "t.toml");
    REQUIRE(c);
    CHECK(mta::admin_socket_path(*c).empty());
  }
}

TEST_CASE("config: admin and log errors name the key", "[mta][unit]") {
  auto [text, expected] = GENERATE(table<std::string, std::string>({
      {kListener + "[admin]\nlisten = \"0.0.0.0:8025\"\ntoken_file = \"/t\"\n",
       "t.toml:5: admin.listen: must be a loopback address"},
      {kListener + "[admin]\nlisten = \"127.0.0.1:8025\"\n",
       "t.toml:5: admin.listen: a TCP admin listener needs admin.token_file"},
      {kListener + "[admin]\nsocket_mode = \"0644x\"\n", "t.toml:5: admin.socket_mode: must be"},
      {kListener + "[admin]\nsocket_mode = \"0066\"\n", "t.toml:5: admin.socket_mode: must be"},
      {kListener + "[log]\nformat = \"xml\"\n", "t.toml:5: log.format: must be"},
      {kListener + "[server]\nshutdown_grace_s = -1\n", "t.toml:5: server.shutdown_grace_s: must be"},
  }));
  auto c = load_config_string(text, "t.toml");
  REQUIRE_FALSE(c);
  INFO(c.status().message());
  CHECK(c.status().message().rfind(expected, 0) == 0);
}

TEST_CASE("config: admin.listen must be a loopback address with a port", "[mta][unit]") {
  auto listen = GENERATE(as<std::string>{}, "127.0.0.1:99999", "127.0.0.1:0", "127.example.com:8025",
                         "10.0.0.1:8025", "[::2]:8025", "127.0.0.1", "127.0.0.1:80x");
  auto c = load_config_string(
      kListener + "[admin]\nlisten = \"" + listen + "\"\ntoken_file = \"/t\"\n", "t.toml");
  INFO(listen);
  REQUIRE_FALSE(c);
  CHECK(c.status().message().rfind("t.toml:5: admin.listen: must be a loopback", 0) == 0);
}

TEST_CASE("config: admin.listen accepts loopback addresses", "[mta][unit]") {
  auto listen = GENERATE(as<std::string>{}, "127.0.0.1:8025", "127.0.0.2:1", "[::1]:65535");
  INFO(listen);
  CHECK(load_config_string(
      kListener + "[admin]\nlisten = \"" + listen + "\"\ntoken_file = \"/t\"\n", "t.toml"));
}

namespace {
// A SHA-512-crypt hash (format only matters here) and a SHA-256 in hex.
const std::string kHash =
    "$6$salt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ./01";
const std::string kKeyHash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kDkim =
    "[[dkim]]\ndomain = \"billing.example\"\nselector = \"apps\"\nkey_file = \"k\"\n";
}  // namespace

TEST_CASE("config: [[app]] tables and [suppression]", "[mta][unit]") {
  SECTION("values are read") {
    auto c = load_config_string(
        kListener + kDkim + "[delivery]\nsmarthost = \"relay.example.net\"\n" +
            "[[app]]\nname = \"billing\"\npassword = \"" + kHash + "\"\n" + "api_key_sha256 = \"" +
            core::to_lower_ascii(kKeyHash) + "\"\n" +
            "senders = [\"@billing.example\", \"noreply@example.com\"]\n"
            "messages_per_minute = 60\nmessages_per_day = 10000\ndkim_selector = \"apps\"\n"
            "route = \"direct\"\ntags = [\"billing\", \"team:payments\"]\n"
            "[[app]]\nname = \"alerts\"\napi_key_sha256 = \"" +
            std::string(64, 'A') + "\"\nsenders = [\"alerts@example.com\"]\n" +
            "[suppression]\nenabled = false\naction = \"refuse\"\nexpire_days = 0\n",
        "t.toml");
    INFO(c.status().message());
    REQUIRE(c);
    REQUIRE(c->apps.size() == 2);
    const policy::App& b = c->apps[0];
    CHECK(b.name == "billing");
    CHECK(b.password_hash == kHash);
    CHECK(b.api_key_sha256 == kKeyHash);
    CHECK(b.senders == std::vector<std::string>{"@billing.example", "noreply@example.com"});
    CHECK(b.messages_per_minute == 60);
    CHECK(b.messages_per_day == 10000);
    CHECK(b.dkim_selector == "apps");
    CHECK(b.route == policy::App::Route::kDirect);
    CHECK(b.tags == std::vector<std::string>{"billing", "team:payments"});
    const policy::App& a = c->apps[1];
    CHECK(a.password_hash.empty());
    CHECK(a.api_key_sha256 == std::string(64, 'a'));  // lower-cased
    CHECK(a.messages_per_minute == 0);
    CHECK(a.messages_per_day == 0);
    // route defaults to what [delivery] does: here, the smarthost
    CHECK(a.route == policy::App::Route::kSmarthost);
    CHECK_FALSE(c->suppression_enabled);
    CHECK(c->suppression_expire_days == 0);
  }
  SECTION("defaults") {
    auto c = load_config_string(kListener + "[[app]]\nname = \"a\"\npassword = \"" + kHash +
                                    "\"\nsenders = [\"@a.example\"]\n",
                                "t.toml");
    REQUIRE(c);
    CHECK(c->apps.at(0).route == policy::App::Route::kDirect);  // no smarthost: by MX
    CHECK(c->suppression_enabled);
    CHECK(c->suppression_expire_days == 30);
  }
}

TEST_CASE("config: [[app]] and [suppression] errors name the key and line", "[mta][unit]") {
  const std::string app = "[[app]]\nname = \"billing\"\npassword = \"" + kHash + "\"\n";
  // kListener is lines 1-3; `app` lines 4-6.
  auto [text, expected] = GENERATE_REF(table<std::string, std::string>({
      {kListener + "[[app]]\nsenders = [\"@a.example\"]\n", "t.toml:4: app[0].name: every [[app]]"},
      {kListener + "[[app]]\nname = \"two words\"\n", "t.toml:5: app[0].name: name \"two words\""},
      {kListener + "[[user]]\nname = \"Billing\"\npassword = \"" + kHash + "\"\n" + app +
           "senders = [\"@a.example\"]\n",
       "t.toml:8: app[0].name: \"billing\" is already the login of a [[user]] or [[app]]"},
      {kListener + app + "senders = [\"@a.example\"]\n" + app + "senders = [\"@b.example\"]\n",
       "t.toml:9: app[1].name: \"billing\" is already the login"},
      {kListener + "[[app]]\nname = \"b\"\npassword = 1\n",
       "t.toml:6: app[0].password: must be a string"},
      {kListener + "[[app]]\nname = \"b\"\npassword = \"plain\"\n",
       "t.toml:6: app[0].password: must be a crypt(3) hash"},
      {kListener + "[[app]]\nname = \"b\"\nsenders = [\"@a.example\"]\n",
       "t.toml:4: app[0].password: app b needs a password (SMTP AUTH) or an api_key_sha256"},
      {kListener + app + "api_key_sha256 = \"abc\"\n",
       "t.toml:7: app[0].api_key_sha256: must be 64 hex digits"},
      {kListener + app + "api_key_sha256 = \"" + kKeyHash + "\"\nsenders = [\"@a.example\"]\n" +
           "[[app]]\nname = \"other\"\napi_key_sha256 = \"" + kKeyHash + "\"\n",
       "t.toml:11: app[1].api_key_sha256: another [[app]] has this key"},
      {kListener + app, "t.toml:4: app[0].senders: every [[app]] needs senders"},
      {kListener + app + "senders = [\"@a.example\", \"nobody\"]\n",
       "t.toml:7: app[0].senders: sender \"nobody\" is neither"},
      {kListener + app + "senders = [\"@a.example\"]\nmessages_per_minute = -1\n",
       "t.toml:8: app[0].messages_per_minute: must be an integer between 0 and"},
      {kListener + app + "senders = [\"@a.example\"]\nmessages_per_day = \"many\"\n",
       "t.toml:8: app[0].messages_per_day: must be an integer"},
      {kListener + app + "senders = [\"@a.example\"]\ndkim_selector = \"apps\"\n",
       "t.toml:8: app[0].dkim_selector: no [[dkim]] key with selector \"apps\""},
      // The key exists, but for a domain the app cannot send as.
      {kListener + kDkim + app + "senders = [\"@a.example\"]\ndkim_selector = \"apps\"\n",
       "t.toml:12: app[0].dkim_selector: no [[dkim]] key"},
      {kListener + app + "senders = [\"@a.example\"]\nroute = \"smarthost\"\n",
       "t.toml:8: app[0].route: \"smarthost\" needs [delivery] smarthost"},
      {kListener + app + "senders = [\"@a.example\"]\nroute = \"mx\"\n",
       "t.toml:8: app[0].route: must be \"direct\""},
      {kListener + app + "senders = [\"@a.example\"]\ntags = [\"ok\", \"not ok\"]\n",
       "t.toml:8: app[0].tags: tag \"not ok\""},
      {kListener + app + "senders = [\"@a.example\"]\nquota = 5\n",
       "t.toml:8: app[0].quota: unknown key"},
      {kListener + "[suppression]\naction = \"bounce\"\n",
       "t.toml:5: suppression.action: must be \"refuse\""},
      {kListener + "[suppression]\naction = \"drop\"\n",
       "t.toml:5: suppression.action: \"drop\" (accept and not deliver) is not implemented yet"},
      {kListener + "[suppression]\nexpire_days = -3\n",
       "t.toml:5: suppression.expire_days: must be an integer between 0 and 36500"},
      {kListener + "[suppression]\nenabled = \"yes\"\n",
       "t.toml:5: suppression.enabled: must be true"},
  }));
  INFO(text);
  auto c = load_config_string(text, "t.toml");
  REQUIRE_FALSE(c);
  CHECK_THAT(c.status().message(), Catch::StartsWith(expected));
}

TEST_CASE("config: an app's dkim_selector may name a key of any of its sender domains",
          "[mta][unit]") {
  auto c =
      load_config_string(kListener + kDkim + "[[app]]\nname = \"b\"\npassword = \"" + kHash +
                             "\"\nsenders = [\"x@example.com\", \"invoices@Billing.Example\"]\n"
                             "dkim_selector = \"APPS\"\n",
                         "t.toml");
  INFO(c.status().message());
  REQUIRE(c);
  CHECK(c->apps.at(0).dkim_selector == "APPS");
}
