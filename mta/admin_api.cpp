#include "mta/admin_api.h"

#include <unistd.h>

#include <fstream>
#include <optional>
#include <stdexcept>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/log.h"
#include "core/address.h"
#include "core/queue_id.h"
#include "mta/metrics.h"
#include "mta/net/worker.h"
#include "mta/queue_view.h"
#include "mta/route_explain.h"
#include "policy/users.h"
#include "queue/store.h"

namespace mta {
namespace {

using nlohmann::json;

http::Response error(int status, const std::string& what) {
  return http::json(status, json{{"error", what}});
}

// A queue change's refusal as an HTTP status: the message is gone, or busy / in another state.
http::Response change_refused(const core::Status& s) {
  switch (s.kind()) {
    case core::Status::Kind::kNotFound: return error(404, s.message());
    case core::Status::Kind::kTemporary:
    case core::Status::Kind::kInvalid: return error(409, s.message());
    default: return error(500, s.message());
  }
}

// A view's error as an HTTP status.
http::Response view_error(const core::Status& s) {
  if (s.kind() == core::Status::Kind::kInvalid) return error(400, s.message());
  return change_refused(s);
}

// Splits "/v1/queue/ABC/hold" into segments; matches "{id}" against any one segment.
bool match(std::string_view pattern, std::string_view path, std::string& id) {
  while (!pattern.empty() && !path.empty()) {
    const size_t pe = pattern.find('/', 1), te = path.find('/', 1);
    const std::string_view p = pattern.substr(0, pe), t = path.substr(0, te);
    if (p == "/{id}") {
      id = std::string(t.substr(1));
    } else if (p != t) {
      return false;
    }
    pattern = pe == std::string_view::npos ? std::string_view() : pattern.substr(pe);
    path = te == std::string_view::npos ? std::string_view() : path.substr(te);
  }
  return pattern.empty() && path.empty();
}

// The scope and address parameters of a suppression change; an error names the parameter.
core::Result<std::pair<std::string, std::string>> suppression_target(const http::Request& r) {
  const auto address = r.query_param("address");
  if (!address) return core::Status::invalid("address: required");
  auto parsed = core::parse_mailbox(*address, true);
  if (!parsed) return core::Status::invalid("address: " + parsed.status().message());
  return std::make_pair(std::string(r.query_param("scope").value_or("")),
                        queue::suppression_address(*parsed));
}

}  // namespace

struct AdminApi::Call {
  http::Request request;
  std::shared_ptr<http::Responder> responder;  // shared: callbacks are copied around
  std::string id;                              // the {id} of the route, a valid queue ID

  void answer(http::Response r) const { responder->respond(std::move(r)); }
  std::string param(std::string_view name) const {
    auto v = request.query_param(name);
    return v ? std::string(*v) : std::string();
  }
};

const AdminApi::RouteEntry AdminApi::kRoutes[] = {
    {"GET", "/v1/status", &AdminApi::status},
    {"GET", "/v1/queue", &AdminApi::list},
    {"GET", "/v1/queue/summary", &AdminApi::summary},
    {"POST", "/v1/queue/flush", &AdminApi::flush},
    {"GET", "/v1/queue/{id}", &AdminApi::show},
    {"GET", "/v1/queue/{id}/message", &AdminApi::message},
    {"GET", "/v1/queue/{id}/trace", &AdminApi::trace},
    {"POST", "/v1/queue/{id}/hold", &AdminApi::hold},
    {"POST", "/v1/queue/{id}/release", &AdminApi::release},
    {"POST", "/v1/queue/{id}/retry", &AdminApi::retry},
    {"POST", "/v1/queue/{id}/bounce", &AdminApi::bounce},
    {"DELETE", "/v1/queue/{id}", &AdminApi::remove},
    {"GET", "/v1/suppression", &AdminApi::suppression_list},
    {"POST", "/v1/suppression", &AdminApi::suppression_add},
    {"DELETE", "/v1/suppression", &AdminApi::suppression_remove},
    {"GET", "/v1/route", &AdminApi::route},
    {"POST", "/v1/reload", &AdminApi::reload},
    {"GET", "/metrics", &AdminApi::metrics},
};

AdminApi::AdminApi(net::Loop& loop, AdminContext ctx)
    : loop_(loop),
      ctx_(std::move(ctx)),
      server_(loop, http::ServerOptions{"admin", {}, 30'000, 64},
              [this](http::Request r, http::Responder res) { dispatch(std::move(r), std::move(res)); }) {}

AdminApi::~AdminApi() = default;

core::Status AdminApi::listen(const Config& c) {
  if (!c.admin_token_file.empty()) {
    std::ifstream in(c.admin_token_file);
    if (!in) return core::Status::io("admin.token_file: cannot read " + c.admin_token_file);
    std::getline(in, token_);
    if (token_.size() < 16)
      return core::Status::invalid("admin.token_file: the token (first line of " +
                                   c.admin_token_file + ") must be at least 16 characters");
  }
  if (const std::string path = admin_socket_path(c); !path.empty())
    if (auto s = server_.listen_unix(path, c.admin_socket_mode); !s) return s;
  if (!c.admin_listen.empty())
    if (auto s = server_.listen_tcp(c.admin_listen_host, c.admin_listen_port); !s) return s;
  return core::Status::ok();
}

void AdminApi::close() {
  server_.close();
  dns_.reset();
}

void AdminApi::dispatch(http::Request request, http::Responder responder) {
  Call c{std::move(request), std::make_shared<http::Responder>(std::move(responder)), {}};
  // The socket's file mode guards the socket; TCP needs the token.
  if (!c.request.from_unix_socket()) {
    const auto auth = c.request.headers.get("Authorization");
    const std::string_view given =
        auth && auth->substr(0, 7) == "Bearer " ? auth->substr(7) : std::string_view();
    if (!policy::constant_time_equals(given, token_))
      return c.answer(error(401, "a valid \"Authorization: Bearer <token>\" is required"));
  }
  bool path_known = false;
  for (const RouteEntry& r : kRoutes) {
    if (!match(r.pattern, c.request.path, c.id)) continue;
    path_known = true;
    if (c.request.method != r.method) continue;
    if (std::string_view(r.pattern).find("{id}") != std::string_view::npos &&
        !core::is_valid_queue_id(c.id))
      return c.answer(error(404, "not a queue ID: " + c.id));
    return (this->*r.handle)(c);
  }
  if (path_known) return c.answer(error(405, "method not allowed on " + c.request.path));
  c.answer(error(404, "no such route: " + c.request.path));
}

void AdminApi::off_loop(Call& c, std::function<http::Response()> work) {
  net::run_blocking(
      loop_, [responder = c.responder, work = std::move(work)] { responder->respond(work()); },
      [] {});
}

void AdminApi::status(Call& c) {
  const auto rt = ctx_.runtime.get();
  const int64_t now = core::SystemClock().now_ms();
  c.answer(http::json(200, json{{"pid", getpid()},
                                {"uptime_s", (now - ctx_.started_ms) / 1000},
                                {"config", rt->config->origin},
                                {"hostname", rt->config->hostname},
                                {"in_flight", ctx_.delivery.in_flight()}}));
}

void AdminApi::list(Call& c) {
  off_loop(c, [&db = ctx_.db, params = c.request.query_params] {
    auto j = queue_list_json(db, params, core::SystemClock().now_ms());
    return j ? http::json(200, *j) : view_error(j.status());
  });
}

void AdminApi::summary(Call& c) {
  off_loop(c, [&db = ctx_.db] {
    auto j = queue_summary_json(db, core::SystemClock().now_ms());
    return j ? http::json(200, *j) : view_error(j.status());
  });
}

void AdminApi::show(Call& c) {
  off_loop(c, [&db = ctx_.db, id = c.id] {
    auto j = queue_show_json(db, id, core::SystemClock().now_ms());
    return j ? http::json(200, *j) : view_error(j.status());
  });
}

void AdminApi::message(Call& c) {
  off_loop(c, [&db = ctx_.db, id = c.id] {
    auto body = queue::read_body(db, id);
    if (!body) return change_refused(body.status());
    return http::text(200, std::move(*body), "message/rfc822");
  });
}

void AdminApi::trace(Call& c) {
  off_loop(c, [trace = ctx_.trace, id = c.id] {
    return http::json(200, json{{"id", id}, {"lines", trace(id)}});
  });
}

void AdminApi::hold(Call& c) {
  ctx_.delivery.hold(c.id, [c](core::Result<bool> r) {
    if (!r) return c.answer(change_refused(r.status()));
    c.answer(http::json(200, json{{"id", c.id}, {"held", true}, {"changed", *r}}));
  });
}

void AdminApi::release(Call& c) {
  ctx_.delivery.release(c.id, [c](core::Result<bool> r) {
    if (!r) return c.answer(change_refused(r.status()));
    c.answer(http::json(200, json{{"id", c.id}, {"held", false}, {"changed", *r}}));
  });
}

void AdminApi::retry(Call& c) {
  ctx_.delivery.retry_now(queue::FlushScope{c.id, std::nullopt}, [c](core::Result<size_t> r) {
    if (!r) return c.answer(change_refused(r.status()));
    c.answer(http::json(200, json{{"id", c.id}, {"moved", *r}}));
  });
}

void AdminApi::flush(Call& c) {
  queue::FlushScope scope;
  if (const std::string d = c.param("domain"); !d.empty()) scope.domain = d;
  ctx_.delivery.retry_now(scope, [c](core::Result<size_t> r) {
    if (!r) return c.answer(change_refused(r.status()));
    c.answer(http::json(200, json{{"moved", *r}}));
  });
}

void AdminApi::bounce(Call& c) {
  ctx_.delivery.bounce(c.id, c.param("reason"), [c](core::Result<size_t> r) {
    if (!r) return c.answer(change_refused(r.status()));
    c.answer(http::json(200, json{{"id", c.id}, {"failed", *r}}));
  });
}

void AdminApi::remove(Call& c) {
  ctx_.delivery.remove(c.id, [c](core::Status s) {
    if (!s) return c.answer(change_refused(s));
    c.answer(http::json(200, json{{"id", c.id}, {"deleted", true}}));
  });
}

void AdminApi::route(Call& c) {
  const auto rt = ctx_.runtime.get();
  if (!dns_) {
    auto d = DnsStack::create(loop_, *rt->config);
    if (!d) return c.answer(error(500, d.status().message()));
    dns_ = std::move(*d);
  }
  const RouteQuestion q{c.param("from"), c.param("to")};
  if (q.to.empty()) return c.answer(error(400, "to: the recipient address is required"));
  auto s = explain_route(q, rt, *dns_->resolver,
                         [c](json out) { c.answer(http::json(200, out)); });
  if (!s) c.answer(error(400, s.message()));
}

void AdminApi::suppression_list(Call& c) {
  std::optional<std::string> scope, after;
  size_t limit = 1000;
  for (const auto& [key, value] : c.request.query_params) {
    if (key == "scope") {
      scope = value;
    } else if (key == "after") {
      after = value;
    } else if (key == "limit") {
      auto n = parse_page_limit(value);
      if (!n) return c.answer(error(400, n.status().message()));
      limit = *n;
    } else {
      return c.answer(error(400, key + ": unknown parameter"));
    }
  }
  off_loop(c, [&list = ctx_.suppressions, scope, after, limit] {
    json items = json::array();
    std::string last_key;
    auto n = list.list(scope ? std::optional<std::string_view>(*scope) : std::nullopt, after,
                       limit, core::SystemClock().now_ms(), [&](const queue::Suppression& s) {
                         items.push_back(json{{"scope", s.scope},
                                              {"address", s.address},
                                              {"reason", s.reason},
                                              {"source", s.source},
                                              {"added_ms", s.added_ms},
                                              {"expires_ms", s.expires_ms}});
                         last_key = queue::suppression_key(s.scope, s.address);
                         return true;
                       });
    if (!n) return error(500, n.status().message());
    json out{{"suppressions", items}};
    if (*n == limit) out["next_after"] = last_key;
    return http::json(200, out);
  });
}

void AdminApi::suppression_add(Call& c) {
  auto target = suppression_target(c.request);
  if (!target) return c.answer(error(400, target.status().message()));
  const int64_t now = core::SystemClock().now_ms();
  queue::Suppression s{target->first, target->second, c.param("reason"), "admin", now, 0};
  if (s.reason.empty()) s.reason = "added by the administrator";
  if (const std::string days = c.param("expire_days"); !days.empty()) {
    char* end = nullptr;
    const unsigned long d = std::strtoul(days.c_str(), &end, 10);
    if (*end || d > 36500) return c.answer(error(400, "expire_days: must be 0 to 36500"));
    s.expires_ms = d == 0 ? 0 : now + int64_t(d) * 86'400'000;
  }
  ctx_.writer.submit(
      [&list = ctx_.suppressions, s](rocksdb::WriteBatch& b) {
        if (auto st = list.stage_add(b, s); !st) throw std::runtime_error(st.message());
      },
      [c, s](core::Status st) {
        if (!st) return c.answer(error(400, st.message()));
        core::LogLine(core::LogLevel::kInfo, "suppressed")
            .kv("scope", s.scope).kv("to", "<" + s.address + ">").kv("by", "admin")
            .kv("reason", s.reason).emit();
        c.answer(http::json(200, json{{"scope", s.scope}, {"address", s.address}, {"added", true}}));
      });
}

void AdminApi::suppression_remove(Call& c) {
  auto target = suppression_target(c.request);
  if (!target) return c.answer(error(400, target.status().message()));
  auto [scope, address] = *target;
  auto found = ctx_.suppressions.find(scope, address, core::SystemClock().now_ms());
  if (!found) return c.answer(error(500, found.status().message()));
  if (!*found) return c.answer(error(404, "<" + address + "> is not suppressed in scope \"" + scope + "\""));
  ctx_.writer.submit(
      [&list = ctx_.suppressions, scope, address](rocksdb::WriteBatch& b) {
        if (auto st = list.stage_remove(b, scope, address); !st) throw std::runtime_error(st.message());
      },
      [c, scope, address](core::Status st) {
        if (!st) return c.answer(error(500, st.message()));
        core::LogLine(core::LogLevel::kInfo, "unsuppressed")
            .kv("scope", scope).kv("to", "<" + address + ">").kv("by", "admin").emit();
        c.answer(http::json(200, json{{"scope", scope}, {"address", address}, {"removed", true}}));
      });
}

void AdminApi::reload(Call& c) {
  off_loop(c, [reload = ctx_.reload] {
    const core::Status s = reload();
    if (!s) return error(422, s.message());
    return http::json(200, json{{"reloaded", true}});
  });
}

void AdminApi::metrics(Call& c) {
  c.answer(http::text(200, metrics::render_metrics(), "text/plain; version=0.0.4; charset=utf-8"));
}

}  // namespace mta
