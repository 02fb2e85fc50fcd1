#include <catch2/catch.hpp>

#include "mta/metrics.h"

namespace {

using mta::metrics::DeliveryClass;

TEST_CASE("unit: Porter's metrics all render, with the queue probe", "[mta][unit]") {
  std::string text = mta::metrics::render_metrics();
  for (const char* name :
       {"# TYPE porter_messages_accepted_total counter", "# TYPE porter_connections_open gauge",
        "# TYPE porter_tls_handshake_failures_total counter",
        "# TYPE porter_delivery_latency_seconds histogram",
        "porter_recipients_delivered_total{class=\"smarthost\"} 0",
        "porter_recipients_bounced_total{class=\"local\"} 0"}) {
    INFO(name);
    CHECK(text.find(name) != std::string::npos);
  }
  CHECK(text.find("porter_queue_messages") == std::string::npos);  // no probe yet

  int calls = 0;
  mta::metrics::set_queue_probe([&] {
    ++calls;
    return mta::metrics::QueueProbe{12, 3.5};
  });
  text = mta::metrics::render_metrics();
  CHECK(calls == 1);  // one reading per scrape for both gauges
  CHECK(text.find("\nporter_queue_messages 12\n") != std::string::npos);
  CHECK(text.find("\nporter_queue_oldest_message_age_seconds 3.5\n") != std::string::npos);
  mta::metrics::set_queue_probe({});
  CHECK(mta::metrics::render_metrics().find("porter_queue_messages") == std::string::npos);
}

TEST_CASE("unit: listener series are shared per protocol and role", "[mta][unit]") {
  mta::ListenerConfig sub{mta::Protocol::kSmtp, policy::ListenerRole::kSubmission, false};
  mta::ListenerConfig sub2 = sub;
  sub2.port = 2587;
  mta::ListenerConfig pop3s{mta::Protocol::kPop3, policy::ListenerRole::kRelay, true};
  const auto& a = mta::metrics::listener_metrics(sub);
  CHECK(&mta::metrics::listener_metrics(sub2) == &a);
  const auto& p = mta::metrics::listener_metrics(pop3s);
  CHECK(&p != &a);
  CHECK(p.messages_accepted == nullptr);
  REQUIRE(a.messages_accepted != nullptr);
  a.connections_open.inc();
  p.tls_failures.inc();
  a.messages_accepted->inc();
  mta::metrics::delivered(DeliveryClass::kRemote).inc();
  mta::metrics::delivery_latency(DeliveryClass::kRemote).observe(0.2);
  const std::string text = mta::metrics::render_metrics();
  CHECK(text.find("porter_connections_open{protocol=\"smtp\",listener=\"submission\"} 1\n") !=
        std::string::npos);
  CHECK(
      text.find("porter_tls_handshake_failures_total{protocol=\"pop3\",listener=\"pop3s\"} 1\n") !=
      std::string::npos);
  CHECK(text.find("porter_messages_accepted_total{listener=\"submission\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("porter_recipients_delivered_total{class=\"remote\"} 1\n") != std::string::npos);
  CHECK(text.find("porter_delivery_latency_seconds_bucket{class=\"remote\",le=\"0.25\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("porter_auth_failures_total{protocol=\"pop3\"} 0\n") != std::string::npos);
}

}  // namespace
