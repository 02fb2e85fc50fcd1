#include "mta/failure_policy.h"

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "core/date.h"
#include "core/log.h"
#include "mta/mime/dsn.h"
#include "queue/store.h"
#include "queue/writer.h"

namespace mta {
namespace {

using mime::DsnRecipient;

std::string host_of(const std::string& remote_mta) {
  return remote_mta.substr(0, remote_mta.find('['));
}

bool has_8bit(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

void log_suppressed(const std::string& id, const queue::Suppression& s) {
  core::LogLine(core::LogLevel::kInfo, "suppressed")
      .kv("id", id)
      .kv("scope", s.scope)
      .kv("to", "<" + s.address + ">")
      .kv("reason", s.reason)
      .remark(s.expires_ms == 0 ? "expires never" : "expires " + core::rfc5322_date(s.expires_ms))
      .emit();
}

}  // namespace

bool is_hard_bounce(const AttemptOutcome& o) {
  static constexpr std::array<std::string_view, 7> kAddressStatuses = {
      "5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"};
  if (o.kind != AttemptOutcome::Kind::kPermanent) return false;
  if (!o.local && !(o.from_remote && o.at_rcpt)) return false;
  return std::find(kAddressStatuses.begin(), kAddressStatuses.end(), o.status) !=
         kAddressStatuses.end();
}

FailurePolicy::FailurePolicy(const Config& config, queue::Db& db, queue::Scheduler& scheduler,
                             core::QueueIdGenerator& ids, const queue::RetryPolicy& retry,
                             SuppressionSettings suppression)
    : config_(config),
      db_(db),
      scheduler_(scheduler),
      ids_(ids),
      retry_(retry),
      suppression_(suppression),
      suppressions_(db) {}

void FailurePolicy::settle(const queue::MessageRecord& record,
                           std::vector<AttemptOutcome> outcomes, int64_t now_ms,
                           std::function<void(core::Status)> done, queue::Writer::Fill local,
                           std::optional<int64_t> due_by_ms) {
  settle(record, std::move(outcomes), now_ms,
         SettledDone([done = std::move(done)](core::Status s, const queue::SettleResult&) {
           done(std::move(s));
         }),
         std::move(local), due_by_ms);
}

void FailurePolicy::settle(const queue::MessageRecord& record, std::vector<AttemptOutcome> outcomes,
                           int64_t now_ms, SettledDone done, queue::Writer::Fill local,
                           std::optional<int64_t> due_by_ms) {
  const core::Envelope& env = record.envelope;
  const bool expired = queue::expired(retry_, record.created_ms, now_ms);
  std::vector<queue::Outcome> recorded;
  std::vector<DsnRecipient> failed;
  std::vector<DsnRecipient> delayed;
  std::vector<DsnRecipient> relayed;
  std::vector<queue::Suppression> suppressed;
  bool pending_after = false;

  for (AttemptOutcome& o : outcomes) {
    if (o.kind == AttemptOutcome::Kind::kTemporary && expired) {
      // RFC 3464 §2.3.4 / RFC 3463 4.4.7: a delivery time expired.
      o.kind = AttemptOutcome::Kind::kPermanent;
      o.reply = queue::expiry_reply(retry_, o.reply);
      o.status = "4.4.7";
      o.from_remote = false;
    }
    queue::Outcome q;
    q.rcpt = o.rcpt;
    q.reply = o.reply;
    q.remote_mta = o.remote_mta;
    q.kind = o.kind == AttemptOutcome::Kind::kDelivered   ? queue::Outcome::Kind::kDelivered
             : o.kind == AttemptOutcome::Kind::kPermanent ? queue::Outcome::Kind::kFailed
                                                          : queue::Outcome::Kind::kDeferred;
    recorded.push_back(q);
    const core::Recipient& rcpt = env.recipients.at(o.rcpt);
    if (o.kind == AttemptOutcome::Kind::kDelivered) {
      // RFC 3461 §5.2.2: NOTIFY=SUCCESS stops here when the next hop does not speak DSN.
      if (o.remote_dsn) continue;
      DsnRecipient d;
      d.recipient = rcpt;
      d.action = o.local ? DsnRecipient::Action::kDelivered : DsnRecipient::Action::kRelayed;
      d.status = o.status.empty() ? "2.0.0" : o.status;
      d.remote_mta = host_of(o.remote_mta);
      d.diagnostic = o.reply;
      d.diagnostic_from_remote = o.from_remote;
      d.last_attempt_ms = now_ms;
      if (mime::should_send_dsn(env, rcpt, d.action)) relayed.push_back(std::move(d));
      continue;
    }

    DsnRecipient d;
    d.recipient = rcpt;
    d.status = o.status;
    d.remote_mta = host_of(o.remote_mta);
    d.diagnostic = o.reply;
    d.diagnostic_from_remote = o.from_remote;
    d.last_attempt_ms = now_ms;
    if (o.kind == AttemptOutcome::Kind::kPermanent) {
      const bool was_pending = o.rcpt < record.status.size() &&
                               record.status[o.rcpt].state == queue::RecipientState::kPending;
      if (suppression_.enabled && !env.sender.empty() && was_pending && is_hard_bounce(o)) {
        queue::Suppression s;
        s.scope = env.auth_user;
        s.address = queue::suppression_address(rcpt.address);
        s.reason = o.reply;
        s.source = "bounce";
        s.added_ms = now_ms;
        s.expires_ms = suppression_.expire_ms > 0 ? now_ms + suppression_.expire_ms : 0;
        suppressed.push_back(std::move(s));
      }
      d.action = DsnRecipient::Action::kFailed;
      if (mime::should_send_dsn(env, rcpt, d.action)) failed.push_back(std::move(d));
    } else {
      pending_after = true;
      d.action = DsnRecipient::Action::kDelayed;
      d.will_retry_until_ms = record.created_ms + retry_.max_lifetime_ms;
      if (mime::should_send_dsn(env, rcpt, d.action)) delayed.push_back(std::move(d));
    }
  }

  const bool warn = pending_after && !record.delay_warned && retry_.delay_warning_ms > 0 &&
                    queue::delay_warning_due(retry_, record, now_ms) && !delayed.empty();
  std::vector<queue::NewMessage> notices;
  std::optional<core::Result<std::string>> original;  // read once, only if a notice needs it
  for (auto* group : {&failed, warn ? &delayed : nullptr, &relayed}) {
    if (!group || group->empty()) continue;
    if (!original) original = queue::read_body(db_, record.id);
    mime::DsnRequest req;
    req.reporting_mta = config_.hostname;
    req.queue_id = record.id;
    req.original = env;
    req.recipients = *group;
    if (*original) req.original_message = **original;
    req.now_ms = now_ms;
    const std::string dsn_id = ids_.next(now_ms);
    req.message_id = "<" + dsn_id + ".dsn@" + config_.hostname + ">";
    req.postmaster = "MAILER-DAEMON@" + config_.hostname;
    auto text = mime::compose_dsn(req);
    if (!text) {
      core::LogLine(core::LogLevel::kError, "dsn-compose-failed")
          .kv("id", record.id).remark(text.status().to_string()).emit();
      continue;
    }
    queue::NewMessage m;
    m.id = dsn_id;
    m.envelope.recipients.push_back(core::Recipient{env.sender, core::kNotifyNever, {}});
    m.envelope.smtputf8 = env.smtputf8 || env.sender.needs_utf8();
    m.envelope.body = has_8bit(*text) ? core::BodyType::k8BitMime : core::BodyType::k7Bit;
    m.envelope.listener = "dsn";
    m.envelope.received_at_ms = now_ms;
    m.now_ms = now_ms;
    m.body_chunks.push_back(std::move(*text));
    core::LogLine(core::LogLevel::kInfo, "dsn")
        .kv("id", record.id).kv("dsn_id", dsn_id)
        .kv("type", group == &failed ? "failure" : group == &delayed ? "delay" : "success")
        .kv("to", "<" + env.sender.str() + ">").emit();
    notices.push_back(std::move(m));
  }

  auto suppressions = std::make_shared<std::vector<queue::Suppression>>(std::move(suppressed));
  queue::Writer::Fill extra;
  if (!notices.empty() || local || !suppressions->empty()) {
    auto shared = std::make_shared<std::vector<queue::NewMessage>>(std::move(notices));
    extra = [this, shared, suppressions, id = record.id,
             local = std::move(local)](rocksdb::WriteBatch& batch) {
      for (auto& m : *shared) {
        // The writer rolls back this part of the batch and reports the failure.
        if (auto s = queue::add_new_message(db_, batch, m); !s) throw std::runtime_error(s.message());
      }
      // Refused entries (bad input only, staged nothing) must not cost the settle itself.
      std::erase_if(*suppressions, [&](const queue::Suppression& sup) {
        const core::Status s = suppressions_.stage_add(batch, sup);
        if (!s)
          core::LogLine(core::LogLevel::kError, "suppress-failed")
              .kv("id", id).kv("to", "<" + sup.address + ">").remark(s.to_string()).emit();
        return !s;
      });
      if (local) local(batch);
    };
  }
  scheduler_.settle(
      record.id, recorded, std::move(extra),
      [done = std::move(done), suppressions, id = record.id](core::Status s,
                                                             queue::SettleResult r) {
        if (s)
          for (const queue::Suppression& sup : *suppressions) log_suppressed(id, sup);
        done(std::move(s), r);
      },
      warn, due_by_ms);
}

}  // namespace mta
