#include "mta/http/server.h"

#include <chrono>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/clock.h"
#include "core/log.h"
#include "mta/net/connection.h"
#include "mta/net/listener.h"
#include "mta/net/loop.h"
#include "mta/net/timer.h"

namespace mta::http {

namespace detail {

// How Responders reach the loop from any thread, and only while the server exists: a
// Responder may outlive both, and post() on a destroyed Loop is undefined.
struct LoopPost {
  std::mutex mu;
  net::Loop* loop = nullptr;  // guarded by mu; null once the server is gone

  void post(std::function<void()> fn) {
    std::lock_guard lock(mu);
    if (loop != nullptr) loop->post(std::move(fn));
  }
};

}  // namespace detail

struct HttpServer::Core {
  Core(net::Loop& loop, ServerOptions o, Handler h)
      : options(std::move(o)), handler(std::move(h)), post(std::make_shared<detail::LoopPost>()) {
    post->loop = &loop;
  }

  ServerOptions options;
  Handler handler;
  std::shared_ptr<detail::LoopPost> post;
  std::unordered_set<detail::Session*> sessions;
  std::atomic<size_t> open{0};
  bool closing = false;  // close() was called: no keep-alive any more
};

namespace {

// Pipelined bytes read while a handler works; beyond this, reading pauses.
constexpr size_t kMaxBufferedWhileBusy = 64 * 1024;

using SteadyClock = std::chrono::steady_clock;

Response error_response(int status, std::string_view reason) {
  return json(status, {{"error", reason}});
}

int64_t now_ms() {
  return core::SystemClock().now_ms();
}

}  // namespace

namespace detail {

// One connection: the parser, the request in progress and the idle timer. Keeps itself
// alive (self_) until the Connection reports on_closed; Responders hold weak references.
class Session final : public net::Connection::Handler,
                      public std::enable_shared_from_this<Session> {
 public:
  Session(net::Connection* conn, std::shared_ptr<HttpServer::Core> core)
      : conn_(conn),
        core_(std::move(core)),
        client_(conn->peer_ip()),
        parser_(core_->options.limits),
        idle_(conn->loop()) {}

  void start() {
    self_ = shared_from_this();
    core_->sessions.insert(this);
    ++core_->open;
    conn_->set_handler(this);
    conn_->start_reading();
    arm_idle_timer();
  }

  void on_read(std::string_view bytes) override {
    if (closing_) return;
    parser_.feed(bytes);
    drive();
  }

  void on_tls_ready(core::Status status) override {
    if (!status)
      core::LogLine(core::LogLevel::kDebug, "http_tls_failed")
          .kv("server", core_->options.name)
          .kv("client", client_)
          .remark(status.message())
          .emit();
  }

  void on_closed() override {
    closing_ = true;
    idle_.stop();
    core_->sessions.erase(this);
    --core_->open;
    self_.reset();  // may destroy this: the last statement
  }

  // The handler's answer to request `seq`, on the loop thread.
  void finish(uint64_t seq, Response response) {
    if (closing_ || !busy_ || seq != seq_) return;
    busy_ = false;
    const bool close = !current_.keep_alive || core_->closing;
    log(response.status, response.body.size(), "");
    send(response, close);
    if (close) return;
    arm_idle_timer();
    drive();
  }

  // The server is closing: an idle connection goes now, a busy one after its response.
  void shutdown() {
    if (!busy_ && !closing_) {
      closing_ = true;
      idle_.stop();
      conn_->close();
    }
  }

  void abort() {
    closing_ = true;
    idle_.stop();
    conn_->abort();
  }

 private:
  struct Current {
    std::string method = "-";
    std::string path = "-";
    bool keep_alive = false;
    bool keep_alive_10 = false;
    bool head = false;
    SteadyClock::time_point start;
  };

  void drive() {
    while (!busy_ && !closing_) {
      ParseStep step = parser_.next();
      if (std::holds_alternative<NeedMore>(step)) break;
      if (std::holds_alternative<SendContinue>(step)) {
        conn_->write(std::string(kContinue));
        continue;
      }
      if (const auto* err = std::get_if<ParseError>(&step)) {
        current_ = Current{};
        current_.start = SteadyClock::now();
        log(err->status, 0, err->reason);
        send(error_response(err->status, err->reason), true);
        return;
      }
      dispatch(std::get<Request>(std::move(step)));
    }
    // Keep reading while a handler works (a peer's close shows), but not without bound.
    if (!closing_) {
      if (busy_ && parser_.buffered_bytes() > kMaxBufferedWhileBusy) {
        conn_->pause_reading();
      } else {
        conn_->resume_reading();
      }
    }
  }

  void dispatch(Request request) {
    request.peer_ip = client_;
    request.tls = conn_->tls_active();
    busy_ = true;
    ++seq_;
    idle_.stop();
    current_ = Current{request.method,           request.path,
                       request.keep_alive,       request.keep_alive && request.version_minor == 0,
                       request.method == "HEAD", SteadyClock::now()};
    Responder responder(weak_from_this(), core_->post, seq_);
    try {
      core_->handler(std::move(request), std::move(responder));
    } catch (const std::exception& e) {
      // The destroyed Responder has already answered 500.
      core::LogLine(core::LogLevel::kError, "http_handler_failed")
          .kv("server", core_->options.name)
          .kv("method", current_.method)
          .kv("path", current_.path)
          .remark(e.what())
          .emit();
    }
  }

  void send(const Response& response, bool close) {
    WireOptions wire;
    wire.now_ms = now_ms();
    wire.close = close;
    wire.keep_alive_10 = current_.keep_alive_10;
    wire.head = current_.head;
    conn_->write(serialize(response, wire));
    if (close) {
      closing_ = true;
      idle_.stop();
      conn_->close();
    }
  }

  void arm_idle_timer() {
    idle_.start(static_cast<uint64_t>(core_->options.idle_timeout_ms), [this] {
      if (closing_) return;
      if (parser_.idle()) {
        closing_ = true;
        conn_->close();
        return;
      }
      current_ = Current{};
      current_.start = SteadyClock::now();
      log(408, 0, "request not complete in time");
      send(error_response(408, "request not complete in time"), true);
    });
  }

  void log(int status, size_t bytes, std::string_view remark) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - current_.start);
    core::LogLine line(status >= 500 ? core::LogLevel::kWarn : core::LogLevel::kInfo, "http");
    line.kv("server", core_->options.name)
        .kv("client", client_)
        .kv("method", current_.method)
        .kv("path", current_.path)
        .kv("status", status)
        .kv("ms", static_cast<int64_t>(ms.count()))
        .kv("bytes", static_cast<int64_t>(bytes));
    if (!remark.empty()) line.remark(remark);
    line.emit();
  }

  net::Connection* const conn_;  // valid until on_closed
  const std::shared_ptr<HttpServer::Core> core_;
  const std::string client_;
  std::shared_ptr<Session> self_;
  RequestParser parser_;
  net::Timer idle_;
  bool busy_ = false;     // a handler holds the Responder of request seq_
  bool closing_ = false;  // close or abort issued, or closed: nothing more is answered
  uint64_t seq_ = 0;
  Current current_;
};

}  // namespace detail

Responder::Responder(std::weak_ptr<detail::Session> session, std::shared_ptr<detail::LoopPost> post,
                     uint64_t seq)
    : session_(std::move(session)), post_(std::move(post)), seq_(seq) {}

Responder::Responder(Responder&& other) noexcept
    : session_(std::move(other.session_)), post_(std::move(other.post_)), seq_(other.seq_) {
  other.post_.reset();
}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (post_) respond(error_response(500, "the handler dropped the request"));
    session_ = std::move(other.session_);
    post_ = std::move(other.post_);
    other.post_.reset();
    seq_ = other.seq_;
  }
  return *this;
}

Responder::~Responder() {
  if (post_) respond(error_response(500, "the handler dropped the request"));
}

void Responder::respond(Response response) {
  if (!post_) return;
  const std::shared_ptr<detail::LoopPost> post = std::move(post_);
  post_.reset();
  // The session is locked on the loop thread only: a last reference released here would
  // destroy its Timer off the loop.
  post->post([session = session_, seq = seq_, response = std::move(response)]() mutable {
    if (auto s = session.lock()) s->finish(seq, std::move(response));
  });
}

HttpServer::HttpServer(net::Loop& loop, ServerOptions options, Handler handler)
    : loop_(loop), core_(std::make_shared<Core>(loop, std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() {
  close();
  const std::vector<detail::Session*> left(core_->sessions.begin(), core_->sessions.end());
  for (detail::Session* s : left) s->abort();
  std::lock_guard lock(core_->post->mu);
  core_->post->loop = nullptr;
}

core::Status HttpServer::listen_tcp(const std::string& host, uint16_t port,
                                    std::shared_ptr<net::TlsContext> tls) {
  const bool implicit_tls = tls != nullptr;
  auto listener = std::make_unique<net::Listener>(loop_, host, port, implicit_tls, std::move(tls),
                                                  [this](net::Connection* c) { accept(c); });
  if (core::Status s = listener->listen(); !s) return s;
  listeners_.push_back(std::move(listener));
  return core::Status::ok();
}

core::Status HttpServer::listen_unix(const std::string& path, unsigned mode) {
  auto listener =
      std::make_unique<net::Listener>(loop_, net::UnixSocket{path, mode}, false, nullptr,
                                      [this](net::Connection* c) { accept(c); });
  if (core::Status s = listener->listen(); !s) return s;
  listeners_.push_back(std::move(listener));
  return core::Status::ok();
}

uint16_t HttpServer::bound_port() const {
  for (const auto& l : listeners_) {
    if (l->bound_port() != 0) return l->bound_port();
  }
  return 0;
}

void HttpServer::close() {
  core_->closing = true;
  listeners_.clear();
  const std::vector<detail::Session*> open(core_->sessions.begin(), core_->sessions.end());
  for (detail::Session* s : open) s->shutdown();
}

size_t HttpServer::connection_count() const {
  return core_->open.load();
}

void HttpServer::accept(net::Connection* conn) {
  if (core_->sessions.size() >= core_->options.max_connections) {
    core::LogLine(core::LogLevel::kWarn, "http_refused")
        .kv("server", core_->options.name)
        .kv("client", conn->peer_ip())
        .remark("too many connections")
        .emit();
    WireOptions wire;
    wire.now_ms = now_ms();
    wire.close = true;
    conn->write(serialize(error_response(503, "too many connections"), wire));
    conn->close();
    return;
  }
  std::make_shared<detail::Session>(conn, core_)->start();
}

}  // namespace mta::http
