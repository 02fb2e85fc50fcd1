// porter: the one binary. Verbs:
//   porter serve [--config FILE]      run the daemon (no file: the embedded development default)
//   porter check-config FILE          validate a config file and exit
//   porter passwd                     read a password on stdin, print its crypt(3) hash
//   porter queue|route|reload|status ...   clients of the running daemon's admin API
//                                          (mta/admin_cli.h lists them)
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
#include <future>
#include <mutex>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>

#include "core/date.h"
#include "core/log.h"
#include "core/queue_id.h"
#include "mta/admin_api.h"
#include "mta/admin_cli.h"
#include "mta/config.h"
#include "mta/delivery.h"
#include "mta/mailbox/store.h"
#include "mta/net/loop.h"
#include "mta/net/tls_context.h"
#include "mta/smtp/params.h"
#include "mta/imap_service.h"
#include "mta/metrics.h"
#include "mta/runtime.h"
#include "mta/pop3_service.h"
#include "mta/smtp_service.h"
#include "policy/dkim_key.h"
#include "policy/dkim_signer.h"
#include "policy/local_recipients.h"
#include "policy/users.h"
#include "queue/db.h"
#include "queue/record.h"
#include "queue/store.h"
#include "queue/suppression.h"
#include "queue/writer.h"

namespace {

constexpr const char* kUsage =
    "usage: porter serve [--config FILE]\n"
    "       porter check-config FILE\n"
    "       porter passwd\n"
    "       porter queue list [--sender S] [--recipient R] [--domain D] [--state S]\n"
    "                         [--older-than AGE] [--newer-than AGE] [--error TEXT] [--limit N]\n"
    "       porter queue summary | show ID | cat ID | trace ID\n"
    "       porter queue flush [ID] [--domain D]\n"
    "       porter queue hold|release|delete|retry-now ID... | bounce ID... [--reason TEXT]\n"
    "       porter suppression list [--scope S] | add ADDRESS [--scope S] [--reason TEXT]\n"
    "                         [--expire-days N] | remove ADDRESS [--scope S]\n"
    "       porter route explain --from ADDRESS --to ADDRESS\n"
    "       porter reload | status\n"
    "       (every admin verb takes [--config FILE] and [--json])\n"
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

core::Status drop_privileges(const std::string& user) {
  if (geteuid() != 0 || user.empty()) return core::Status::ok();
  const passwd* pw = getpwnam(user.c_str());
  if (!pw) return core::Status::invalid("server.user: no such user " + user);
  if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
    return core::Status::io("cannot drop privileges to " + user + ": " + std::strerror(errno));
  if (setuid(0) == 0) return core::Status::io("privileges could be regained after dropping");
  return core::Status::ok();
}

// Makes data_dir and everything in it belong to `user` before privileges are dropped, so the
// queue can still create files afterwards.
core::Status give_data_dir(const mta::Config& c) {
  if (geteuid() != 0 || c.run_as_user.empty()) return core::Status::ok();
  const passwd* pw = getpwnam(c.run_as_user.c_str());
  if (!pw) return core::Status::invalid("server.user: no such user " + c.run_as_user);
  std::error_code ec;
  auto give = [&](const std::filesystem::path& p) {
    if (::lchown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      ec = std::error_code(errno, std::generic_category());
  };
  give(c.data_dir);
  for (auto it = std::filesystem::recursive_directory_iterator(c.data_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    give(it->path());
  if (ec) return core::Status::io("cannot give " + c.data_dir + " to " + c.run_as_user + ": " + ec.message());
  return core::Status::ok();
}

core::Status apply_log_settings(const mta::Config& c) {
  core::set_log_level(*core::parse_log_level(c.log_level));
  core::set_log_format(c.log_json ? core::LogFormat::kJson : core::LogFormat::kKeyValue);
  return c.log_file.empty() ? core::Status::ok() : core::set_log_file(c.log_file);
}

// `porter queue trace`: the lines of the log file that name the queue ID (as id=, or as the
// message a DSN reports on); without a log file, logs are the service manager's (journald).
std::vector<std::string> trace_lines(const std::string& log_file, const std::string& id) {
  std::vector<std::string> out;
  if (log_file.empty()) {
    out.push_back("logs go to stderr (journald): journalctl -u porter | grep " + id);
    return out;
  }
  for (const std::string& file : {log_file + ".1", log_file}) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      // The admin API's own access lines name IDs too (in paths): not the message's history.
      const bool access_line = line.find(" http server=") != std::string::npos ||
                               line.find("\"event\":\"http\"") != std::string::npos;
      if (!access_line && line.find(id) != std::string::npos) out.push_back(std::move(line));
    }
  }
  return out;
}

// What /metrics reports of the queue: the records in the envelopes family (keys only) and the
// age of the first, which is the oldest (IDs sort by arrival).
mta::metrics::QueueProbe probe_queue(const queue::Db& db) {
  mta::metrics::QueueProbe p;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.raw()->NewIterator(ro, db.cf(queue::Family::kEnvelopes)));
  it->SeekToFirst();
  if (it->Valid()) {
    if (auto r = queue::decode_record(std::string_view(it->value().data(), it->value().size()));
        r && r->created_ms > 0)
      p.oldest_message_age_seconds = double(core::SystemClock().now_ms() - r->created_ms) / 1000;
  }
  for (; it->Valid(); it->Next()) p.messages += 1;
  return p;
}

int serve(const std::string& config_path) {
  if (config_path.empty()) {
    // The development default's demo user must exist before the users are read.
    auto dev = load(config_path);
    if (!dev) return fail(dev.status().message());
    if (auto s = make_dir(dev->data_dir); !s) return fail(s.message());
    if (auto s = ensure_demo_user(*dev); !s) return fail(s.message());
  }
  auto loaded = mta::load_runtime(config_path);
  if (!loaded) return fail(loaded.status().message());
  mta::RuntimeHolder runtime(*loaded);
  const std::shared_ptr<const mta::Runtime> first = *loaded;
  const mta::Config& c = *first->config;
  if (auto s = make_dir(c.data_dir); !s) return fail(s.message());
  if (auto s = apply_log_settings(c); !s) return fail("log.file: " + s.message());

  auto db = queue::Db::open(mta::queue_dir(c), queue::OpenMode::kReadWrite);
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
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  core::QueueIdGenerator ids;
  queue::SuppressionList suppressions(**db);
  mta::SmtpContext smtp_ctx(runtime, writer, ids);
  smtp_ctx.mailboxes = &mailboxes;
  smtp_ctx.suppressions = &suppressions;
  mta::Pop3Context pop3_ctx{c, smtp_ctx.login, smtp_ctx.limiter, first->tls, mailboxes, writer, {}, {}};
  pop3_ctx.session.hostname = c.hostname;
  pop3_ctx.session.starttls_available = first->tls != nullptr;
  mta::ImapContext imap_ctx{c, smtp_ctx.login, smtp_ctx.limiter, first->tls, mailboxes, writer, {}};
  imap_ctx.session.hostname = c.hostname;
  imap_ctx.session.starttls_available = first->tls != nullptr;
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
  mta::DeliveryService delivery(delivery_loop, c, **db, writer, ids,
                                [&runtime] { return runtime.get()->local; }, mailboxes,
                                mta::SuppressionSettings{
                                    c.suppression_enabled,
                                    int64_t(c.suppression_expire_days) * 86'400'000});
  if (c.delivery_enabled) {
    if (auto s = delivery.start(); !s) return fail(s.message());
    smtp_ctx.on_queued = [&delivery] { delivery.poke(); };
  }

  // Reloads are serialised: SIGHUP here and POST /v1/reload on the admin thread.
  std::mutex reload_mu;
  auto reload = [&]() -> core::Status {
    std::lock_guard lock(reload_mu);
    auto next = mta::load_runtime(config_path);
    if (!next) {
      core::LogLine(core::LogLevel::kError, "reload-refused").remark(next.status().message()).emit();
      return next.status();
    }
    const std::string fixed = mta::restart_needed(*runtime.get()->config, *(*next)->config);
    if (!fixed.empty())
      core::LogLine(core::LogLevel::kWarn, "reload-partial")
          .kv("restart_needed", fixed).remark("these keys keep their running values").emit();
    // Listeners keep the TLS context they were opened with: it adopts the new certificate.
    auto fresh = std::make_shared<mta::Runtime>(**next);
    if (first->tls && fresh->tls) first->tls->adopt(*fresh->tls);
    fresh->tls = first->tls;
    runtime.set(std::move(fresh));
    core::set_log_level(*core::parse_log_level((*next)->config->log_level));
    if (auto s = core::reopen_log_file(); !s)
      core::LogLine(core::LogLevel::kError, "log-reopen-failed").remark(s.message()).emit();
    core::LogLine(core::LogLevel::kInfo, "reloaded").kv("config", (*next)->config->origin).emit();
    return core::Status::ok();
  };
  mta::metrics::set_queue_probe([&db = **db] { return probe_queue(db); });
  net::Loop admin_loop;
  mta::AdminApi admin(admin_loop,
                      mta::AdminContext{**db, writer, suppressions, delivery, runtime, reload,
                                        [&runtime](const std::string& id) {
                                          return trace_lines(runtime.get()->config->log_file, id);
                                        },
                                        wall_clock.now_ms()});
  if (auto s = admin.listen(c); !s) return fail(s.message());
  if (auto s = give_data_dir(c); !s) return fail(s.message());
  if (auto s = drop_privileges(c.run_as_user); !s) return fail(s.message());

  for (const auto& l : c.listeners)
    core::LogLine(core::LogLevel::kInfo, "listening")
        .kv("listener", mta::metrics::listener_name(l))
        .kv("address", l.address).kv("port", int64_t(l.port)).emit();
  core::LogLine(core::LogLevel::kInfo, "started")
      .kv("config", c.origin).kv("hostname", c.hostname).kv("data_dir", c.data_dir)
      .kv("loops", int64_t(n_loops)).kv("admin", mta::admin_socket_path(c)).emit();

  std::vector<std::thread> threads;
  for (auto& loop : loops) threads.emplace_back([l = loop.get()] { l->run(); });
  std::thread delivery_thread([&] { delivery_loop.run(); });
  std::thread admin_thread([&] { admin_loop.run(); });

  // Signals, and once an hour the expired suppression entries are deleted (here: purging
  // blocks, which neither a loop nor the writer may).
  int sig = 0;
  for (;;) {
    const timespec hour{3600, 0};
    sig = sigtimedwait(&signals, nullptr, &hour);
    if (sig == SIGHUP) {
      (void)reload();
    } else if (sig < 0 && errno == EAGAIN) {
      if (auto n = suppressions.purge_expired(writer, wall_clock.now_ms()); !n)
        core::LogLine(core::LogLevel::kError, "suppression-purge-failed").remark(n.status().message()).emit();
      else if (*n > 0)
        core::LogLine(core::LogLevel::kInfo, "suppression-purged").kv("expired", int64_t(*n)).emit();
    } else if (sig > 0) {
      break;
    }
  }

  // Graceful stop: no new connections; open sessions and delivery attempts get the grace
  // time; then whatever is left is cut (nothing accepted is lost: a 250 was only given
  // after its commit, and an attempt cut short keeps its schedule entry).
  const auto grace = std::chrono::seconds(runtime.get()->config->shutdown_grace_s);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  core::LogLine(core::LogLevel::kInfo, "stopping")
      .kv("signal", strsignal(sig)).kv("grace_s", int64_t(grace.count()))
      .kv("sessions", int64_t(smtp_ctx.limiter.total())).kv("deliveries", int64_t(delivery.in_flight()))
      .emit();
  for (size_t i = 0; i < loops.size(); ++i) {
    loops[i]->post([service = services[i].get(), pop3 = pop3_services[i].get(),
                    imap = imap_services[i].get()] {
      service->close();
      pop3->close();
      imap->close();
    });
  }
  std::promise<mta::DeliveryService::DrainReport> drained;
  delivery.drain(std::chrono::duration_cast<std::chrono::milliseconds>(grace).count(),
                 [&drained](mta::DeliveryService::DrainReport r) { drained.set_value(r); });
  while (smtp_ctx.limiter.total() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const size_t cut = smtp_ctx.limiter.total();
  const auto report = drained.get_future().get();
  delivery_loop.post([&] {
    delivery.stop();
    delivery_loop.stop();
  });
  admin_loop.post([&] {
    admin.close();
    admin_loop.stop();
  });
  for (auto& loop : loops) loop->post([l = loop.get()] { l->stop(); });
  for (auto& t : threads) t.join();
  delivery_thread.join();
  admin_thread.join();
  writer.stop();  // every accepted commit is written before the queue closes
  services.clear();
  pop3_services.clear();
  imap_services.clear();
  loops.clear();
  core::LogLine(core::LogLevel::kInfo, "stopped")
      .kv("sessions_cut", int64_t(cut)).kv("deliveries_finished", int64_t(report.finished))
      .kv("deliveries_cut", int64_t(report.released)).emit();
  return 0;
}

int check_config(const std::string& path) {
  auto rt = mta::load_runtime(path);
  if (!rt) return fail(rt.status().message());
  const mta::Config& c = *(*rt)->config;
  std::printf("%s: ok (%zu listeners, %zu users, %zu local domains)\n", path.c_str(),
              c.listeners.size(), (*rt)->users->size(), c.local_domains.size());
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
  auto db = queue::Db::open(mta::queue_dir(*cfg), queue::OpenMode::kReadOnly);
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
  if (verb == "queue" || verb == "suppression" || verb == "route" || verb == "reload" ||
      verb == "status") {
    auto cfg = load(config_flag(args));
    if (!cfg) return fail(cfg.status().message());
    const int rc = mta::admin_cli(*cfg, positional(args));
    if (rc == 2) fail(kUsage);
    return rc;
  }
  if (verb == "mailbox") return mailbox_cmd(args);
  if (verb == "dkim" && args.size() >= 2 && args[1] == "keygen") return dkim_keygen(args);
  if (verb == "help" || verb == "--help" || verb == "-h") {
    std::printf("%s", kUsage);
    return 0;
  }
  return fail(kUsage);
}
