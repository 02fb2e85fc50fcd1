#include "mta/local_delivery.h"

#include <stdexcept>

#include "queue/store.h"

namespace mta {
namespace {

using Kind = AttemptOutcome::Kind;

AttemptOutcome outcome(size_t rcpt, Kind kind, std::string reply, std::string status) {
  AttemptOutcome o;
  o.rcpt = rcpt;
  o.kind = kind;
  o.reply = std::move(reply);
  o.status = std::move(status);
  o.local = true;
  return o;
}

}  // namespace

std::string local_delivery_prefix(const core::Address& sender, const core::Address& recipient) {
  return "Return-Path: <" + sender.str() + ">\r\nDelivered-To: " + recipient.str() + "\r\n";
}

LocalDelivery::LocalDelivery(const policy::LocalRecipients& recipients, mailbox::Store& store,
                             const queue::Db& db)
    : recipients_(recipients), store_(store), db_(db) {}

LocalDelivery::Plan LocalDelivery::plan(const queue::MessageRecord& record,
                                        const std::vector<size_t>& rcpts) const {
  const core::Envelope& env = record.envelope;
  Plan plan;
  plan.mailbox = env.quarantine ? "Junk" : std::string(mailbox::kInbox);
  for (size_t i : rcpts) {
    const core::Address& to = env.recipients.at(i).address;
    const std::string who = "<" + to.str() + ">";
    const std::vector<std::string> users = recipients_.resolve(to);
    if (users.empty()) {
      plan.outcomes.push_back(
          outcome(i, Kind::kPermanent, "550 5.1.1 " + who + ": no such user here", "5.1.1"));
      continue;
    }
    const uint64_t incoming = record.body_size + local_delivery_prefix(env.sender, to).size();
    std::optional<AttemptOutcome> refused;
    for (const std::string& user : users) {
      // Read even without a quota: a mailbox the store cannot read defers here, on the retry
      // schedule, instead of failing the settle (which would retry at once).
      auto used = store_.bytes_used(user);
      if (!used) {
        refused = outcome(i, Kind::kTemporary,
                          "451 4.3.0 " + who + ": cannot read the mailbox of " + user + ": " +
                              used.status().message(),
                          "4.3.0");
        break;
      }
      const uint64_t quota = recipients_.quota_bytes(user);
      if (quota > 0 && *used + incoming > quota) {
        refused = outcome(i, Kind::kTemporary, "452 4.2.2 " + who + ": mailbox full", "4.2.2");
        break;
      }
    }
    if (refused) {
      plan.outcomes.push_back(std::move(*refused));
      continue;
    }
    plan.outcomes.push_back(outcome(
        i, Kind::kDelivered, "250 2.0.0 " + who + ": delivered to " + plan.mailbox, "2.0.0"));
    for (const std::string& user : users) plan.copies.push_back({i, user});
  }
  return plan;
}

std::shared_ptr<LocalDelivery::Appends> LocalDelivery::prepare(const queue::MessageRecord& record,
                                                               Plan& plan, int64_t now_ms) const {
  if (plan.copies.empty()) return nullptr;
  std::shared_ptr<Appends> a(new Appends(store_));
  auto s = queue::read_body_chunks(db_, record.id, [&](std::string_view chunk) {
    a->body_.emplace_back(chunk);
    return true;
  });
  if (!s) {
    for (AttemptOutcome& o : plan.outcomes) {
      if (o.kind != Kind::kDelivered) continue;
      o = outcome(o.rcpt, Kind::kTemporary,
                  "451 4.3.0 cannot read the queued message: " + s.message(), "4.3.0");
    }
    plan.copies.clear();
    return nullptr;
  }
  const core::Envelope& env = record.envelope;
  for (const Copy& c : plan.copies)
    a->prefixes_.push_back(local_delivery_prefix(env.sender, env.recipients.at(c.rcpt).address));
  // Views into prefixes_ and body_, which no longer change size.
  for (size_t i = 0; i < plan.copies.size(); ++i) {
    mailbox::Append append;
    append.user = plan.copies[i].user;
    append.mailbox = plan.mailbox;
    append.internal_date_ms = now_ms;
    append.parts.push_back(a->prefixes_[i]);
    for (const std::string& chunk : a->body_) append.parts.push_back(chunk);
    a->appends_.push_back(std::move(append));
  }
  return a;
}

void LocalDelivery::Appends::stage(rocksdb::WriteBatch& batch) {
  auto r = store_.stage_appends(batch, appends_);
  if (!r) throw std::runtime_error(r.status().to_string());
  staged_ = true;
  appended_ = std::move(r).value();
  appends_.clear();
  std::vector<std::string>().swap(body_);  // the batch holds the bytes now
}

void LocalDelivery::Appends::settled(const core::Status& status) {
  if (!status && staged_) store_.forget_staged();
}

}  // namespace mta
