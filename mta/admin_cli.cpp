#include "mta/admin_cli.h"

#include <cstdio>
#include <map>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mta/http/client.h"
#include "mta/http/request_parser.h"
#include "mta/queue_view.h"
#include "queue/db.h"
#include "queue/store.h"
#include "core/clock.h"

namespace mta {
namespace {

using nlohmann::json;

struct Args {
  std::vector<std::string> words;              // positional
  std::map<std::string, std::string> options;  // "--domain" -> "x"
  bool json = false;
};

// Options that take a value; everything else starting with "--" is a flag.
bool takes_value(std::string_view o) {
  return o == "--sender" || o == "--recipient" || o == "--domain" || o == "--state" ||
         o == "--older-than" || o == "--newer-than" || o == "--error" || o == "--limit" ||
         o == "--reason" || o == "--from" || o == "--to" || o == "--scope" || o == "--expire-days";
}

std::optional<Args> parse_args(const std::vector<std::string>& in) {
  Args a;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == "--json") {
      a.json = true;
    } else if (takes_value(in[i])) {
      if (i + 1 >= in.size()) return std::nullopt;
      a.options[in[i]] = in[i + 1];
      ++i;
    } else if (in[i].rfind("--", 0) == 0) {
      return std::nullopt;
    } else {
      a.words.push_back(in[i]);
    }
  }
  return a;
}

std::string encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string age_text(int64_t s) {
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

struct Call {
  std::string method = "GET";
  std::string path;
  QueryParams params;

  std::string target() const {
    std::string t = path;
    for (size_t i = 0; i < params.size(); ++i)
      t += (i == 0 ? "?" : "&") + params[i].first + "=" + encode(params[i].second);
    return t;
  }
};

class Client {
 public:
  explicit Client(const Config& c) : config_(c), socket_(admin_socket_path(c)) {}

  // The response body when the status is 2xx; else prints the error and returns nullopt.
  // When no daemon answers, the queue's read views come from the queue on disk.
  std::optional<std::string> call(const Call& call, int timeout_ms = 120'000) {
    if (socket_.empty()) {
      std::fprintf(stderr, "porter: admin.socket is off in this config; the CLI needs it\n");
      return std::nullopt;
    }
    auto r = http::http_request(http::Endpoint::unix_socket(socket_), call.method, call.target(),
                                {}, {}, timeout_ms);
    if (!r) {
      if (r.status().kind() == core::Status::Kind::kTemporary && call.method == "GET") {
        if (auto answer = offline(call)) {
          if (*answer) return std::move(**answer);
          std::fprintf(stderr, "porter: %s\n", answer->status().message().c_str());
          return std::nullopt;
        }
      }
      std::fprintf(stderr, "porter: is the daemon running? %s\n", r.status().message().c_str());
      return std::nullopt;
    }
    if (r->status / 100 != 2) {
      std::string what = r->body;
      try {
        what = json::parse(r->body).at("error").get<std::string>();
      } catch (const std::exception&) {
      }
      std::fprintf(stderr, "porter: %s (HTTP %d)\n", what.c_str(), r->status);
      return std::nullopt;
    }
    return std::move(r->body);
  }

 private:
  // The read routes over a read-only instance of the queue (RocksDB allows one beside a
  // writer, but here nobody writes); nullopt for any other route.
  std::optional<core::Result<std::string>> offline(const Call& call) {
    const std::string prefix = "/v1/queue";
    if (call.path.rfind(prefix, 0) != 0) return std::nullopt;
    auto db = queue::Db::open(queue_dir(config_), queue::OpenMode::kReadOnly);
    if (!db) return std::nullopt;
    std::fprintf(stderr, "porter: the daemon is not running; reading the queue in %s\n",
                 queue_dir(config_).c_str());
    const int64_t now = core::SystemClock().now_ms();
    const std::string rest = call.path.substr(prefix.size());
    core::Result<json> j = core::Status::not_found("no such route offline: " + call.path);
    if (rest.empty()) {
      j = queue_list_json(**db, call.params, now);
    } else if (rest == "/summary") {
      j = queue_summary_json(**db, now);
    } else if (rest.size() > 1 && rest.find('/', 1) == std::string::npos) {
      j = queue_show_json(**db, rest.substr(1), now);
    } else if (rest.size() > 9 && rest.substr(rest.size() - 8) == "/message") {
      return core::Result<std::string>(queue::read_body(**db, rest.substr(1, rest.size() - 9)));
    }
    if (!j) return core::Result<std::string>(j.status());
    return core::Result<std::string>(j->dump());
  }

  const Config& config_;
  std::string socket_;
};

// Prints `body` as JSON (--json) or through `human`; 1 when the call failed.
template <typename Human>
int show(const std::optional<std::string>& body, bool as_json, Human human) {
  if (!body) return 1;
  if (as_json) {
    std::printf("%s\n", body->c_str());
    return 0;
  }
  try {
    human(json::parse(*body));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "porter: unexpected answer from the daemon: %s\n", e.what());
    return 1;
  }
  return 0;
}

void print_list(const json& j) {
  std::printf("%-16s %5s %9s %-8s %s\n", "ID", "AGE", "SIZE", "STATE", "SENDER -> RECIPIENTS");
  for (const auto& m : j["messages"]) {
    std::string rcpts;
    for (const auto& r : m["recipients"])
      if (r["state"] == "pending") rcpts += " <" + r["address"].get<std::string>() + ">";
    std::printf("%-16s %5s %9llu %-8s <%s> ->%s\n", m["id"].get<std::string>().c_str(),
                age_text(m["age_s"].get<int64_t>()).c_str(),
                static_cast<unsigned long long>(m["size"].get<uint64_t>()),
                m["state"].get<std::string>().c_str(), m["sender"].get<std::string>().c_str(),
                rcpts.c_str());
    for (const auto& r : m["recipients"])
      if (r["state"] == "pending" && r.contains("last_reply"))
        std::printf("%44s<%s>: %s\n", "", r["address"].get<std::string>().c_str(),
                    r["last_reply"].get<std::string>().c_str());
  }
  const size_t n = j["matched"].get<size_t>();
  std::printf("%zu message%s%s\n", n, n == 1 ? "" : "s",
              j.contains("next_after") ? " (more: --limit, or the API's after=)" : "");
}

void print_summary(const json& j) {
  std::printf("%-24s %6s", "", "T");
  for (const auto& b : j["buckets"]) std::printf(" %6s", b.get<std::string>().c_str());
  std::printf("\n");
  auto row = [](const json& d) {
    std::printf("%-24s %6llu", d["domain"].get<std::string>().c_str(),
                static_cast<unsigned long long>(d["total"].get<uint64_t>()));
    for (const auto& n : d["buckets"])
      std::printf(" %6llu", static_cast<unsigned long long>(n.get<uint64_t>()));
    std::printf("\n");
  };
  row(j["total"]);
  for (const auto& d : j["domains"]) row(d);
  const auto& st = j["by_state"];
  std::printf("%llu messages (active %llu, deferred %llu, held %llu)",
              static_cast<unsigned long long>(j["messages"].get<uint64_t>()),
              static_cast<unsigned long long>(st["active"].get<uint64_t>()),
              static_cast<unsigned long long>(st["deferred"].get<uint64_t>()),
              static_cast<unsigned long long>(st["held"].get<uint64_t>()));
  if (!j["oldest_id"].get<std::string>().empty())
    std::printf("; oldest %s (%s)", age_text(j["oldest_age_s"].get<int64_t>()).c_str(),
                j["oldest_id"].get<std::string>().c_str());
  std::printf("\n");
}

void print_show(const json& m) {
  const auto& e = m["envelope"];
  std::printf("id: %s\nstate: %s\nage: %s\nsize: %llu\nfrom: <%s>\n",
              m["id"].get<std::string>().c_str(), m["state"].get<std::string>().c_str(),
              age_text(m["age_s"].get<int64_t>()).c_str(),
              static_cast<unsigned long long>(m["size"].get<uint64_t>()),
              m["sender"].get<std::string>().c_str());
  const std::string ret = e["ret"].get<std::string>(), envid = e["envid"].get<std::string>();
  if (!ret.empty() || !envid.empty())
    std::printf("dsn: ret=%s envid=%s\n", ret.empty() ? "-" : ret.c_str(),
                envid.empty() ? "-" : envid.c_str());
  for (const auto& r : m["recipients"]) {
    std::printf("to: <%s> %s", r["address"].get<std::string>().c_str(),
                r["state"].get<std::string>().c_str());
    if (r.contains("notify")) std::printf(" notify=%s", r["notify"].get<std::string>().c_str());
    if (r.contains("orcpt")) std::printf(" orcpt=%s", r["orcpt"].get<std::string>().c_str());
    if (r["attempts"].get<int>() > 0)
      std::printf(" attempts=%d last=\"%s\"", r["attempts"].get<int>(),
                  r.value("last_reply", "").c_str());
    std::printf("\n");
  }
  std::printf("client: %s helo=%s listener=%s tls=%s user=%s\nbody: %s smtputf8=%s\n\n%s",
              e["client_ip"].get<std::string>().c_str(), e["helo"].get<std::string>().c_str(),
              e["listener"].get<std::string>().c_str(), e["tls"].get<bool>() ? "yes" : "no",
              e["auth_user"].get<std::string>().empty() ? "-"
                                                        : e["auth_user"].get<std::string>().c_str(),
              e["body"].get<std::string>().c_str(), e["smtputf8"].get<bool>() ? "yes" : "no",
              m["headers"].get<std::string>().c_str());
}

void print_route(const json& j) {
  std::printf("from <%s> to <%s>: %s\n", j["from"].get<std::string>().c_str(),
              j["to"].get<std::string>().c_str(), j["route"].get<std::string>().c_str());
  if (j.contains("reply")) std::printf("  refused at RCPT: %s\n", j["reply"].get<std::string>().c_str());
  if (j.contains("mailboxes"))
    for (const auto& b : j["mailboxes"])
      std::printf("  mailbox of %s (quota %llu bytes; 0 = none)\n",
                  b["user"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(b["quota_bytes"].get<uint64_t>()));
  if (j.contains("smarthost"))
    std::printf("  smarthost %s port %d%s\n", j["smarthost"]["host"].get<std::string>().c_str(),
                j["smarthost"]["port"].get<int>(),
                j["smarthost"]["auth_user"].get<std::string>().empty() ? "" : " with AUTH");
  if (j.contains("mx")) {
    const auto& mx = j["mx"];
    std::printf("  MX lookup: %s%s%s\n", mx["outcome"].get<std::string>().c_str(),
                mx["detail"].get<std::string>().empty() ? "" : ": ",
                mx["detail"].get<std::string>().c_str());
    int n = 0;
    for (const auto& h : mx["hops"])
      std::printf("  %d. %s [%s]:%d preference %d\n", ++n, h["host"].get<std::string>().c_str(),
                  h["ip"].get<std::string>().c_str(), h["port"].get<int>(),
                  h["preference"].get<int>());
  }
  if (j.contains("tls_policy")) std::printf("  TLS: %s\n", j["tls_policy"].get<std::string>().c_str());
  if (j.contains("limits")) {
    const auto& l = j["limits"];
    std::printf("  limits: %d connections per destination (%d in all), %d messages per "
                "connection, %s per minute; retries after %s s; gives up after %d s\n",
                l["max_connections_per_destination"].get<int>(),
                l["max_delivery_connections"].get<int>(), l["messages_per_connection"].get<int>(),
                l["messages_per_minute"].get<int>() == 0
                    ? "no limit"
                    : std::to_string(l["messages_per_minute"].get<int>()).c_str(),
                l["retry_s"].dump().c_str(), l["max_lifetime_s"].get<int>());
  }
  std::printf("  DKIM: %s\n", j["dkim"]["signs"].get<bool>()
                                  ? ("signed for " + j["dkim"]["domain"].get<std::string>()).c_str()
                                  : "not signed (no key for the sender's domain)");
}

// hold, release, delete, retry-now, bounce: one request per ID; 1 if any failed.
int per_message(Client& client, const Args& a, const std::string& verb) {
  if (a.words.size() < 3) return 2;
  int rc = 0;
  for (size_t i = 2; i < a.words.size(); ++i) {
    const std::string& id = a.words[i];
    std::optional<std::string> body;
    if (verb == "delete") {
      body = client.call({"DELETE", "/v1/queue/" + encode(id), {}});
    } else if (verb == "bounce") {
      auto reason = a.options.find("--reason");
      QueryParams params;
      if (reason != a.options.end()) params.emplace_back("reason", reason->second);
      body = client.call({"POST", "/v1/queue/" + encode(id) + "/bounce", params});
    } else {
      body = client.call(
          {"POST", "/v1/queue/" + encode(id) + "/" + (verb == "retry-now" ? "retry" : verb), {}});
    }
    if (!body) {
      rc = 1;
      continue;
    }
    if (a.json) {
      std::printf("%s\n", body->c_str());
      continue;
    }
    const json j = json::parse(*body, nullptr, false);
    if (verb == "hold" || verb == "release")
      std::printf("%s: %s%s\n", id.c_str(), verb == "hold" ? "held" : "released",
                  j.value("changed", true) ? "" : " (already)");
    else if (verb == "delete")
      std::printf("%s: deleted\n", id.c_str());
    else if (verb == "bounce")
      std::printf("%s: bounced (%d recipients failed)\n", id.c_str(), j.value("failed", 0));
    else
      std::printf("%s: %s\n", id.c_str(), j.value("moved", 0) ? "due now" : "already due");
  }
  return rc;
}

void print_suppressions(const json& j) {
  std::printf("%-20s %-40s %-8s %s\n", "SCOPE", "ADDRESS", "SOURCE", "REASON");
  for (const auto& s : j["suppressions"])
    std::printf("%-20s %-40s %-8s %s\n",
                s["scope"].get<std::string>().empty() ? "(relay)" : s["scope"].get<std::string>().c_str(),
                s["address"].get<std::string>().c_str(), s["source"].get<std::string>().c_str(),
                s["reason"].get<std::string>().c_str());
  const size_t n = j["suppressions"].size();
  std::printf("%zu suppressed address%s\n", n, n == 1 ? "" : "es");
}

int suppression_verbs(Client& client, const Args& a) {
  const std::string verb = a.words.size() >= 2 ? a.words[1] : "";
  auto option = [&a](const char* name) {
    auto it = a.options.find(name);
    return it == a.options.end() ? std::optional<std::string>() : it->second;
  };
  if (verb == "list" && a.words.size() == 2) {
    Call list{"GET", "/v1/suppression", {{"limit", "100000"}}};
    if (auto scope = option("--scope")) list.params.emplace_back("scope", *scope);
    return show(client.call(list), a.json, print_suppressions);
  }
  if ((verb == "add" || verb == "remove") && a.words.size() == 3) {
    Call change{verb == "add" ? "POST" : "DELETE", "/v1/suppression", {{"address", a.words[2]}}};
    if (auto scope = option("--scope")) change.params.emplace_back("scope", *scope);
    if (auto reason = option("--reason")) change.params.emplace_back("reason", *reason);
    if (auto days = option("--expire-days")) change.params.emplace_back("expire_days", *days);
    return show(client.call(change), a.json, [&verb](const json& j) {
      std::printf("<%s> %s\n", j["address"].get<std::string>().c_str(),
                  verb == "add" ? "suppressed" : "no longer suppressed");
    });
  }
  return 2;
}

int queue_verbs(Client& client, const Args& a) {
  const std::string verb = a.words.size() >= 2 ? a.words[1] : "";
  if (verb == "list") {
    Call list{"GET", "/v1/queue", {}};
    static const std::pair<const char*, const char*> kParams[] = {
        {"--sender", "sender"},       {"--recipient", "recipient"}, {"--domain", "domain"},
        {"--state", "state"},         {"--older-than", "min_age"},  {"--newer-than", "max_age"},
        {"--error", "error"},         {"--limit", "limit"}};
    for (const auto& [opt, name] : kParams)
      if (auto it = a.options.find(opt); it != a.options.end())
        list.params.emplace_back(name, it->second);
    // Without --limit, every page: the whole queue, as mailq shows it.
    const bool every_page = a.options.count("--limit") == 0;
    json all{{"messages", json::array()}, {"matched", 0}};
    for (;;) {
      auto body = client.call(list);
      if (!body) return 1;
      json page = json::parse(*body, nullptr, false);
      if (page.is_discarded() || !page.contains("messages")) return show(body, a.json, print_list);
      for (auto& m : page["messages"]) all["messages"].push_back(std::move(m));
      all["matched"] = all["matched"].get<size_t>() + page["matched"].get<size_t>();
      if (!page.contains("next_after")) break;
      if (!every_page) {
        all["next_after"] = page["next_after"];
        break;
      }
      std::erase_if(list.params, [](const auto& p) { return p.first == "after"; });
      list.params.emplace_back("after", page["next_after"].get<std::string>());
    }
    return show(all.dump(), a.json, print_list);
  }
  if (verb == "summary") return show(client.call({"GET", "/v1/queue/summary", {}}), a.json, print_summary);
  if (verb == "show" && a.words.size() == 3)
    return show(client.call({"GET", "/v1/queue/" + encode(a.words[2]), {}}), a.json, print_show);
  if (verb == "cat" && a.words.size() == 3) {
    auto body = client.call({"GET", "/v1/queue/" + encode(a.words[2]) + "/message", {}});
    if (!body) return 1;
    return std::fwrite(body->data(), 1, body->size(), stdout) == body->size() ? 0 : 1;
  }
  if (verb == "trace" && a.words.size() == 3)
    return show(client.call({"GET", "/v1/queue/" + encode(a.words[2]) + "/trace", {}}), a.json,
                [](const json& j) {
                  for (const auto& l : j["lines"]) std::printf("%s\n", l.get<std::string>().c_str());
                  if (j["lines"].empty()) std::printf("no log lines name this message\n");
                });
  if (verb == "flush" && a.words.size() <= 3) {
    if (a.words.size() == 3) return per_message(client, a, "retry-now");
    auto d = a.options.find("--domain");
    Call flush{"POST", "/v1/queue/flush", {}};
    if (d != a.options.end()) flush.params.emplace_back("domain", d->second);
    return show(client.call(flush),
                a.json, [](const json& j) {
                  std::printf("%d deferred message(s) due now\n", j["moved"].get<int>());
                });
  }
  if (verb == "hold" || verb == "release" || verb == "delete" || verb == "bounce" ||
      verb == "retry-now")
    return per_message(client, a, verb);
  return 2;
}

}  // namespace

int admin_cli(const Config& config, const std::vector<std::string>& raw) {
  auto a = parse_args(raw);
  if (!a || a->words.empty()) return 2;
  Client client(config);
  const std::string& verb = a->words[0];
  if (verb == "queue") return queue_verbs(client, *a);
  if (verb == "suppression") return suppression_verbs(client, *a);
  if (verb == "route" && a->words.size() == 2 && a->words[1] == "explain") {
    auto to = a->options.find("--to");
    if (to == a->options.end()) return 2;
    auto from = a->options.find("--from");
    Call route{"GET", "/v1/route", {{"to", to->second}}};
    if (from != a->options.end()) route.params.emplace_back("from", from->second);
    return show(client.call(route),
                a->json, print_route);
  }
  if (verb == "reload" && a->words.size() == 1)
    return show(client.call({"POST", "/v1/reload", {}}), a->json,
                [](const json&) { std::printf("reloaded\n"); });
  if (verb == "status" && a->words.size() == 1)
    return show(client.call({"GET", "/v1/status", {}}), a->json, [](const json& j) {
      std::printf("porter running: pid %d, up %s, config %s, %zu message(s) being delivered\n",
                  j["pid"].get<int>(), age_text(j["uptime_s"].get<int64_t>()).c_str(),
                  j["config"].get<std::string>().c_str(), j["in_flight"].get<size_t>());
    });
  return 2;
}

}  // namespace mta
