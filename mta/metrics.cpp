#include "mta/metrics.h"

#include <array>
#include <map>
#include <mutex>
#include <utility>

#include "policy/relay.h"

namespace mta::metrics {
namespace {

constexpr std::array<std::string_view, 3> kClassNames = {"local", "remote", "smarthost"};
constexpr std::string_view kQueueMessages = "porter_queue_messages";
constexpr std::string_view kQueueMessagesHelp = "Messages in the queue.";
constexpr std::string_view kQueueAge = "porter_queue_oldest_message_age_seconds";
constexpr std::string_view kQueueAgeHelp =
    "Seconds since the oldest message in the queue was accepted (0 when empty).";

core::Registry& reg() { return core::metrics_registry(); }

core::CounterFamily& accepted_family() {
  static core::CounterFamily& f =
      reg().counter("porter_messages_accepted_total",
                    "Messages committed durably to the queue, by listener role.", {"listener"});
  return f;
}

core::CounterFamily& connections_family() {
  static core::CounterFamily& f = reg().counter(
      "porter_connections_total", "Client connections accepted.", {"protocol", "listener"});
  return f;
}

core::GaugeFamily& open_family() {
  static core::GaugeFamily& f = reg().gauge(
      "porter_connections_open", "Client connections open now.", {"protocol", "listener"});
  return f;
}

core::CounterFamily& tls_family() {
  static core::CounterFamily& f =
      reg().counter("porter_tls_handshakes_total", "Server-side TLS handshakes completed.",
                    {"protocol", "listener"});
  return f;
}

core::CounterFamily& tls_failures_family() {
  static core::CounterFamily& f =
      reg().counter("porter_tls_handshake_failures_total",
                    "Server-side TLS handshakes that failed.", {"protocol", "listener"});
  return f;
}

core::CounterFamily& auth_failures_family() {
  static core::CounterFamily& f =
      reg().counter("porter_auth_failures_total", "Logins refused for a bad user name or password.",
                    {"protocol"});
  return f;
}

// One child per DeliveryClass, made once, so delivery code needs no lookup.
template <typename M>
struct ByClass {
  std::array<M*, kClassNames.size()> child{};
  template <typename F>
  explicit ByClass(F& family) {
    for (size_t i = 0; i < kClassNames.size(); ++i) child[i] = &family.with({kClassNames[i]});
  }
  M& operator[](DeliveryClass c) const { return *child[static_cast<size_t>(c)]; }
};

const ByClass<core::Counter>& delivered_by_class() {
  static const ByClass<core::Counter> c(reg().counter("porter_recipients_delivered_total",
                                                      "Recipients delivered for good.", {"class"}));
  return c;
}

const ByClass<core::Counter>& deferred_by_class() {
  static const ByClass<core::Counter> c(
      reg().counter("porter_recipients_deferred_total",
                    "Delivery attempts that left a recipient queued for a retry.", {"class"}));
  return c;
}

const ByClass<core::Counter>& bounced_by_class() {
  static const ByClass<core::Counter> c(
      reg().counter("porter_recipients_bounced_total", "Recipients failed for good.", {"class"}));
  return c;
}

const ByClass<core::Histogram>& latency_by_class() {
  static const ByClass<core::Histogram> c(reg().histogram(
      "porter_delivery_latency_seconds", "Seconds from acceptance to final delivery.",
      {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600}, {"class"}));
  return c;
}

std::mutex g_probe_mu;
std::function<QueueProbe()> g_probe;  // guarded by g_probe_mu

}  // namespace

std::string_view protocol_name(Protocol protocol) {
  switch (protocol) {
    case Protocol::kSmtp:
      return "smtp";
    case Protocol::kPop3:
      return "pop3";
    case Protocol::kImap:
      return "imap";
  }
  return "?";
}

std::string_view listener_name(const ListenerConfig& listener) {
  switch (listener.protocol) {
    case Protocol::kSmtp:
      return policy::role_name(listener.role);
    case Protocol::kPop3:
      return listener.implicit_tls ? "pop3s" : "pop3";
    case Protocol::kImap:
      return listener.implicit_tls ? "imaps" : "imap";
  }
  return "?";
}

core::Counter& messages_accepted(std::string_view listener) {
  return accepted_family().with({listener});
}

core::Counter& delivered(DeliveryClass c) { return delivered_by_class()[c]; }
core::Counter& deferred(DeliveryClass c) { return deferred_by_class()[c]; }
core::Counter& bounced(DeliveryClass c) { return bounced_by_class()[c]; }
core::Histogram& delivery_latency(DeliveryClass c) { return latency_by_class()[c]; }

core::Counter& auth_failures(Protocol protocol) {
  return auth_failures_family().with({protocol_name(protocol)});
}

const ListenerMetrics& listener_metrics(const ListenerConfig& listener) {
  static std::mutex mu;
  static std::map<std::pair<Protocol, std::string_view>, ListenerMetrics> made;
  const std::string_view protocol = protocol_name(listener.protocol);
  const std::string_view name = listener_name(listener);  // static storage: a usable key
  std::lock_guard lock(mu);
  auto it = made.find({listener.protocol, name});
  if (it == made.end()) {
    it = made.emplace(std::pair{listener.protocol, name},
                      ListenerMetrics{
                          open_family().with({protocol, name}),
                          connections_family().with({protocol, name}),
                          tls_family().with({protocol, name}),
                          tls_failures_family().with({protocol, name}),
                          listener.protocol == Protocol::kSmtp ? &messages_accepted(name) : nullptr,
                          auth_failures(listener.protocol),
                      })
             .first;
  }
  return it->second;
}

void set_queue_probe(std::function<QueueProbe()> probe) {
  std::lock_guard lock(g_probe_mu);
  g_probe = std::move(probe);
}

std::string render_metrics() {
  // Every family is registered before the first scrape, so dashboards see zeros, not gaps.
  accepted_family();
  connections_family();
  open_family();
  tls_family();
  tls_failures_family();
  auth_failures_family();
  delivered_by_class();
  deferred_by_class();
  bounced_by_class();
  latency_by_class();
  {
    // The probe runs once per scrape; the callback gauges report that one reading.
    std::lock_guard lock(g_probe_mu);
    if (g_probe) {
      const QueueProbe q = g_probe();
      reg().callback_gauge(kQueueMessages, kQueueMessagesHelp, [v = q.messages] { return v; });
      reg().callback_gauge(kQueueAge, kQueueAgeHelp,
                           [v = q.oldest_message_age_seconds] { return v; });
    } else {
      reg().callback_gauge(kQueueMessages, kQueueMessagesHelp, {});
      reg().callback_gauge(kQueueAge, kQueueAgeHelp, {});
    }
    return core::render_prometheus(reg());
  }
}

}  // namespace mta::metrics
