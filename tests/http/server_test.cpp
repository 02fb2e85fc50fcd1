// HttpServer end to end: real sockets (a unix socket and 127.0.0.1), our libcurl client, a raw
// socket client for exact bytes, and the curl binary.
#include "mta/http/server.h"

#include <fcntl.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/log.h"
#include "mta/http/client.h"
#include "tests/net/test_support.h"

namespace mta::http {
namespace {

using net::test::Client;
using net::test::kWait;
using net::test::LoopThread;
using net::test::ServerCert;
using net::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;

// A server on a unix socket and on 127.0.0.1:<ephemeral> with a few test routes:
//   /echo       answers at once with what it got, as JSON
//   /thread     answers 40 ms later from another thread
//   /drop       drops its Responder;  /throw throws;  /hold keeps the Responder in `held`
class Fixture {
 public:
  explicit Fixture(ServerOptions options = {}, std::shared_ptr<net::TlsContext> tls = nullptr) {
    options.name = "test";
    const core::Status s = lt_.call([&] {
      server_ = std::make_unique<HttpServer>(lt_.loop, options, [this](Request r, Responder res) {
        handle(std::move(r), std::move(res));
      });
      core::Status st = server_->listen_unix(sock);
      if (st) st = server_->listen_tcp("127.0.0.1", 0, tls);
      port_ = server_->bound_port();
      return st;
    });
    REQUIRE(s.is_ok());
    REQUIRE(port_ != 0);
  }
  ~Fixture() {
    for (std::thread& t : threads_) t.join();
    lt_.call([&] { server_.reset(); });
  }

  uint16_t port() const { return port_; }
  size_t connections() {
    return lt_.call([&] { return server_->connection_count(); });
  }
  bool wait_connections(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (connections() != n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  void close_server() {
    lt_.call([&] { server_->close(); });
  }
  // Waits until /hold has parked n Responders and takes them.
  std::vector<Responder> take_held(size_t n) {
    std::unique_lock lock(mu_);
    REQUIRE(cv_.wait_for(lock, kWait, [&] { return held_.size() >= n; }));
    return std::move(held_);
  }

  TempDir dir;
  const std::string sock = dir.file("api.sock");

 private:
  void handle(Request r, Responder res) {
    if (r.path == "/echo") {
      json j = {{"method", r.method}, {"path", r.path}, {"body", r.body}};
      j["q"] = r.query_param("q") ? json(std::string(*r.query_param("q"))) : json(nullptr);
      j["peer"] = r.peer_ip;
      j["tls"] = r.tls;
      j["x"] =
          r.headers.get("X-Test") ? json(std::string(*r.headers.get("X-Test"))) : json(nullptr);
      res.respond(json_response(200, j));
    } else if (r.path == "/thread") {
      std::lock_guard lock(mu_);
      threads_.emplace_back([res = std::move(res)]() mutable {
        std::this_thread::sleep_for(40ms);
        res.respond(text(200, "from a thread\n"));
      });
    } else if (r.path == "/drop") {
    } else if (r.path == "/throw") {
      throw std::runtime_error("boom");
    } else if (r.path == "/hold") {
      {
        std::lock_guard lock(mu_);
        held_.push_back(std::move(res));
      }
      cv_.notify_all();
    } else {
      res.respond(json_response(404, {{"error", "no such route"}}));
    }
  }
  static Response json_response(int status, const json& j) { return mta::http::json(status, j); }

  LoopThread lt_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;  // guarded by mu_ while the server runs
  std::vector<Responder> held_;       // guarded by mu_
};

// Reads whole responses (Content-Length framed) off a raw connection, pipelined or not.
class Wire {
 public:
  explicit Wire(Client& c) : c_(c) {}
  struct Reply {
    int status = 0;  // 0: the connection ended first
    std::string head;
    std::string body;
    bool has(std::string_view field_line) const {
      return head.find(std::string("\r\n") + std::string(field_line) + "\r\n") != std::string::npos;
    }
  };
  Reply read() {
    Reply r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!more()) return r;
    }
    r.head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    size_t length = 0;
    if (const size_t at = r.head.find("\r\nContent-Length: "); at != std::string::npos)
      length = std::stoul(r.head.substr(at + 18));
    while (buf_.size() < length) {
      if (!more()) return r;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    r.status = std::stoi(r.head.substr(9, 3));
    return r;
  }
  // True if the server closed with nothing more to say.
  bool at_eof() { return buf_.empty() && c_.read_some().empty(); }

 private:
  bool more() {
    std::string s = c_.read_some();
    buf_ += s;
    return !s.empty();
  }
  Client& c_;
  std::string buf_;
};

TEST_CASE("unit: the client reaches the server over a unix socket and over TCP", "[http][unit]") {
  Fixture f;
  const bool over_unix = GENERATE(true, false);
  const Endpoint ep = over_unix
                          ? Endpoint::unix_socket(f.sock)
                          : Endpoint::url("http://127.0.0.1:" + std::to_string(f.port()) + "/");
  Headers h;
  h.add("X-Test", "yes");
  auto r = http_request(ep, "POST", "/echo?q=a%20b", "{\"k\":1}", h, 5000);
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  CHECK(r->headers.get("content-type") == "application/json");
  CHECK(r->headers.has("Date"));
  const json j = json::parse(r->body);
  CHECK(j["method"] == "POST");
  CHECK(j["path"] == "/echo");
  CHECK(j["q"] == "a b");
  CHECK(j["x"] == "yes");
  CHECK(j["body"] == "{\"k\":1}");
  CHECK(j["peer"] == (over_unix ? "unix" : "127.0.0.1"));
  CHECK(j["tls"] == false);

  auto empty_post = http_request(ep, "POST", "/echo");
  REQUIRE(empty_post.is_ok());
  CHECK(json::parse(empty_post->body)["body"] == "");
  auto missing = http_request(ep, "GET", "/nope");
  REQUIRE(missing.is_ok());
  CHECK(missing->status == 404);
  auto head = http_request(ep, "HEAD", "/echo");
  REQUIRE(head.is_ok());
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  CHECK(head->headers.get("Content-Length") != "0");
}

TEST_CASE("unit: a handler may answer later from another thread", "[http][unit]") {
  Fixture f;
  auto r = http_request(Endpoint::unix_socket(f.sock), "GET", "/thread");
  REQUIRE(r.is_ok());
  CHECK(r->status == 200);
  CHECK(r->body == "from a thread\n");
}

TEST_CASE("unit: keep-alive serves requests in order on one connection", "[http][unit]") {
  Fixture f;
  Client c(f.sock);
  Wire w(c);
  SECTION("one after the other") {
    c.send("GET /echo?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    const Wire::Reply a = w.read();
    CHECK(a.status == 200);
    CHECK_FALSE(a.has("Connection: close"));
    c.send("GET /echo?q=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(json::parse(w.read().body)["q"] == "2");
    CHECK(f.connections() == 1);
  }
  SECTION("pipelined: the slow first answer still comes first") {
    c.send(
        "GET /thread HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?q=2 HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /echo?q=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(w.read().body == "from a thread\n");
    CHECK(json::parse(w.read().body)["q"] == "2");
    const Wire::Reply last = w.read();
    CHECK(json::parse(last.body)["q"] == "3");
    CHECK(last.has("Connection: close"));
    CHECK(w.at_eof());
  }
  SECTION("HTTP/1.0 closes unless asked, and is told when kept") {
    c.send("GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK(w.read().has("Connection: keep-alive"));
    c.send("GET /echo HTTP/1.0\r\n\r\n");
    CHECK(w.read().has("Connection: close"));
    CHECK(w.at_eof());
  }
}

TEST_CASE("unit: an oversized body gets 413 and the connection closes", "[http][unit]") {
  ServerOptions o;
  o.limits.max_body_bytes = 1024;
  Fixture f(o);
  SECTION("announced by Content-Length: refused before the body is sent") {
    Client c(f.port());
    Wire w(c);
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
    const Wire::Reply r = w.read();
    CHECK(r.status == 413);
    CHECK(r.has("Connection: close"));
    CHECK(json::parse(r.body)["error"] == "body larger than the limit");
    CHECK(w.at_eof());
  }
  SECTION("through the client") {
    auto r = http_request(Endpoint::unix_socket(f.sock), "POST", "/echo", std::string(1025, 'b'));
    REQUIRE(r.is_ok());
    CHECK(r->status == 413);
    auto fits =
        http_request(Endpoint::unix_socket(f.sock), "POST", "/echo", std::string(1024, 'b'));
    REQUIRE(fits.is_ok());
    CHECK(fits->status == 200);
  }
}

TEST_CASE("unit: a parse error gets its status and Connection: close", "[http][unit]") {
  Fixture f;
  auto [request, status] = GENERATE(table<std::string, int>({
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\nHost: x\n\n", 400},
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501},
  }));
  Client c(f.sock);
  Wire w(c);
  c.send(request);
  const Wire::Reply r = w.read();
  CHECK(r.status == status);
  CHECK(r.has("Connection: close"));
  CHECK(w.at_eof());
}

TEST_CASE("unit: Expect: 100-continue gets its interim response", "[http][unit]") {
  Fixture f;
  Client c(f.port());
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  CHECK(c.read_exact(25) == "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("hi");
  Wire w(c);
  CHECK(json::parse(w.read().body)["body"] == "hi");
}

TEST_CASE("unit: an idle client is closed and a slow one gets 408", "[http][unit]") {
  ServerOptions o;
  o.idle_timeout_ms = 150;
  Fixture f(o);
  Client c(f.sock);
  Wire w(c);
  const auto start = std::chrono::steady_clock::now();
  SECTION("idle") {
    CHECK(w.at_eof());
  }
  SECTION("stuck in the middle of a request") {
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    const Wire::Reply r = w.read();
    CHECK(r.status == 408);
    CHECK(r.has("Connection: close"));
    CHECK(w.at_eof());
  }
  SECTION("the timer restarts after each response") {
    c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(w.read().status == 200);
    std::this_thread::sleep_for(100ms);
    c.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(w.read().status == 200);
    CHECK(w.at_eof());
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 140ms);
  CHECK(waited < 3s);
  CHECK(f.wait_connections(0));
}

TEST_CASE("unit: over max_connections a client gets 503", "[http][unit]") {
  ServerOptions o;
  o.max_connections = 1;
  Fixture f(o);
  Client first(f.sock);
  REQUIRE(f.wait_connections(1));
  Client second(f.sock);
  Wire w(second);
  const Wire::Reply r = w.read();
  CHECK(r.status == 503);
  CHECK(r.has("Connection: close"));
  // The first one is still served.
  Wire w1(first);
  first.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(w1.read().status == 200);
}

TEST_CASE("unit: a dropped or throwing handler answers 500", "[http][unit]") {
  Fixture f;
  const std::string path = GENERATE("/drop", "/throw");
  auto r = http_request(Endpoint::unix_socket(f.sock), "GET", path);
  REQUIRE(r.is_ok());
  CHECK(r->status == 500);
  // The connection is usable afterwards.
  CHECK(http_request(Endpoint::unix_socket(f.sock), "GET", "/echo")->status == 200);
}

TEST_CASE("unit: a response for a connection already closed is dropped", "[http][unit]") {
  Fixture f;
  {
    Client c(f.sock);
    c.send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    std::vector<Responder> held = f.take_held(1);
    REQUIRE(held.size() == 1);
    c.reset();
    REQUIRE(f.wait_connections(0));
    held[0].respond(text(200, "too late"));  // from the test thread: no effect, no crash
  }
  CHECK(http_request(Endpoint::unix_socket(f.sock), "GET", "/echo")->status == 200);
}

TEST_CASE("unit: close() stops listening, removes the socket and lets a request finish",
          "[http][unit]") {
  Fixture f;
  Client busy(f.sock);
  Client idle(f.sock);
  REQUIRE(f.wait_connections(2));
  busy.send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  std::vector<Responder> held = f.take_held(1);
  f.close_server();
  CHECK_FALSE(std::filesystem::exists(f.sock));
  Wire idle_wire(idle);
  CHECK(idle_wire.at_eof());
  auto refused = http_request(Endpoint::unix_socket(f.sock), "GET", "/echo");
  CHECK(refused.status().kind() == core::Status::Kind::kTemporary);

  held[0].respond(text(200, "done"));
  Wire w(busy);
  const Wire::Reply r = w.read();
  CHECK(r.body == "done");
  CHECK(r.has("Connection: close"));
  CHECK(w.at_eof());
  CHECK(f.wait_connections(0));
}

TEST_CASE("unit: https with implicit TLS", "[http][unit]") {
  ServerCert cert;
  Fixture f({}, cert.ctx);
  Endpoint ep = Endpoint::url("https://127.0.0.1:" + std::to_string(f.port()));
  ep.ca_file = cert.cert;
  auto r = http_request(ep, "GET", "/echo?q=tls");
  REQUIRE(r.is_ok());
  const json j = json::parse(r->body);
  CHECK(j["q"] == "tls");
  CHECK(j["tls"] == true);
}

TEST_CASE("unit: each answered request is logged once", "[http][unit]") {
  Fixture f;
  TempDir logs;
  const std::string file = logs.file("log");
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  core::set_log_fd(fd);
  const auto r = http_request(Endpoint::unix_socket(f.sock), "GET", "/echo?q=1");
  core::set_log_fd(2);
  ::close(fd);
  REQUIRE(r.is_ok());
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  CHECK_THAT(text.str(), Catch::Contains("info http server=test client=unix method=GET "
                                         "path=/echo status=200 ms="));
}

TEST_CASE("unit: client errors name the endpoint", "[http][unit]") {
  TempDir dir;
  auto none = http_request(Endpoint::unix_socket(dir.file("none.sock")), "GET", "/x", {}, {}, 2000);
  CHECK(none.status().kind() == core::Status::Kind::kTemporary);
  CHECK_THAT(none.status().message(),
             Catch::StartsWith("GET /x on " + dir.file("none.sock") + ": "));
  auto relative = http_request(Endpoint::url("http://127.0.0.1:1"), "GET", "x");
  CHECK(relative.status().kind() == core::Status::Kind::kInvalid);
  auto bad_scheme = http_request(Endpoint::url("ftp://127.0.0.1:1"), "GET", "/x");
  CHECK(bad_scheme.status().kind() == core::Status::Kind::kInvalid);
}

TEST_CASE("unit: the curl program talks to the server over the unix socket", "[http][unit]") {
  if (std::system("curl --version >/dev/null 2>&1") != 0) {
    WARN("curl not installed: skipped");
    return;
  }
  Fixture f;
  const std::string cmd = "curl -sS --max-time 5 --unix-socket " + f.sock +
                          " -H 'X-Test: cli' --data-binary hello 'http://localhost/echo?q=c' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  CHECK(::pclose(p) == 0);
  CAPTURE(out);
  const json j = json::parse(out, nullptr, false);
  CHECK(j["body"] == "hello");
  CHECK(j["x"] == "cli");
  CHECK(j["q"] == "c");
}

}  // namespace
}  // namespace mta::http
