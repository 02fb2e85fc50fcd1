#pragma once
// Local delivery (issue 4, DESIGN.md "local domain ─▶ mailbox store"): the recipients of a
// queued message that are in our own domains go into their users' mailboxes, appended in
// the same batch that settles them in the queue, so each is delivered exactly once.
//
// For each local recipient plan() decides, like a remote server's RCPT reply would:
//   resolved to users, each with room  -> delivered: one copy per user, into INBOX, or
//                                         into Junk when DMARC asked for quarantine
//   resolved to nobody                 -> 550 5.1.1 (the configuration changed since RCPT)
//   some user over quota               -> 452 4.2.2, retried on the retry schedule
//   the quota could not be read        -> 451 4.3.0
// prepare() reads the queued message once; each copy is stored as
//   "Return-Path: <sender>" CRLF "Delivered-To: recipient" CRLF, then the queued bytes
// (RFC 5321 §4.4; Delivered-To as Postfix's local(8) writes it, the address as the client
// gave it in RCPT, so plus-address tags stay visible to filters).
//
// Threading: plan() and prepare() on the delivery loop; Appends::stage() on the queue writer
// thread (it is the settle's fill) and Appends::settled() in the settle's `done`, also there.
// The LocalRecipients, the Store and the Db must outlive this object and its Appends.
//
// Limits: a recipient is one unit of the queue, so an alias whose members are partly over
// quota waits whole (452) until all have room; the quota is checked when delivering, against
// what is committed, so concurrent deliveries may overshoot it by a message each. The
// message's bytes are held in memory from prepare() until the batch has them.

#include <memory>
#include <string>
#include <vector>

#include "mta/failure_policy.h"
#include "mta/mailbox/store.h"
#include "policy/local_recipients.h"
#include "queue/db.h"
#include "queue/record.h"

namespace mta {

class LocalDelivery {
 public:
  struct Copy {
    size_t rcpt = 0;   // index into the envelope's recipients
    std::string user;  // the login whose mailbox gets it
  };
  struct Plan {
    std::vector<AttemptOutcome> outcomes;  // one per recipient planned
    std::vector<Copy> copies;              // for the recipients whose outcome is delivered
    std::string mailbox;                   // "INBOX", or "Junk" for a quarantined message
  };

  // What one settle stages; shared by the fill and the settle's `done`.
  class Appends {
   public:
    // Adds every copy to the batch; throws when the store refuses (the writer then rolls the
    // whole settle back and reports kInvalid). Frees the message bytes once staged.
    void stage(rocksdb::WriteBatch& batch);
    // The settle's outcome: after a failure, the store forgets the counters this staged.
    void settled(const core::Status& status);
    // Where each copy went, in the order of Plan::copies; empty until staged.
    const std::vector<mailbox::Appended>& appended() const { return appended_; }

   private:
    friend class LocalDelivery;
    explicit Appends(mailbox::Store& store) : store_(store) {}

    mailbox::Store& store_;
    std::vector<std::string> prefixes_;  // one per copy
    std::vector<std::string> body_;      // the queued message's chunks
    std::vector<mailbox::Append> appends_;
    std::vector<mailbox::Appended> appended_;
    bool staged_ = false;
  };

  LocalDelivery(const policy::LocalRecipients& recipients, mailbox::Store& store,
                const queue::Db& db);

  // Decides each of `rcpts` (indices into the record's recipients, all in local domains).
  Plan plan(const queue::MessageRecord& record, const std::vector<size_t>& rcpts) const;

  // Reads the message and makes the appends of the plan's copies, each dated `now_ms`. If
  // the message cannot be read, every delivered outcome of the plan becomes 451 4.3.0 and
  // nullptr is returned; so it is when the plan has no copies.
  std::shared_ptr<Appends> prepare(const queue::MessageRecord& record, Plan& plan,
                                   int64_t now_ms) const;

 private:
  const policy::LocalRecipients& recipients_;
  mailbox::Store& store_;
  const queue::Db& db_;
};

// The header lines put in front of a locally delivered copy.
std::string local_delivery_prefix(const core::Address& sender, const core::Address& recipient);

}  // namespace mta
