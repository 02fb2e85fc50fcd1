#include "mta/net/connection.h"

#include "tests/net/test_support.h"

namespace net::test {
namespace {

// A client-side Handler for outgoing Connections, recording into Events.
class ClientHandler final : public RecordingHandler {
 public:
  ClientHandler(Connection* conn, std::shared_ptr<Events> events)
      : RecordingHandler(conn, std::move(events)) {
    conn->set_handler(this);
    conn->start_reading();
  }
  void on_read(std::string_view bytes) override {
    events_->update([&] { events_->received.append(bytes); });
  }
};

// Connects from the loop; returns the client's Events (conn set once connected) or the error.
core::Result<std::shared_ptr<Events>> connect_client(LoopThread& lt, uint16_t port,
                                                     int timeout_ms = 5000) {
  auto events = std::make_shared<Events>();
  std::promise<core::Status> connected;
  lt.loop.post([&, events] {
    Connection::connect(lt.loop, "127.0.0.1", port, timeout_ms,
                        [&, events](core::Result<Connection*> c) {
                          if (c) new ClientHandler(*c, events);
                          connected.set_value(c.status());
                        });
  });
  auto result = connected.get_future();
  REQUIRE(result.wait_for(kWait) == std::future_status::ready);
  core::Status s = result.get();
  if (!s) return s;
  return events;
}

TEST_CASE("unit: plaintext bytes are echoed and both ends are reported", "[net][unit]") {
  LoopThread lt;
  // "::" is dual-stack: the IPv4 client shows up as ::ffff:127.0.0.1, reported as IPv4.
  const std::string host = GENERATE("127.0.0.1", "::");
  EchoServer server(lt, false, nullptr, host);
  Client client(server.port());
  client.send("hello\r\n");
  CHECK(client.read_exact(7) == "hello\r\n");

  Events& ev = server.events();
  REQUIRE(ev.wait([&] { return ev.received == "hello\r\n"; }));
  CHECK(ev.peer_ip == "127.0.0.1");
  CHECK(ev.peer_port == client.local_port());
  CHECK(ev.local_port == server.port());
  CHECK(ev.tls_ready_calls == 0);
  CHECK(lt.call([&] { return lt.loop.connection_count(); }) == 1);

  client.shutdown_write();
  CHECK(client.read_to_end().empty());  // the server closes on our EOF
  REQUIRE(ev.wait([&] { return ev.closed == 1; }));
  CHECK(ev.close_reason == "peer closed the connection");
  CHECK(lt.call([&] { return lt.loop.connection_count(); }) == 0);
}

TEST_CASE("unit: STARTTLS upgrades mid-stream and drops plaintext sent after the command",
          "[net][unit]") {
  ServerCert cert;
  LoopThread lt;
  EchoServer server(lt, false, cert.ctx);
  Events& ev = server.events();
  Client client(server.port());

  // "INJECT" follows STARTTLS in the same segment: a man in the middle's trick
  // (CVE-2011-0411). It must neither reach the handler as post-TLS input nor be fed to
  // OpenSSL, which would break the handshake.
  client.send("hello\r\nSTARTTLS\r\nINJECT\r\n");
  CHECK(client.read_exact(15) == "hello\r\n220 go\r\n");
  REQUIRE(client.start_tls(plain_client_ctx()));
  CHECK(client.tls_version() == "TLSv1.3");

  client.send("secret\r\n");
  CHECK(client.read_exact(8) == "secret\r\n");
  REQUIRE(ev.wait([&] { return ev.tls_ready_calls == 1; }));
  CHECK(ev.tls_status.is_ok());
  CHECK(ev.tls_version == "TLSv1.3");
  CHECK_FALSE(ev.tls_cipher.empty());
  CHECK(ev.dropped_after_starttls == 8);
  REQUIRE(ev.wait([&] { return ev.received.ends_with("secret\r\n"); }));
  CHECK(ev.received == "hello\r\nSTARTTLS\r\nINJECT\r\nsecret\r\n");
}

TEST_CASE("unit: implicit TLS with the client Connection verifying the server", "[net][unit]") {
  ServerCert cert;
  LoopThread lt;
  EchoServer server(lt, true, cert.ctx);
  auto client_ctx = TlsContext::client(true, cert.cert);
  REQUIRE(client_ctx.is_ok());

  auto client = connect_client(lt, server.port());
  REQUIRE(client.is_ok());
  Events& cev = **client;

  SECTION("the right name: handshake, then an encrypted echo") {
    const std::string host = GENERATE("localhost", "127.0.0.1");
    lt.call([&] {
      cev.conn->start_tls_client(*client_ctx, host);
      cev.conn->write("early\r\n");  // held back until the handshake is done
    });
    REQUIRE(cev.wait([&] { return cev.tls_ready_calls == 1; }));
    REQUIRE(cev.tls_status.is_ok());
    CHECK(cev.tls_version == "TLSv1.3");
    CHECK(lt.call([&] { return cev.conn->tls_peer_verified(); }));
    CHECK(lt.call([&] { return cev.conn->tls_cipher_bits(); }) >= 128);
    lt.call([&] { cev.conn->write("ping\r\n"); });
    REQUIRE(cev.wait([&] { return cev.received == "early\r\nping\r\n"; }));

    Events& sev = server.events();
    REQUIRE(sev.wait([&] { return sev.tls_ready_calls == 1; }));
    CHECK(sev.tls_status.is_ok());
    lt.call([&] { cev.conn->close(); });
    REQUIRE(cev.wait([&] { return cev.closed == 1; }));
    REQUIRE(sev.wait([&] { return sev.closed == 1; }));
    CHECK(sev.close_reason == "peer closed the TLS session");  // our close_notify arrived
  }
  SECTION("a name the certificate does not carry: the handshake fails and says why") {
    lt.call([&] { cev.conn->start_tls_client(*client_ctx, "mail.example.org"); });
    REQUIRE(cev.wait([&] { return cev.closed == 1; }));
    CHECK(cev.tls_ready_calls == 1);
    CHECK_FALSE(cev.tls_status.is_ok());
    CHECK_THAT(cev.tls_status.message(), Catch::Contains("hostname mismatch"));
    CHECK_THAT(cev.close_reason, Catch::Contains("hostname mismatch"));
  }
}

TEST_CASE("unit: a TLS 1.1 client is refused", "[net][unit]") {
  ServerCert cert;
  LoopThread lt;
  EchoServer server(lt, true, cert.ctx);
  Client client(server.port());
  SSL_CTX* old = plain_client_ctx();
  // Security level 0 so that this OpenSSL really offers TLS 1.1 instead of refusing locally.
  SSL_CTX_set_security_level(old, 0);
  SSL_CTX_set_cipher_list(old, "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_min_proto_version(old, TLS1_1_VERSION);
  SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
  CHECK_FALSE(client.start_tls(old));

  Events& ev = server.events();
  REQUIRE(ev.wait([&] { return ev.closed == 1; }));
  CHECK(ev.tls_ready_calls == 1);
  CHECK_FALSE(ev.tls_status.is_ok());
  CHECK_THAT(ev.tls_status.message(), Catch::Contains("unsupported protocol"));
  CHECK(ev.received.empty());
}

TEST_CASE("unit: close() flushes a 1 MiB write before closing", "[net][unit]") {
  constexpr size_t kSize = 1 << 20;
  ServerCert cert;
  LoopThread lt;
  const bool tls = GENERATE(false, true);
  EchoServer server(lt, tls, cert.ctx);
  Client client(server.port());
  if (tls) REQUIRE(client.start_tls(plain_client_ctx()));

  client.send("BIG " + std::to_string(kSize) + "\r\n");
  // Let the server's socket buffers fill before reading anything.
  std::this_thread::sleep_for(100ms);
  const std::string got = client.read_to_end();
  CHECK(got.size() == kSize);
  CHECK((got == EchoHandler::pattern(kSize)));
  if (tls) CHECK(client.got_close_notify());

  Events& ev = server.events();
  REQUIRE(ev.wait([&] { return ev.closed == 1; }));
  CHECK(ev.close_reason.empty());
}

TEST_CASE("unit: pending_write_bytes shows what a non-reading peer has not taken", "[net][unit]") {
  constexpr size_t kSize = 16 << 20;
  LoopThread lt;
  EchoServer server(lt, false, nullptr);
  Events& ev = server.events();
  Client client(server.port());
  client.send("x");
  REQUIRE(client.read_exact(1) == "x");
  REQUIRE(ev.wait([&] { return ev.conn != nullptr; }));

  lt.call([&] { ev.conn->write(EchoHandler::pattern(kSize)); });
  std::this_thread::sleep_for(200ms);
  const size_t stuck = lt.call([&] { return ev.conn->pending_write_bytes(); });
  CHECK(stuck > 0);
  CHECK(stuck < kSize);  // the kernel took some

  CHECK(client.read_exact(kSize).size() == kSize);
  CHECK(lt.call([&] { return ev.conn->pending_write_bytes(); }) == 0);
}

TEST_CASE("unit: paused reading holds TLS input until resumed", "[net][unit]") {
  ServerCert cert;
  LoopThread lt;
  EchoServer server(lt, true, cert.ctx);
  Client client(server.port());
  REQUIRE(client.start_tls(plain_client_ctx()));
  // Two records in one segment: the handler pauses after the first, so the second is
  // already buffered in OpenSSL when reading resumes, with no socket read to announce it.
  client.cork(true);
  client.send("PAUSE\r\n");
  client.send("after\r\n");
  client.cork(false);
  const auto start = std::chrono::steady_clock::now();
  CHECK(client.read_exact(7) == "after\r\n");
  CHECK(std::chrono::steady_clock::now() - start >= 150ms);
  Events& ev = server.events();
  CHECK(ev.wait([&] { return ev.received == "PAUSE\r\nafter\r\n"; }));
}

TEST_CASE("unit: an abrupt peer disconnect ends in exactly one on_closed", "[net][unit]") {
  LoopThread lt;
  EchoServer server(lt, false, nullptr);
  Events& ev = server.events();
  const std::string how = GENERATE("fin", "rst", "rst while a write is pending");
  {
    Client client(server.port());
    client.send("x");
    REQUIRE(client.read_exact(1) == "x");
    if (how == "rst while a write is pending") {
      lt.call([&] { ev.conn->write(EchoHandler::pattern(16 << 20)); });
      std::this_thread::sleep_for(50ms);
    }
    if (how != "fin") client.reset();  // else ~Client closes with a FIN
  }
  REQUIRE(ev.wait([&] { return ev.closed >= 1; }));
  std::this_thread::sleep_for(100ms);  // room for a second, wrong, on_closed
  CHECK(ev.closed == 1);
  CHECK_FALSE(ev.close_reason.empty());
  CHECK(lt.call([&] { return lt.loop.connection_count(); }) == 0);
}

TEST_CASE("unit: connect reports refusal and bad addresses as errors", "[net][unit]") {
  LoopThread lt;
  uint16_t closed_port = 0;
  {
    // A port that was just free: bound, then released.
    EchoServer gone(lt, false, nullptr);
    closed_port = gone.port();
  }
  auto refused = connect_client(lt, closed_port);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().kind() == core::Status::Kind::kTemporary);
  CHECK(refused.status().message() ==
        "connect 127.0.0.1:" + std::to_string(closed_port) + ": connection refused");

  SECTION("a peer that never answers the SYN: the connect times out") {
    // A listener with a full accept queue, never accepting: Linux drops further SYNs.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 0) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    const uint16_t port = ntohs(addr.sin_port);
    Client filler(port);  // with backlog 0, one queued connection fills the queue
    auto timed_out = connect_client(lt, port, 200);
    ::close(fd);
    REQUIRE_FALSE(timed_out.is_ok());
    CHECK(timed_out.status().message() ==
          "connect 127.0.0.1:" + std::to_string(port) + ": timed out after 200 ms");
  }

  std::promise<core::Status> bad;
  lt.loop.post([&] {
    Connection::connect(lt.loop, "mail.example.org", 25, 1000,
                        [&](core::Result<Connection*> c) { bad.set_value(c.status()); });
  });
  auto result = bad.get_future();
  REQUIRE(result.wait_for(kWait) == std::future_status::ready);
  const core::Status s = result.get();
  CHECK(s.kind() == core::Status::Kind::kInvalid);
  CHECK_THAT(s.message(), Catch::Contains("mail.example.org:25"));
}

TEST_CASE("unit: destroying the Loop closes connections still open", "[net][unit]") {
  std::shared_ptr<Events> events;
  {
    LoopThread lt;
    EchoServer server(lt, false, nullptr);
    events = server.shared_events();
    Client client(server.port());
    client.send("x");
    REQUIRE(client.read_exact(1) == "x");
    CHECK(events->closed == 0);
    // ~EchoServer closes the listener, ~LoopThread stops the loop and destroys it while
    // the connection (and its handler's Timer) is still open.
  }
  CHECK(events->closed == 1);
}

}  // namespace
}  // namespace net::test
