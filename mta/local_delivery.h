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
// gave it in RCPT, so plus-address tags stay visible to filters), with what IMAP reads
// without the bytes (imap_data_of(): ENVELOPE, BODY, BODYSTRUCTURE and the search summary),
// computed once over the first copy's exact bytes: the copies differ only in those two
// leading fields, which none of it shows.
// Appends::settled() tells the store's watchers (IMAP sessions, mailbox/events.h) which
// mailboxes got mail once the settle is committed.
//
// Threading: plan() and prepare() on the delivery loop; Appends::stage() on the queue writer
// thread (it is the settle's fill) and Appends::settled() in the settle's `done`, also there.
// The LocalRecipients, the Store and the Db must outlive this object and its Appends.
//
// Limits: a recipient is one unit of the queue, so an alias whose members are partly over
// quota waits whole (452) until all have room; the quota is checked when delivering, against
// what is committed, so concurrent deliveries may overshoot it by a message each. The
// message's bytes are held in memory (once, whatever the number of copies) from prepare()
// until the batch has them; MIME parsing in prepare() runs on the delivery loop and is
// linear in the message size.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
    // The settle's outcome: after a failure the store forgets the counters this staged;
    // after success the mailboxes' watchers are told.
    void settled(const core::Status& status);
    // Where each copy went, in the order of Plan::copies; empty until staged.
    const std::vector<mailbox::Appended>& appended() const { return appended_; }

   private:
    friend class LocalDelivery;
    explicit Appends(mailbox::Store& store) : store_(store) {}

    mailbox::Store& store_;
    std::vector<std::string> prefixes_;  // one per copy but the first
    std::string message_;                // the first copy: its prefix, then the queued bytes
    std::vector<mailbox::Append> appends_;
    std::vector<mailbox::Appended> appended_;
    mailbox::Changes changes_;
  };

  LocalDelivery(mailbox::Store& store, const queue::Db& db);

  // Decides each of `rcpts` (indices into the record's recipients, all in local domains)
  // with `recipients`: who receives what, and their quotas.
  Plan plan(const policy::LocalRecipients& recipients, const queue::MessageRecord& record,
            const std::vector<size_t>& rcpts) const;

  // Reads the message and makes the appends of the plan's copies, each dated `now_ms`. If
  // the message cannot be read, every delivered outcome of the plan becomes 451 4.3.0 and
  // nullptr is returned; so it is when the plan has no copies.
  std::shared_ptr<Appends> prepare(const queue::MessageRecord& record, Plan& plan,
                                   int64_t now_ms) const;

 private:
  mailbox::Store& store_;
  const queue::Db& db_;
};

// The header lines put in front of a locally delivered copy.
std::string local_delivery_prefix(const core::Address& sender, const core::Address& recipient);

// What IMAP reads of a stored message without its bytes, from exactly those bytes (here for
// local delivery; the IMAP glue uses it for APPEND and for messages stored without it):
// ENVELOPE, BODYSTRUCTURE and BODY as IMAP4rev1 clients get them (not UTF8=ACCEPT), and the
// search summary: From, To, Cc and Bcc as "Name <local@domain>, ..." over every field of
// that name with display names RFC 2047-decoded, the first Subject and Message-ID decoded,
// and the first Date as Unix ms (0 when absent or unreadable).
mailbox::ImapData imap_data_of(std::string_view message);

// An RFC 5322 §3.3 date-time, also in the obsolete forms of §4.3 and the common broken ones
// (two- and three-digit years, named and military zones, comments, no seconds, no zone: read
// as UTC, a missing or misplaced day of the week, asctime order "Tue Nov 14 22:13:20 2023"),
// as Unix ms; nullopt when it cannot be read.
std::optional<int64_t> parse_rfc5322_date(std::string_view value);

}  // namespace mta
