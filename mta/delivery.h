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
// Thread safety: everything runs on the delivery loop; start() and stop() are called there
// (or before run()).
// Limits: the local recipients of a message that also has remote ones are stored when the
// remote attempt ends (one settle per message). Throttles count messages when they are
// taken from the queue, so a message waiting behind the connection limit counts early.

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/queue_id.h"
#include "mta/config.h"
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

class DeliveryService {
 public:
  // `local_recipients` and `mailboxes` must outlive the service.
  DeliveryService(net::Loop& loop, const Config& config, queue::Db& db, queue::Writer& writer,
                  core::QueueIdGenerator& ids, const policy::LocalRecipients& local_recipients,
                  mailbox::Store& mailboxes);
  ~DeliveryService();
  DeliveryService(const DeliveryService&) = delete;
  DeliveryService& operator=(const DeliveryService&) = delete;

  core::Status start();
  // Stops taking work and closes connections; messages in flight keep their schedule entry
  // and are tried again after a restart.
  void stop();
  // New mail was queued: look at the schedule soon. Thread-safe (posts to the loop).
  void poke();
  // Makes deferred mail (one message, or all) due now and looks at the schedule.
  void flush(const std::optional<std::string>& id);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mta
