#pragma once
// The delivery service: turns due queue entries into SMTP transactions (DESIGN.md "The path
// of one message", issue 3).
//
// Runs on one loop of its own. Each tick it takes due messages from the scheduler, splits
// their pending recipients by destination (the recipient domain, or the smarthost), and
// feeds per-destination job queues. A destination gets at most
// `max_connections_per_destination` connections and all together at most
// `max_delivery_connections`; a connection carries further jobs for its destination
// (connection reuse) up to `messages_per_connection`. A connection resolves its route
// (MX by preference, or the smarthost's address), tries the hops in order, and reports each
// recipient's outcome; when every job of a message has reported, the failure policy
// (mta/failure_policy.h) decides and the scheduler records it in one durable batch.
// Recipients in our own domains go to their mailboxes instead (mta/local_delivery.h), in
// that same batch. A destination domain with a throttle (`throttle_for`) gets at most that
// many messages started per minute (a sliding window); a message over it keeps those
// recipients without an attempt or a DSN and comes back when the window has room.
//
// Administration (`hold`, `release`, `remove`, `bounce`, `retry_now`) and graceful shutdown
// (`drain`) are requests from other threads (the admin API's), posted to the delivery loop,
// because the queue::Scheduler and its leases belong to that loop: a message being delivered
// is refused ("being delivered now; try again", kTemporary) rather than changed under the
// attempt. Each successful change logs one line: event hold / release / delete / bounce /
// flush, with id= and by=admin.
//
// Thread safety: start() and stop() are called on the delivery loop (or before run());
// poke(), flush(), the administration requests, drain() and in_flight() from any thread.
// Lifetime: the service must outlive the loop's run(), and the Writer must be stopped before
// the service is destroyed (as queue::Scheduler requires); requests posted while the loop
// runs are answered. Every `done` is called exactly once: on the delivery loop when the
// request is refused or needs no write, on the queue-writer thread when its write has
// committed, and, for a request still unanswered when the service or the loop goes away,
// with kTemporary ("delivery is shutting down") on the thread destroying it. `done` must
// not block: re-post to your own thread. drain()'s `done` runs on the delivery loop.
// Limits: the local recipients of a message that also has remote ones are stored when the
// remote attempt ends (one settle per message). Throttles count messages when they are
// taken from the queue, so a message waiting behind the connection limit counts early.
// Bulk administration is the caller's loop over IDs (list_messages, then one request each).
// Administration works also when start() was never called (delivery disabled): changes are
// written, nothing is delivered.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/queue_id.h"
#include "mta/config.h"
#include "mta/failure_policy.h"
#include "mta/net/loop.h"
#include "mta/net/timer.h"
#include "queue/db.h"
#include "queue/scheduler.h"
#include "queue/writer.h"

namespace dns {
class Resolver;
class Poster;
}  // namespace dns
namespace net {
class TlsContext;
}
namespace policy {
class LocalRecipients;
}
namespace mta::mailbox {
class Store;
}

namespace mta {

// The local recipients in force (mta/runtime.h): asked for at each message taken from the
// queue, so a reload's new users and aliases take effect at the next attempt.
using LocalRecipientsSource = std::function<std::shared_ptr<const policy::LocalRecipients>()>;

class DeliveryService {
 public:
  // `config` and `mailboxes` must outlive the service. [delivery] settings are read once;
  // a reload changes them only after a restart (mta::restart_needed names them).
  // `suppression` says whether hard bounces go on the suppression list, and for how long
  // (mta/failure_policy.h).
  DeliveryService(net::Loop& loop, const Config& config, queue::Db& db, queue::Writer& writer,
                  core::QueueIdGenerator& ids, LocalRecipientsSource local_recipients,
                  mailbox::Store& mailboxes, SuppressionSettings suppression = {});
  ~DeliveryService();
  DeliveryService(const DeliveryService&) = delete;
  DeliveryService& operator=(const DeliveryService&) = delete;

  core::Status start();
  // Stops taking work and closes connections; messages in flight keep their schedule entry
  // and are tried again after a restart. After drain() it only closes what is left.
  void stop();
  // New mail was queued: look at the schedule soon. Thread-safe (posts to the loop).
  void poke();
  // `porter queue flush [ID]`: makes deferred mail (one message, or all) due now and looks
  // at the schedule; the outcome is logged (by=cli). Thread-safe (posts to the loop).
  void flush(const std::optional<std::string>& id);

  // Held mail is never delivered until released. `true`: held now; `false`: held already.
  void hold(std::string id, std::function<void(core::Result<bool>)> done);
  // A held message becomes due now. `true`: released; `false`: it was not held.
  void release(std::string id, std::function<void(core::Result<bool>)> done);
  // Deletes the message (record, body, schedule entry) without notice to anyone.
  void remove(std::string id, std::function<void(core::Status)> done);
  // Fails every pending recipient now with "550 5.0.0 <reason>" ("bounced by the
  // administrator" when empty; control characters become spaces, at most 200 bytes) and
  // queues the failure DSN to the sender in the same batch that deletes the message, as a
  // 5xx from a server would (none for the null sender or NOTIFY=NEVER). Held mail may be
  // bounced. Answers how many recipients failed.
  void bounce(std::string id, std::string reason, std::function<void(core::Result<size_t>)> done);
  // Makes deferred mail due now: one message (scope.id), every message with a pending
  // recipient in scope.domain, or all; answers how many moved (queue::Scheduler::flush).
  void retry_now(queue::FlushScope scope, std::function<void(core::Result<size_t>)> done);

  struct DrainReport {
    size_t finished = 0;  // messages whose attempt ended and committed during the drain
    size_t released = 0;  // messages given up at the deadline, their leases ended
  };
  // Graceful shutdown, step one (thread-safe; posts to the loop). From now on no message is
  // taken from the queue (poke, flush and the timer take nothing; administration still
  // works). Messages already taken go on: their waiting jobs still start as connection room
  // allows, and each ends with its normal settle. When none is left, or after grace_ms,
  // whichever comes first, every attempt still running is aborted, the leases of its
  // messages end without an outcome (their schedule entries stand, so they are tried again
  // at their old time after a restart; nothing is counted against them), and `done` runs on
  // the delivery loop. Settles handed to the writer before the deadline are not waited for:
  // Writer::stop() writes them. Then call stop() on the loop and stop the loop. A drain is
  // not undone; a second drain while one runs shares its end, at the earlier deadline.
  void drain(int64_t grace_ms, std::function<void(DrainReport)> done);
  // Messages taken from the queue whose outcome is not yet committed. Any thread.
  size_t in_flight() const;

  struct Impl;

 private:
  // Shared so that work posted to the loop can tell that the service is gone (weak_ptr).
  std::shared_ptr<Impl> impl_;
};

}  // namespace mta
