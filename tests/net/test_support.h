#pragma once
// Shared by the net tests: a Loop on its own thread, a server-side Handler that records what
// happens, a blocking client (POSIX socket, optionally OpenSSL) for the test thread, and a
// temporary directory holding a self-signed certificate.
//
// Catch2 v2 assertions are not thread-safe, so the loop thread only records; the test
// thread waits for the record and asserts.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>

#include "mta/net/connection.h"
#include "mta/net/listener.h"
#include "mta/net/loop.h"
#include "mta/net/timer.h"
#include "mta/net/tls_context.h"

namespace net::test {

using namespace std::chrono_literals;
constexpr auto kWait = 10s;

// A Loop running on its own thread for the duration of a test.
class LoopThread {
 public:
  LoopThread() : thread_([this] { loop.run(); }) {}
  ~LoopThread() {
    loop.stop();
    thread_.join();
  }

  // Runs fn on the loop thread and returns its result.
  template <typename F>
  auto call(F fn) -> std::invoke_result_t<F> {
    using R = std::invoke_result_t<F>;
    auto done = std::make_shared<std::promise<R>>();
    auto result = done->get_future();
    loop.post([done, fn = std::move(fn)]() mutable {
      if constexpr (std::is_void_v<R>) {
        fn();
        done->set_value();
      } else {
        done->set_value(fn());
      }
    });
    REQUIRE(result.wait_for(kWait) == std::future_status::ready);
    return result.get();
  }

  Loop loop;

 private:
  std::thread thread_;
};

// What a server-side connection saw; shared between its Handler and the test thread.
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::string received;  // plaintext handed to on_read, in order
  int tls_ready_calls = 0;
  core::Status tls_status;
  std::string tls_version;
  std::string tls_cipher;
  std::string peer_ip;
  uint16_t peer_port = 0;
  std::string local_ip;
  uint16_t local_port = 0;
  int closed = 0;
  std::string close_reason;
  size_t dropped_after_starttls = 0;
  Connection* conn = nullptr;  // valid on the loop thread until closed

  // Waits until pred() holds (under the lock); false after kWait.
  template <typename P>
  bool wait(P pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, kWait, pred);
  }
  template <typename F>
  void update(F fn) {
    {
      std::lock_guard lock(mu);
      fn();
    }
    cv.notify_all();
  }
};

// Records one Connection's TLS outcome and its close into Events, and deletes itself when
// the Connection is gone; subclasses decide what to do with the bytes read.
class RecordingHandler : public Connection::Handler {
 public:
  RecordingHandler(Connection* conn, std::shared_ptr<Events> events)
      : conn_(conn), events_(std::move(events)) {
    events_->update([&] { events_->conn = conn; });
  }
  void on_tls_ready(core::Status status) override {
    events_->update([&] {
      ++events_->tls_ready_calls;
      events_->tls_status = status;
      events_->tls_version = conn_->tls_version();
      events_->tls_cipher = conn_->tls_cipher();
    });
  }
  void on_closed() override {
    events_->update([&] {
      ++events_->closed;
      events_->close_reason = conn_->close_reason();
      events_->conn = nullptr;
    });
    delete this;
  }

 protected:
  Connection* conn_;
  std::shared_ptr<Events> events_;
};

// Echoes what it reads, with a few commands a chunk may start with (or, for STARTTLS,
// contain): "STARTTLS\r\n" answers "220 go" and starts TLS, dropping the rest of the chunk
// as the protocol glue does; "BIG n\r\n" writes n bytes of a pattern and then close()s;
// "PAUSE\r\n" stops reading for 200 ms.
class EchoHandler final : public RecordingHandler {
 public:
  EchoHandler(Connection* conn, std::shared_ptr<Events> events,
              std::shared_ptr<TlsContext> starttls)
      : RecordingHandler(conn, std::move(events)), starttls_(std::move(starttls)),
        timer_(conn->loop()) {
    events_->update([&] {
      events_->peer_ip = conn->peer_ip();
      events_->peer_port = conn->peer_port();
      events_->local_ip = conn->local_ip();
      events_->local_port = conn->local_port();
    });
    conn->set_handler(this);
    conn->start_reading();
  }

  void on_read(std::string_view bytes) override {
    events_->update([&] { events_->received.append(bytes); });
    if (bytes.starts_with("BIG ")) {
      conn_->write(pattern(std::stoul(std::string(bytes.substr(4)))));
      conn_->close();
      return;
    }
    if (bytes.starts_with("PAUSE\r\n")) {
      conn_->pause_reading();
      timer_.start(200, [this] { conn_->resume_reading(); });
      return;
    }
    const size_t at = bytes.find("STARTTLS\r\n");
    if (at != std::string_view::npos && starttls_ && !conn_->tls_active()) {
      if (at > 0) conn_->write(std::string(bytes.substr(0, at)));
      conn_->write("220 go\r\n");
      conn_->start_tls(starttls_);
      const size_t rest = bytes.size() - at - 10;
      events_->update([&] { events_->dropped_after_starttls += rest; });
      return;
    }
    conn_->write(std::string(bytes));
  }

  static std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return s;
  }

 private:
  std::shared_ptr<TlsContext> starttls_;
  Timer timer_;
};

// A temporary directory, removed with its contents at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "porter-net-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A self-signed certificate for localhost / 127.0.0.1 and a server context using it.
struct ServerCert {
  TempDir dir;
  std::string cert = dir.file("cert.pem");
  std::string key = dir.file("key.pem");
  std::shared_ptr<TlsContext> ctx;

  ServerCert() {
    REQUIRE(ensure_self_signed(cert, key, {"localhost"}, {"127.0.0.1"}).is_ok());
    auto made = TlsContext::server(cert, key);
    REQUIRE(made.is_ok());
    ctx = *made;
  }
};

// A listener on 127.0.0.1:<ephemeral> (or another host) whose connections get an EchoHandler; each
// new connection's Events is published to `accepted`.
class EchoServer {
 public:
  EchoServer(LoopThread& lt, bool implicit_tls, std::shared_ptr<TlsContext> tls,
             const std::string& host = "127.0.0.1")
      : lt_(lt), events_(std::make_shared<Events>()) {
    port_ = lt_.call([&] {
      listener_ = std::make_unique<Listener>(
          lt_.loop, host, 0, implicit_tls, implicit_tls ? tls : nullptr,
          [events = events_, tls](Connection* c) { new EchoHandler(c, events, tls); });
      core::Status s = listener_->listen();
      return s.is_ok() ? listener_->bound_port() : uint16_t{0};
    });
    REQUIRE(port_ != 0);
  }
  // On a unix-domain socket instead; port() is then 0.
  EchoServer(LoopThread& lt, UnixSocket socket) : lt_(lt), events_(std::make_shared<Events>()) {
    const core::Status s = lt_.call([&] {
      listener_ = std::make_unique<Listener>(
          lt_.loop, socket, false, nullptr,
          [events = events_](Connection* c) { new EchoHandler(c, events, nullptr); });
      return listener_->listen();
    });
    REQUIRE(s.is_ok());
  }
  ~EchoServer() {
    lt_.call([&] { listener_.reset(); });
  }
  uint16_t port() const { return port_; }
  // Stops accepting (a unix socket's file goes) while connections live on.
  void close() {
    lt_.call([&] { listener_->close(); });
  }
  // One Events for all connections: the tests open one at a time.
  Events& events() { return *events_; }
  std::shared_ptr<Events> shared_events() { return events_; }

 private:
  LoopThread& lt_;
  std::shared_ptr<Events> events_;
  std::unique_ptr<Listener> listener_;
  uint16_t port_ = 0;
};

// A blocking client for the test thread: plain TCP, upgradable to TLS with SSL_connect.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  // To a unix-domain socket.
  explicit Client(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  uint16_t local_port() const {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
  }

  // Takes ownership of ctx; true if the handshake succeeded.
  bool start_tls(SSL_CTX* ctx) {
    ctx_ = ctx;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    ERR_clear_error();
    return SSL_connect(ssl_) == 1;
  }
  std::string tls_version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

  void send(std::string_view data) {
    while (!data.empty()) {
      const int n = ssl_ ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                         : static_cast<int>(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
      REQUIRE(n > 0);
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Up to 64 KiB; "" at EOF (or TLS close_notify), error or timeout.
  std::string read_some() {
    char buf[65536];
    const int n =
        ssl_ ? SSL_read(ssl_, buf, sizeof buf) : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
    if (n > 0) return std::string(buf, static_cast<size_t>(n));
    got_close_notify_ = ssl_ != nullptr && SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN;
    return "";
  }
  // Reads until `size` bytes came, or EOF / timeout.
  std::string read_exact(size_t size) {
    std::string out;
    while (out.size() < size) {
      std::string more = read_some();
      if (more.empty()) break;
      out += more;
    }
    return out;
  }
  std::string read_to_end() {
    std::string out;
    for (std::string more = read_some(); !more.empty(); more = read_some()) out += more;
    return out;
  }
  bool got_close_notify() const { return got_close_notify_; }

  // Closes with an RST instead of a FIN.
  void reset() {
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd_);
    fd_ = -1;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // While corked, the kernel holds small writes back and sends them as one segment.
  void cork(bool on) {
    const int v = on ? 1 : 0;
    setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &v, sizeof v);
  }

 private:
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool got_close_notify_ = false;
};

// An OpenSSL client context that does not verify (the tests check the server side).
inline SSL_CTX* plain_client_ctx() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  return ctx;
}

}  // namespace net::test
