#pragma once
// Porter's metrics: every porter_* name, its labels and its meaning, as accessors into the
// process-wide core::metrics_registry(), and render_metrics() for GET /metrics.
//
// Accessors taking label values look the child up under a mutex: call them once (per
// listener, per connection start, at construction) and keep the reference; updating a kept
// Counter/Gauge/Histogram is a relaxed atomic operation. Accessors taking an enum return a
// child made in advance and cost nothing.
//
// Label values:
//   listener  the [[listener]] role: "submission", "submissions", "relay", "pop3", "pop3s",
//             "imap", "imaps" (listener_name()); listeners sharing a role share the series
//   protocol  "smtp", "pop3", "imap"
//   class     where a recipient went: "local" (mailbox), "remote" (MX), "smarthost"
//   type      DNS record type: "A", "AAAA", "MX", "TXT", "PTR"
//
// Metrics defined in the lower layers (they cannot include this file) and listed here so that
// this header is the one index:
//   queue/writer.cpp   porter_queue_commit_batch_size{}            histogram, requests per batch
//                      porter_queue_commits_total{result}          synced batches, "ok"|"failed"
//                      porter_queue_commit_duration_seconds{}      histogram, Write + WAL fsync
//   queue/db.cpp       porter_rocksdb_write_stalls_total{condition}  a column family entered
//                                                                  "delayed" or "stopped"
//                      porter_rocksdb_write_stall_seconds_total{}  time any family spent stalled
//   dns/cares_resolver porter_dns_queries_total{type,result}      upstream queries by outcome:
//                                                                  "ok"|"nodata"|"nxdomain"|
//                                                                  "servfail"|"timeout"|"error"
//   dns/cache.cpp      porter_dns_cache_hits_total{type}           answered from the cache
//                      porter_dns_cache_misses_total{type}         sent upstream
//                      porter_dns_cache_coalesced_total{type}      joined a query in flight
//
// Threading: all accessors and render_metrics() from any thread. Limits: listener series are
// per role, not per address:port.

#include <functional>
#include <string>
#include <string_view>

#include "core/metrics.h"
#include "mta/config.h"

namespace mta::metrics {

enum class DeliveryClass { kLocal, kRemote, kSmarthost };

// "smtp", "pop3", "imap".
std::string_view protocol_name(Protocol protocol);
// The listener label for this listener: its role name (see above).
std::string_view listener_name(const ListenerConfig& listener);

// porter_messages_accepted_total{listener}: messages committed durably (counted when the synced
// batch holding one returns, just before its 250; once per message, not per recipient).
core::Counter& messages_accepted(std::string_view listener);

// porter_recipients_delivered_total{class}: recipients delivered for good (remote 2xx, or
// stored in the mailbox), once per recipient.
core::Counter& delivered(DeliveryClass c);
// porter_recipients_deferred_total{class}: delivery attempts that left a recipient queued for
// a retry (4xx, connection or DNS failure), once per recipient per attempt.
core::Counter& deferred(DeliveryClass c);
// porter_recipients_bounced_total{class}: recipients failed for good (5xx or queue lifetime
// expired), once per recipient; the DSN to the sender is a new message of its own.
core::Counter& bounced(DeliveryClass c);
// porter_delivery_latency_seconds{class}: seconds from acceptance (the queue record's
// creation) to final delivery, observed with delivered(); buckets 0.01 s .. 3600 s.
core::Histogram& delivery_latency(DeliveryClass c);

// The per-listener series a connection touches, looked up once per listener.
struct ListenerMetrics {
  core::Gauge& connections_open;     // porter_connections_open{protocol,listener}
  core::Counter& connections;        // porter_connections_total{protocol,listener}
  core::Counter& tls_handshakes;     // porter_tls_handshakes_total{protocol,listener}: ok
  core::Counter& tls_failures;       // porter_tls_handshake_failures_total{protocol,listener}
  core::Counter* messages_accepted;  // porter_messages_accepted_total{listener}; SMTP only
  core::Counter& auth_failures;      // porter_auth_failures_total{protocol}
};
// The series for `listener`, made at the first call for its (protocol, role); the reference
// stays valid for the process's life.
const ListenerMetrics& listener_metrics(const ListenerConfig& listener);

// porter_auth_failures_total{protocol}: logins refused for a bad user name or password
// (SMTP AUTH, POP3 USER/PASS and AUTH, IMAP LOGIN and AUTHENTICATE), once per attempt.
core::Counter& auth_failures(Protocol protocol);

// What the daemon reports about its queue at every scrape.
struct QueueProbe {
  double messages = 0;                    // porter_queue_messages: messages in the queue
  double oldest_message_age_seconds = 0;  // porter_queue_oldest_message_age_seconds; 0: empty
};
// Installs the function render_metrics() calls (once per scrape, on the admin API's thread,
// so it must be thread-safe and cheap) to fill the two queue gauges; an empty function
// removes them from the output. Set by the daemon after the queue opens.
void set_queue_probe(std::function<QueueProbe()> probe);

// Every registered metric in the text exposition format 0.0.4, for GET /metrics
// (Content-Type: text/plain; version=0.0.4; charset=utf-8). Families with no samples yet
// still show their HELP and TYPE.
std::string render_metrics();

}  // namespace mta::metrics
