// porter: the one binary. Verbs:
//   porter serve [--config FILE]      run the daemon (no file: the embedded development default)
//   porter check-config FILE          validate a config file and exit
//   porter passwd                     read a password on stdin, print its crypt(3) hash
//   porter queue list [--config FILE] the messages in the queue
//   porter queue show ID [--config FILE]    envelope, recipient states and headers
//   porter queue cat ID [--config FILE]     the stored message, byte for byte
//   porter queue flush [ID] [--config FILE] deferred mail (or one message) due now
//   porter mailbox list USER [MAILBOX] [--config FILE]
//                                          a user's mailboxes, or the messages of one
//   porter mailbox cat USER MAILBOX UID [--config FILE]
//   porter mailbox export USER --maildir DIR [--config FILE]
//                                          one stored message, byte for byte
//   porter dkim keygen DOMAIN SELECTOR [--algorithm A] [--out FILE]
//                                          a DKIM key, and the DNS record to publish
// Layer 4: the only place that knows about threads, signals and privileges.

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/date.h"
#include "core/log.h"
#include "mta/config.h"
#include "mta/delivery.h"
#include "mta/mailbox/store.h"
#include "mta/net/loop.h"
#include "mta/net/tls_context.h"
#include "mta/smtp/params.h"
#include "mta/imap_service.h"
#include "mta/pop3_service.h"
#include "mta/smtp_service.h"
#include "policy/dkim_key.h"
#include "policy/dkim_signer.h"
#include "policy/local_recipients.h"
#include "policy/users.h"
#include "queue/db.h"
#include "queue/store.h"
#include "queue/writer.h"

namespace {

constexpr const char* kUsage =
    "usage: porter serve [--config FILE]\n"
    "       porter check-config FILE\n"
    "       porter passwd\n"
    "       porter queue list [--config FILE]\n"
    "       porter queue show ID [--config FILE]\n"
    "       porter queue cat ID [--config FILE]\n"
    "       porter queue flush [ID] [--config FILE]\n"
    "       porter mailbox list USER [MAILBOX] [--config FILE]\n"
    "       porter mailbox cat USER MAILBOX UID [--config FILE]\n"
    "       porter mailbox export USER --maildir DIR [--config FILE]\n"
    "       porter dkim keygen DOMAIN SELECTOR [--algorithm rsa-sha256|ed25519-sha256] "
    "[--out FILE]\n";

int fail(const std::string& what) {
  std::fprintf(stderr, "porter: %s\n", what.c_str());
  return 1;
}

// "--config FILE" anywhere in args; empty when absent.
std::string config_flag(const std::vector<std::string>& args) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--config") return args[i + 1];
  return {};
}

core::Result<mta::Config> load(const std::string& path) {
  if (path.empty()) return mta::load_config_string(mta::embedded_default_config(), "<embedded default>");
  return mta::load_config_file(path);
}

std::string queue_dir(const mta::Config& c) { return c.data_dir + "/queue"; }

core::Status make_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return core::Status::io("cannot create directory " + dir + ": " + ec.message());
  return core::Status::ok();
}

std::string random_password() {
  static constexpr char kAlphabet[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::string out;
  for (int i = 0; i < 16; ++i) {
    unsigned char c = 0;
    urandom.read(reinterpret_cast<char*>(&c), 1);
    out += kAlphabet[c % (sizeof kAlphabet - 1)];
  }
  return out;
}

// The development default's demo user: made on first start, printed on every start.
core::Status ensure_demo_user(const mta::Config& c) {
  const std::string pw_file = c.data_dir + "/demo-password";
  const std::string domain = c.local_domains.empty() ? "porter.test" : c.local_domains.front();
  if (!std::filesystem::exists(c.users_file)) {
    const std::string password = random_password();
    auto hash = policy::UserDb::hash_password(password);
    if (!hash) return hash.status();
    const mode_t old = umask(077);
    std::ofstream(c.users_file) << "# made by porter serve for the development default\n"
                                << "demo:" << *hash << ":demo@" << domain << "\n";
    std::ofstream(pw_file) << password << "\n";
    umask(old);
  }
  std::string password;
  std::ifstream(pw_file) >> password;
  std::fprintf(stderr,
               "porter: development default: demo user \"demo\" password \"%s\" may send as "
               "demo@%s (users file %s)\n",
               password.c_str(), domain.c_str(), c.users_file.c_str());
  return core::Status::ok();
}

core::Result<policy::UserDb> load_users(const mta::Config& c) {
  std::vector<policy::User> users;
  for (const auto& u : c.users)
    users.push_back({u.name, u.password_hash, u.addresses, u.quota_bytes});
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

// Who receives mail for the local domains; refuses aliases and a catch-all naming unknown
// logins (the users file is only read here, so config.cpp cannot check them).
core::Result<policy::LocalRecipients> load_local_recipients(const mta::Config& c,
                                                            const policy::UserDb& users) {
  std::vector<policy::LocalAlias> aliases;
  for (const auto& a : c.aliases) aliases.push_back({a.address, a.users});
  auto r = policy::LocalRecipients::create(c.local_domains, users, aliases, c.recipient_delimiter,
                                           c.catch_all);
  if (!r) return core::Status::invalid(c.origin + ": " + r.status().message());
  return r;
}

std::string pid_file(const mta::Config& c) { return c.data_dir + "/porter.pid"; }
std::string request_dir(const mta::Config& c) { return c.data_dir + "/requests"; }

// Flush requests left by `porter queue flush`: files "flush.<ID>" or "flush.all" in the
// requests directory, read and removed by the daemon on SIGUSR1. (A stand-in until the admin
// API exists.)
std::vector<std::optional<std::string>> take_flush_requests(const mta::Config& c) {
  std::vector<std::optional<std::string>> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(request_dir(c), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("flush.", 0) != 0) continue;
    const std::string what = name.substr(6);
    if (what == "all") {
      out.emplace_back(std::nullopt);
    } else if (core::is_valid_queue_id(what)) {
      out.emplace_back(what);
    }
    std::filesystem::remove(e.path(), ec);
  }
  return out;
}

// The [[dkim]] keys, read and checked at start-up; nullopt when none are configured.
core::Result<std::optional<policy::DkimSigner>> load_dkim(const mta::Config& c) {
  if (c.dkim_keys.empty()) return std::optional<policy::DkimSigner>();
  std::vector<policy::DkimKey> keys;
  for (const auto& k : c.dkim_keys) {
    std::ifstream in(k.key_file);
    if (!in) return core::Status::io("dkim: cannot read key_file " + k.key_file + " of " + k.domain);
    std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    keys.push_back({k.domain, k.selector, k.algorithm, std::move(pem)});
  }
  auto signer = policy::DkimSigner::create(std::move(keys));
  if (!signer) return core::Status::invalid("dkim: " + signer.status().message());
  return std::optional<policy::DkimSigner>(std::move(*signer));
}

core::Status drop_privileges(const std::string& user) {
  if (geteuid() != 0 || user.empty()) return core::Status::ok();
  const passwd* pw = getpwnam(user.c_str());
  if (!pw) return core::Status::invalid("server.user: no such user " + user);
  if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
    return core::Status::io("cannot drop privileges to " + user + ": " + std::strerror(errno));
  if (setuid(0) == 0) return core::Status::io("privileges could be regained after dropping");
  return core::Status::ok();
}

int serve(const std::string& config_path) {
  auto cfg = load(config_path);
  if (!cfg) return fail(cfg.status().message());
  mta::Config& c = *cfg;
  core::set_log_level(c.log_level == "debug" ? core::LogLevel::kDebug
                      : c.log_level == "warn" ? core::LogLevel::kWarn
                      : c.log_level == "error" ? core::LogLevel::kError
                                               : core::LogLevel::kInfo);
  if (auto s = make_dir(c.data_dir); !s) return fail(s.message());
  if (config_path.empty()) {
    if (auto s = ensure_demo_user(c); !s) return fail(s.message());
  }

  std::shared_ptr<net::TlsContext> tls;
  if (!c.tls_cert.empty()) {
    if (c.tls_self_signed) {
      if (auto s = make_dir(std::filesystem::path(c.tls_cert).parent_path().string()); !s)
        return fail(s.message());
      auto s = net::ensure_self_signed(c.tls_cert, c.tls_key, {c.hostname, "localhost"},
                                       {"127.0.0.1", "::1"});
      if (!s) return fail(s.message());
    }
    auto ctx = net::TlsContext::server(c.tls_cert, c.tls_key);
    if (!ctx) return fail(ctx.status().message());
    tls = *ctx;
  }
  auto users = load_users(c);
  if (!users) return fail(users.status().message());
  auto local_recipients = load_local_recipients(c, *users);
  if (!local_recipients) return fail(local_recipients.status().message());

  auto db = queue::Db::open(queue_dir(c), queue::OpenMode::kReadWrite);
  if (!db) return fail(db.status().message());
  if (auto s = queue::remove_incomplete_bodies(**db); !s) return fail(s.message());
  // Before the writer, so that it outlives the writer's last callbacks.
  const core::SystemClock wall_clock;
  mta::mailbox::Store mailboxes(**db, wall_clock);
  queue::Writer writer(**db);
  writer.start();

  // Signals are taken by sigwait() in this thread only; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto dkim = load_dkim(c);
  if (!dkim) return fail(dkim.status().message());
  core::QueueIdGenerator ids;
  mta::SmtpContext smtp_ctx(c, *users, writer, ids, tls);
  if (*dkim) smtp_ctx.dkim = &**dkim;
  smtp_ctx.local = &*local_recipients;
  smtp_ctx.mailboxes = &mailboxes;
  mta::Pop3Context pop3_ctx{c, smtp_ctx.login, smtp_ctx.limiter, tls, mailboxes, writer, {}, {}};
  pop3_ctx.session.hostname = c.hostname;
  pop3_ctx.session.starttls_available = tls != nullptr;
  mta::ImapContext imap_ctx{c, smtp_ctx.login, smtp_ctx.limiter, tls, mailboxes, writer, {}};
  imap_ctx.session.hostname = c.hostname;
  imap_ctx.session.starttls_available = tls != nullptr;
  imap_ctx.session.limits.max_literal = c.max_message_size;
  const unsigned n_loops = c.threads > 0 ? static_cast<unsigned>(c.threads)
                                         : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<net::Loop>> loops;
  std::vector<std::unique_ptr<mta::SmtpService>> services;
  std::vector<std::unique_ptr<mta::Pop3Service>> pop3_services;
  std::vector<std::unique_ptr<mta::ImapService>> imap_services;
  for (unsigned i = 0; i < n_loops; ++i) {
    loops.push_back(std::make_unique<net::Loop>());
    services.push_back(std::make_unique<mta::SmtpService>(*loops.back(), smtp_ctx));
    if (auto s = services.back()->listen(); !s) return fail(s.message());
    pop3_services.push_back(std::make_unique<mta::Pop3Service>(*loops.back(), pop3_ctx));
    if (auto s = pop3_services.back()->listen(); !s) return fail(s.message());
    imap_services.push_back(std::make_unique<mta::ImapService>(*loops.back(), imap_ctx));
    if (auto s = imap_services.back()->listen(); !s) return fail(s.message());
  }
  net::Loop delivery_loop;
  mta::DeliveryService delivery(delivery_loop, c, **db, writer, ids, *local_recipients, mailboxes);
  if (c.delivery_enabled) {
    if (auto s = delivery.start(); !s) return fail(s.message());
    smtp_ctx.on_queued = [&delivery] { delivery.poke(); };
  }
  if (auto s = make_dir(request_dir(c)); !s) return fail(s.message());
  std::ofstream(pid_file(c)) << getpid() << "\n";
  if (auto s = drop_privileges(c.run_as_user); !s) return fail(s.message());

  for (const auto& l : c.listeners)
    core::LogLine(core::LogLevel::kInfo, "listening")
        .kv("listener", l.protocol == mta::Protocol::kPop3   ? (l.implicit_tls ? "pop3s" : "pop3")
                        : l.protocol == mta::Protocol::kImap ? (l.implicit_tls ? "imaps" : "imap")
                                                             : policy::role_name(l.role))
        .kv("address", l.address).kv("port", int64_t(l.port)).emit();
  core::LogLine(core::LogLevel::kInfo, "started")
      .kv("config", c.origin).kv("hostname", c.hostname).kv("data_dir", c.data_dir)
      .kv("loops", int64_t(n_loops)).emit();

  std::vector<std::thread> threads;
  for (auto& loop : loops) threads.emplace_back([l = loop.get()] { l->run(); });
  std::thread delivery_thread([&] { delivery_loop.run(); });

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && (sig == SIGHUP || sig == SIGUSR1)) {
    if (sig == SIGHUP) {
      core::LogLine(core::LogLevel::kWarn, "sighup").remark("reload is not supported yet").emit();
      continue;
    }
    for (auto& id : take_flush_requests(c)) {
      core::LogLine(core::LogLevel::kInfo, "flush").kv("id", id.value_or("all")).emit();
      delivery_loop.post([&delivery, id] { delivery.flush(id); });
    }
  }
  core::LogLine(core::LogLevel::kInfo, "stopping").kv("signal", strsignal(sig)).emit();
  delivery_loop.post([&] {
    delivery.stop();
    delivery_loop.stop();
  });

  for (size_t i = 0; i < loops.size(); ++i) {
    net::Loop* loop = loops[i].get();
    mta::SmtpService* service = services[i].get();
    mta::Pop3Service* pop3 = pop3_services[i].get();
    mta::ImapService* imap = imap_services[i].get();
    loop->post([loop, service, pop3, imap] {
      service->close();
      pop3->close();
      imap->close();
      loop->stop();
    });
  }
  for (auto& t : threads) t.join();
  delivery_thread.join();
  writer.stop();  // every accepted commit is written before the queue closes
  std::filesystem::remove(pid_file(c));
  services.clear();
  pop3_services.clear();
  imap_services.clear();
  loops.clear();
  core::LogLine(core::LogLevel::kInfo, "stopped").emit();
  return 0;
}

int check_config(const std::string& path) {
  auto c = mta::load_config_file(path);
  if (!c) return fail(c.status().message());
  auto users = load_users(*c);
  if (!users) return fail(users.status().message());
  if (auto r = load_local_recipients(*c, *users); !r) return fail(r.status().message());
  if (auto dkim = load_dkim(*c); !dkim) return fail(dkim.status().message());
  std::printf("%s: ok (%zu listeners, %zu users, %zu local domains)\n", path.c_str(),
              c->listeners.size(), users->size(), c->local_domains.size());
  return 0;
}

std::string read_password_line(const char* prompt) {
  const bool tty = isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::fprintf(stderr, "\n");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int passwd_cmd() {
  const std::string pw = read_password_line("Password: ");
  if (isatty(STDIN_FILENO) && read_password_line("Again: ") != pw)
    return fail("passwords do not match");
  if (pw.empty()) return fail("empty password");
  auto hash = policy::UserDb::hash_password(pw);
  if (!hash) return fail(hash.status().message());
  std::printf("%s\n", hash->c_str());
  return 0;
}

std::string age_text(int64_t ms) {
  const int64_t s = ms / 1000;
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

// Asks the running daemon to make deferred mail due now: a request file, then SIGUSR1.
int queue_flush(const mta::Config& c, const std::string& what) {
  if (what != "all" && !core::is_valid_queue_id(what))
    return fail("not a queue ID: " + what);
  pid_t pid = 0;
  std::ifstream(pid_file(c)) >> pid;
  if (pid <= 0 || kill(pid, 0) != 0)
    return fail("porter is not running (no live pid in " + pid_file(c) + ")");
  std::ofstream(request_dir(c) + "/flush." + what).flush();
  if (kill(pid, SIGUSR1) != 0) return fail(std::string("signalling porter: ") + std::strerror(errno));
  std::printf("flush requested for %s\n", what == "all" ? "all deferred mail" : what.c_str());
  return 0;
}

// Arguments without the "--config FILE" pair.
std::vector<std::string> positional(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config") {
      ++i;
      continue;
    }
    out.push_back(args[i]);
  }
  return out;
}

// For the `cat` verbs: each chunk to stdout as it comes.
bool write_stdout(std::string_view chunk) {
  return std::fwrite(chunk.data(), 1, chunk.size(), stdout) == chunk.size();
}

int end_cat(const core::Status& s) {
  if (!s) return fail(s.message());
  return std::fflush(stdout) == 0 ? 0 : fail("write to stdout failed");
}

int queue_cmd(const std::vector<std::string>& all) {
  const std::vector<std::string> args = positional(all);
  if (args.size() < 2) return fail(kUsage);
  auto cfg = load(config_flag(all));
  if (!cfg) return fail(cfg.status().message());
  if (args[1] == "flush") return queue_flush(*cfg, args.size() >= 3 ? args[2] : "all");
  auto db = queue::Db::open(queue_dir(*cfg), queue::OpenMode::kReadOnly);
  if (!db) return fail(db.status().message());
  const int64_t now = core::SystemClock().now_ms();
  if (args[1] == "list") {
    size_t n = 0;
    std::printf("%-16s %5s %9s %-8s %s\n", "ID", "AGE", "SIZE", "STATE", "SENDER -> RECIPIENTS");
    auto s = queue::list(**db, [&](const queue::MessageRecord& m) {
      std::string rcpts;
      for (const auto& r : m.envelope.recipients) rcpts += " <" + r.address.str() + ">";
      std::printf("%-16s %5s %9llu %-8s <%s> ->%s\n", m.id.c_str(),
                  age_text(now - m.created_ms).c_str(),
                  static_cast<unsigned long long>(m.body_size), queue::state_name(m.state),
                  m.envelope.sender.str().c_str(), rcpts.c_str());
      ++n;
      return true;
    });
    if (!s) return fail(s.message());
    std::printf("%zu message%s\n", n, n == 1 ? "" : "s");
    return 0;
  }
  if (args[1] == "show" && args.size() >= 3) {
    auto m = queue::get(**db, args[2]);
    if (!m) return fail(m.status().message());
    const auto& e = m->envelope;
    std::printf("id: %s\nstate: %s\nage: %s\nsize: %llu\nfrom: <%s>\n", m->id.c_str(),
                queue::state_name(m->state), age_text(now - m->created_ms).c_str(),
                static_cast<unsigned long long>(m->body_size), e.sender.str().c_str());
    if (e.ret != core::DsnRet::kUnset || !e.envid.empty())
      std::printf("dsn: ret=%s envid=%s\n",
                  e.ret == core::DsnRet::kFull ? "FULL" : e.ret == core::DsnRet::kHeaders ? "HDRS" : "-",
                  e.envid.empty() ? "-" : e.envid.c_str());
    for (size_t i = 0; i < e.recipients.size(); ++i) {
      const auto& r = e.recipients[i];
      std::printf("to: <%s> %s", r.address.str().c_str(),
                  i < m->status.size() ? queue::recipient_state_name(m->status[i].state) : "");
      if (r.notify) std::printf(" notify=%s", mta::smtp::format_notify(r.notify).c_str());
      if (!r.orcpt.empty()) std::printf(" orcpt=%s", r.orcpt.c_str());
      if (i < m->status.size() && m->status[i].attempts > 0)
        std::printf(" attempts=%u last=\"%s\"", m->status[i].attempts,
                    m->status[i].last_reply.c_str());
      std::printf("\n");
    }
    std::printf("client: %s helo=%s listener=%s tls=%s user=%s\nbody: %s smtputf8=%s\n",
                e.client_ip.c_str(), e.client_helo.c_str(), e.listener.c_str(),
                e.tls ? "yes" : "no", e.auth_user.empty() ? "-" : e.auth_user.c_str(),
                core::body_type_name(e.body).c_str(), e.smtputf8 ? "yes" : "no");
    auto h = queue::headers(**db, args[2]);
    if (!h) return fail(h.status().message());
    std::printf("\n%s", h->c_str());
    return 0;
  }
  if (args[1] == "cat" && args.size() >= 3)
    return end_cat(queue::read_body_chunks(**db, args[2], write_stdout));
  return fail(kUsage);
}

// Maildir++ (as Dovecot and Courier read it): INBOX in DIR itself, "A/B" in DIR/.A.B; each
// message a file in cur/ named "<date>.<uid>.porter:2,<flags>", dated by its internal date.
// Keywords have no portable Maildir form and are left out.
core::Status export_maildir(const mta::mailbox::Store& store, const std::string& user,
                            const std::string& dir, size_t& exported) {
  auto boxes = store.mailboxes(user);
  if (!boxes) return boxes.status();
  for (const auto& b : *boxes) {
    if (b.status.noselect) continue;
    std::string folder = dir;
    if (b.name != mta::mailbox::kInbox) {
      std::string dotted = b.name;
      std::replace(dotted.begin(), dotted.end(), '/', '.');
      folder += "/." + dotted;
    }
    for (const char* sub : {"/cur", "/new", "/tmp"})
      if (auto s = make_dir(folder + sub); !s) return s;
    core::Status failed = core::Status::ok();
    auto s = store.list_messages(user, b.name, [&](const mta::mailbox::MessageEntry& m) {
      std::string flags;
      const uint8_t f = m.record.flags.system;
      if (f & mta::mailbox::kDraft) flags += 'D';
      if (f & mta::mailbox::kFlagged) flags += 'F';
      if (f & mta::mailbox::kAnswered) flags += 'R';
      if (f & mta::mailbox::kSeen) flags += 'S';
      if (f & mta::mailbox::kDeleted) flags += 'T';
      const std::string base = std::to_string(m.record.internal_date_ms / 1000) + "." +
                               std::to_string(m.uid) + ".porter";
      const std::string tmp = folder + "/tmp/" + base;
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      failed = store.read_message(user, b.name, m.uid, [&](std::string_view chunk) {
        out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        return static_cast<bool>(out);
      });
      out.close();
      if (failed && !out) failed = core::Status::io("cannot write " + tmp);
      if (!failed) return false;
      const std::string final_name = folder + "/cur/" + base + ":2," + flags;
      std::error_code ec;
      std::filesystem::rename(tmp, final_name, ec);
      if (ec) {
        failed = core::Status::io("cannot rename " + tmp + ": " + ec.message());
        return false;
      }
      const auto when = std::chrono::system_clock::time_point(
          std::chrono::milliseconds(m.record.internal_date_ms));
      std::filesystem::last_write_time(
          final_name,
          std::chrono::file_clock::from_sys(
              std::chrono::time_point_cast<std::chrono::system_clock::duration>(when)),
          ec);
      ++exported;
      return true;
    });
    if (!s) return s;
    if (!failed) return failed;
  }
  return core::Status::ok();
}

// `porter mailbox list|cat|export`: reads the store as `porter queue` reads the queue
// (read-only, beside the running daemon).
int mailbox_cmd(const std::vector<std::string>& all) {
  const std::vector<std::string> args = positional(all);
  if (args.size() < 3) return fail(kUsage);
  auto cfg = load(config_flag(all));
  if (!cfg) return fail(cfg.status().message());
  auto db = queue::Db::open(queue_dir(*cfg), queue::OpenMode::kReadOnly);
  if (!db) return fail(db.status().message());
  const core::SystemClock clock;
  const mta::mailbox::Store store(**db, clock);
  const std::string& user = args[2];
  if (args[1] == "list" && args.size() == 3) {
    auto boxes = store.mailboxes(user);
    if (!boxes) return fail(boxes.status().message());
    std::printf("%-20s %-11s %8s %12s %11s %10s %13s\n", "MAILBOX", "SPECIAL-USE", "MESSAGES",
                "SIZE", "UIDVALIDITY", "UIDNEXT", "HIGHESTMODSEQ");
    for (const auto& b : *boxes) {
      const auto use = mta::mailbox::special_use_attribute(b.status.special_use);
      std::printf("%-20s %-11s %8u %12llu %11u %10u %13llu\n", b.name.c_str(),
                  use.empty() ? "-" : std::string(use).c_str(), b.status.messages,
                  static_cast<unsigned long long>(b.status.bytes), b.status.uidvalidity,
                  b.status.uidnext, static_cast<unsigned long long>(b.status.highest_modseq));
    }
    std::printf("%zu mailbox%s\n", boxes->size(), boxes->size() == 1 ? "" : "es");
    return 0;
  }
  if (args[1] == "list" && args.size() == 4) {
    size_t n = 0;
    std::printf("%10s %12s %-31s %s\n", "UID", "SIZE", "INTERNALDATE", "FLAGS");
    auto s = store.list_messages(user, args[3], [&](const mta::mailbox::MessageEntry& m) {
      std::printf("%10u %12llu %-31s (%s)\n", m.uid,
                  static_cast<unsigned long long>(m.record.size),
                  core::rfc5322_date(m.record.internal_date_ms).c_str(),
                  mta::mailbox::flags_text(m.record.flags).c_str());
      ++n;
      return true;
    });
    if (!s) return fail(s.message());
    std::printf("%zu message%s\n", n, n == 1 ? "" : "s");
    return 0;
  }
  if (args[1] == "cat" && args.size() == 5) {
    char* end = nullptr;
    const unsigned long uid = std::strtoul(args[4].c_str(), &end, 10);
    if (args[4].empty() || *end != '\0' || uid == 0 || uid > UINT32_MAX)
      return fail("not a UID: " + args[4]);
    return end_cat(store.read_message(user, args[3], static_cast<uint32_t>(uid), write_stdout));
  }
  if (args[1] == "export" && args.size() == 5 && args[3] == "--maildir") {
    const std::string& dir = args[4];
    size_t exported = 0;
    if (auto s = export_maildir(store, user, dir, exported); !s) return fail(s.message());
    std::printf("%zu message%s exported to %s\n", exported, exported == 1 ? "" : "s", dir.c_str());
    return 0;
  }
  return fail(kUsage);
}

// The value of "--name VALUE" in args, or `fallback`.
std::string flag_value(const std::vector<std::string>& args, const std::string& name,
                       const std::string& fallback) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == name) return args[i + 1];
  return fallback;
}

// Writes a new private key (mode 0600, never over an existing file) and prints the TXT
// record to publish at SELECTOR._domainkey.DOMAIN.
int dkim_keygen(const std::vector<std::string>& args) {
  if (args.size() < 4) return fail(kUsage);
  const std::string& domain = args[2];
  const std::string& selector = args[3];
  const std::string algorithm =
      flag_value(args, "--algorithm", std::string(policy::kDkimRsaSha256));
  const std::string out = flag_value(args, "--out", domain + "." + selector + ".key");
  auto name = policy::dkim_key_name(selector, domain);
  if (!name) return fail(name.status().message());
  auto key = policy::generate_key(algorithm);
  if (!key) return fail(key.status().message());
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return fail("cannot create " + out + ": " + std::strerror(errno));
  const std::string& pem = key->first;
  const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  if (::close(fd) != 0 || !written) return fail("cannot write " + out);
  const std::string record = policy::dns_txt_record(algorithm, key->second);
  std::printf("private key: %s (%s)\npublish this TXT record at %s:\n\n%s\n", out.c_str(),
              algorithm.c_str(), name->c_str(),
              policy::dns_zone_entry(selector, domain, record).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return fail(kUsage);
  const std::string& verb = args[0];
  if (verb == "serve") return serve(config_flag(args));
  if (verb == "check-config" && args.size() == 2) return check_config(args[1]);
  if (verb == "passwd") return passwd_cmd();
  if (verb == "queue") return queue_cmd(args);
  if (verb == "mailbox") return mailbox_cmd(args);
  if (verb == "dkim" && args.size() >= 2 && args[1] == "keygen") return dkim_keygen(args);
  if (verb == "help" || verb == "--help" || verb == "-h") {
    std::printf("%s", kUsage);
    return 0;
  }
  return fail(kUsage);
}
