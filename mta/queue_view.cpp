#include "mta/queue_view.h"

#include <charconv>

#include "core/queue_id.h"
#include "mta/smtp/params.h"
#include "queue/admin.h"
#include "queue/store.h"

namespace mta {
namespace {

using nlohmann::json;

json recipient_json(const core::Recipient& r, const queue::RecipientStatus& st) {
  json out{{"address", r.address.str()},
           {"state", queue::recipient_state_name(st.state)},
           {"attempts", st.attempts}};
  if (st.last_attempt_ms) out["last_attempt_ms"] = st.last_attempt_ms;
  if (!st.last_reply.empty()) out["last_reply"] = st.last_reply;
  if (!st.remote_mta.empty()) out["remote_mta"] = st.remote_mta;
  if (r.notify) out["notify"] = smtp::format_notify(r.notify);
  if (!r.orcpt.empty()) out["orcpt"] = r.orcpt;
  return out;
}

json message_json(const queue::MessageRecord& m, int64_t now_ms) {
  json rcpts = json::array();
  for (size_t i = 0; i < m.envelope.recipients.size() && i < m.status.size(); ++i)
    rcpts.push_back(recipient_json(m.envelope.recipients[i], m.status[i]));
  json out{{"id", m.id},
           {"state", queue::state_name(m.state)},
           {"created_ms", m.created_ms},
           {"age_s", (now_ms - m.created_ms) / 1000},
           {"size", m.body_size},
           {"sender", m.envelope.sender.str()},
           {"recipients", rcpts}};
  if (m.state != queue::MessageState::kHeld) out["next_attempt_ms"] = m.next_attempt_ms;
  return out;
}

json envelope_json(const core::Envelope& e) {
  return json{{"client_ip", e.client_ip},
              {"helo", e.client_helo},
              {"listener", e.listener},
              {"tls", e.tls},
              {"auth_user", e.auth_user},
              {"body", core::body_type_name(e.body)},
              {"smtputf8", e.smtputf8},
              {"ret", e.ret == core::DsnRet::kFull      ? "FULL"
                      : e.ret == core::DsnRet::kHeaders ? "HDRS"
                                                        : ""},
              {"envid", e.envid},
              {"quarantine", e.quarantine},
              {"received_at_ms", e.received_at_ms}};
}

json shape_json(const queue::DomainShape& d) {
  return json{{"domain", d.domain}, {"total", d.total}, {"buckets", d.buckets}};
}

// The filter of GET /v1/queue; an error names the parameter.
core::Result<queue::ListFilter> list_filter(const QueryParams& params) {
  queue::ListFilter f;
  for (const auto& [key, value] : params) {
    if (key == "sender") {
      f.sender = value;
    } else if (key == "recipient") {
      f.recipient = value;
    } else if (key == "domain") {
      f.domain = value;
    } else if (key == "error") {
      f.error = value;
    } else if (key == "state") {
      auto s = queue::parse_state(value);
      if (!s) return core::Status::invalid("state: " + s.status().message());
      f.state = *s;
    } else if (key == "min_age" || key == "max_age") {
      auto a = queue::parse_age(value);
      if (!a) return core::Status::invalid(key + ": " + a.status().message());
      (key == "min_age" ? f.min_age_ms : f.max_age_ms) = *a;
    } else if (key == "limit") {
      auto n = parse_page_limit(value);
      if (!n) return n.status();
      f.limit = *n;
    } else if (key == "after") {
      if (!core::is_valid_queue_id(value)) return core::Status::invalid("after: not a queue ID");
      f.after = value;
    } else {
      return core::Status::invalid(key + ": unknown parameter");
    }
  }
  return f;
}

}  // namespace

core::Result<size_t> parse_page_limit(std::string_view value) {
  size_t n = 0;
  const auto r = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || r.ec != std::errc() || r.ptr != value.data() + value.size() || n == 0 ||
      n > 100000)
    return core::Status::invalid("limit: must be a number from 1 to 100000");
  return n;
}

core::Result<json> queue_list_json(const queue::Db& db, const QueryParams& params, int64_t now) {
  auto f = list_filter(params);
  if (!f) return f.status();
  json items = json::array();
  auto page = queue::list_messages(db, *f, now, [&](const queue::MessageRecord& m) {
    items.push_back(message_json(m, now));
    return true;
  });
  if (!page) return page.status();
  json out{{"messages", std::move(items)},
           {"matched", page->matched},
           {"scanned", page->scanned},
           {"unreadable", page->unreadable}};
  if (page->next_after) out["next_after"] = *page->next_after;
  return out;
}

core::Result<json> queue_summary_json(const queue::Db& db, int64_t now) {
  auto s = queue::summary(db, now);
  if (!s) return s.status();
  json domains = json::array();
  for (const auto& d : s->domains) domains.push_back(shape_json(d));
  return json{{"messages", s->messages},
              {"by_state",
               {{"active", s->by_state[size_t(queue::MessageState::kActive)]},
                {"deferred", s->by_state[size_t(queue::MessageState::kDeferred)]},
                {"held", s->by_state[size_t(queue::MessageState::kHeld)]}}},
              {"oldest_age_s", s->oldest_age_ms / 1000},
              {"oldest_id", s->oldest_id},
              {"buckets", queue::age_bucket_labels()},
              {"domains", domains},
              {"total", shape_json(s->all)},
              {"unreadable", s->unreadable}};
}

core::Result<json> queue_show_json(const queue::Db& db, const std::string& id, int64_t now) {
  auto m = queue::get(db, id);
  if (!m) return m.status();
  auto headers = queue::headers(db, id);
  if (!headers) return headers.status();
  json out = message_json(*m, now);
  out["envelope"] = envelope_json(m->envelope);
  out["delay_warned"] = m->delay_warned;
  out["headers"] = *headers;
  return out;
}

}  // namespace mta
