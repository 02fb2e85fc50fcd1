#pragma once
// The SMTP service: binds sans-IO server sessions to network connections on one loop,
// and answers their requests with policy, the user database and the queue.
//
// SmtpContext is shared by every loop: its members are immutable after start-up or
// internally synchronised (throttle, limiter, app quotas, writer, id generator). Each loop
// owns one SmtpService, which listens on every configured listener with SO_REUSEPORT.
// Password checks run on libuv's worker pool (crypt is slow by design); queue commits on
// the writer thread; both come back to the loop with Loop::post.
//
// Port 25 mail from clients neither trusted nor authenticated gets the inbound checks
// (SPF at MAIL, DKIM and DMARC at the end of data, one Authentication-Results field); mail
// leaving through Porter gets the DMARC alignment check (policy/inbound_verdict.h and
// [submission] dmarc_alignment).
//
// Applications ([[app]], policy/apps.h) log in on the submission ports like users; then MAIL
// FROM and every From must be one of the app's senders (553 5.7.1 naming the app, whatever
// [submission] check_sender says), each MAIL counts against the app's messages_per_minute
// and messages_per_day (450 4.7.1 naming the app and the limit), DKIM signs with the app's
// dkim_selector when the From domain has that key, and every log line of its transactions
// (reject, queued) carries app=NAME.
//
// Limits: graceful drain on shutdown belongs to the daemon (Loop::stop aborts sessions).

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/clock.h"
#include "core/queue_id.h"
#include "mta/config.h"
#include "mta/inbound_checks.h"
#include "mta/login.h"
#include "mta/mailbox/store.h"
#include "mta/net/listener.h"
#include "mta/net/loop.h"
#include "mta/net/tls_context.h"
#include "mta/runtime.h"
#include "mta/smtp/server_session.h"
#include "policy/apps.h"
#include "policy/auth_throttle.h"
#include "policy/conn_limits.h"
#include "policy/dkim_signer.h"
#include "policy/local_recipients.h"
#include "policy/rate_limit.h"
#include "policy/relay.h"
#include "policy/users.h"
#include "queue/suppression.h"
#include "queue/writer.h"

namespace mta {

// What SMTP sessions read of one Runtime (mta/runtime.h), derived once per reload.
struct SmtpSettings {
  explicit SmtpSettings(std::shared_ptr<const Runtime> runtime);

  std::shared_ptr<const Runtime> runtime;
  policy::RelayConfig relay;
  // Session settings per listener role, indexed by policy::ListenerRole.
  std::array<smtp::ServerConfig, 3> session;
};

struct SmtpContext {
  // The throttle, limiter and rate limiters take their settings from the runtime in force
  // now; a reload does not change them (mta::restart_needed() names their keys).
  SmtpContext(RuntimeHolder& runtime, queue::Writer& writer, core::QueueIdGenerator& ids);

  // The settings of the runtime in force; a connection takes them when it starts and keeps
  // them to its end. Any thread.
  std::shared_ptr<const SmtpSettings> settings();

  RuntimeHolder& runtime;
  queue::Writer& writer;
  policy::AuthThrottle throttle;  // shared with POP3: one count of failed logins per client
  LoginServices login;            // POP3 and IMAP: users only (apps have no mailbox)
  LoginServices submission_login;  // SMTP AUTH: users and apps
  // Each app's messages per minute and per day; outlives reloads, so counts survive them.
  policy::AppQuota app_quota;
  policy::ConnectionLimiter limiter;
  // [rate]: messages counted at MAIL, recipients at RCPT.
  policy::RateLimiter user_messages;
  policy::RateLimiter user_recipients;
  policy::RateLimiter client_messages;
  policy::RateLimiter client_recipients;
  core::QueueIdGenerator& ids;
  core::SystemClock clock;
  // The users' mailboxes, for quotas at RCPT; null: no quota check.
  const mailbox::Store* mailboxes = nullptr;
  // Recipients not to be mailed again, refused at RCPT; null: no check.
  const queue::SuppressionList* suppressions = nullptr;
  // Called on a session's loop after each durable commit (wakes delivery); may be empty.
  std::function<void()> on_queued;

 private:
  // `config` is the runtime's in force now (kept alive by the delegating call).
  SmtpContext(RuntimeHolder& runtime, const Config& config, queue::Writer& writer,
              core::QueueIdGenerator& ids);

  std::mutex mu_;
  std::shared_ptr<const SmtpSettings> settings_;  // guarded by mu_
};

class SmtpService {
 public:
  SmtpService(net::Loop& loop, SmtpContext& ctx);
  ~SmtpService();
  // Opens every configured listener on this loop.
  core::Status listen();
  void close();

 private:
  net::Loop& loop_;
  SmtpContext& ctx_;
  // The settings the listeners were opened with (InboundChecks keeps their config).
  std::shared_ptr<const SmtpSettings> initial_;
  // SPF, DKIM and DMARC lookups; null when no check is configured to run.
  std::unique_ptr<InboundChecks> checks_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
};

}  // namespace mta
