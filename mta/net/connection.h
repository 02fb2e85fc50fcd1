#pragma once
// Connection: one TCP connection (accepted by a Listener, or made by connect()) or one
// unix-domain connection (accepted by a Listener on a path), with an optional TLS layer on
// memory BIOs: bytes from the socket go into OpenSSL's read BIO, SSL_read yields plaintext, and
// what SSL writes is drained from the write BIO to the socket.
//
// Lifetime: the Connection owns itself. After close() or abort() -- or a read error, EOF,
// write error, failed handshake -- the libuv handles close; once their close callbacks have
// run the Connection calls handler->on_closed() exactly once (if a handler is set) and
// deletes itself. The owner never deletes it and must not touch the pointer after
// on_closed(). Loop's destructor aborts connections still open, so on_closed() comes then
// at the latest.
//
// Threading: everything runs on the loop thread of the Loop the connection belongs to.
// No method calls back into the Handler synchronously: on_read, on_tls_ready and on_closed
// only ever come from the loop, so a Handler may call any method from inside a callback.
//
// Reading: on_read hands over everything that arrived; pause_reading() stops further
// on_read calls until resume_reading() (TLS input already received stays buffered).
// Writing: write() queues; writes issued in one loop iteration go out together at its end.
// pending_write_bytes() grows when the peer does not read: pause reading above a limit.
//
// STARTTLS (RFC 3207 §4.2, RFC 2595 §3.1): start_tls() switches the input at the next
// socket read. Bytes already handed to on_read -- including the rest of the chunk that held
// the command -- stay the caller's (drop them: plaintext a man in the middle may have
// injected); every byte read afterwards goes to OpenSSL, none is ever shown as plaintext.
// Writes queued before start_tls() go out in clear, after it encrypted. on_tls_ready(ok)
// when the handshake completes; on failure on_tls_ready(error) and the connection closes
// (after sending OpenSSL's alert).
//
// Limits: no TLS renegotiation; close() gives up flushing after kCloseTimeoutMs and aborts;
// connect() takes an IP literal (resolving names is dns/'s job).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace net {

class Loop;
class TlsContext;
namespace detail {
struct ConnectionAccess;
}

class Connection {
 public:
  struct Handler {
    // Plaintext (decrypted if TLS is active); valid only during the call.
    virtual void on_read(std::string_view plaintext) = 0;
    virtual void on_tls_ready(core::Status status) = 0;
    // Last call; the Connection is gone when it returns.
    virtual void on_closed() = 0;
    virtual ~Handler() = default;
  };

  // peer_ip() of a unix-domain connection (its local_ip() is the socket's path).
  static constexpr std::string_view kUnixPeer = "unix";

  // Graceful close waits this long for the peer to take pending bytes, then aborts.
  static constexpr int kCloseTimeoutMs = 30'000;

  // Connects to ip:port, giving up after timeout_ms (<= 0: the kernel's own, minutes).
  // done gets the open Connection (no handler yet: set one and call start_reading()), or a
  // kInvalid (bad IP) / kTemporary (refused, timed out, ...) error naming ip:port. done is
  // always called later from the loop, never from inside connect().
  static void connect(Loop& loop, const std::string& ip, uint16_t port, int timeout_ms,
                      std::function<void(core::Result<Connection*>)> done);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void set_handler(Handler* handler) { handler_ = handler; }
  void start_reading();
  void pause_reading();
  void resume_reading();
  void write(std::string data);
  // Server side of a handshake: STARTTLS / STLS, and implicit TLS (the Listener calls it).
  // No effect if TLS was already started or the connection is closing.
  void start_tls(std::shared_ptr<TlsContext> ctx);
  // Client side; sni_host is sent as SNI (unless an IP literal) and, with a verifying
  // context, must match the peer's certificate. Needs start_reading() to progress.
  void start_tls_client(std::shared_ptr<TlsContext> ctx, const std::string& sni_host);
  // Flushes pending writes and, with TLS, a close_notify; then closes. Later writes and
  // late input are discarded. Idempotent.
  void close();
  // Closes now; pending writes are dropped. Idempotent.
  void abort();

  Loop& loop() const { return loop_; }
  const std::string& peer_ip() const { return peer_ip_; }  // IPv4-mapped shown as IPv4
  bool is_unix_socket() const { return peer_ip_ == kUnixPeer; }
  uint16_t peer_port() const { return peer_port_; }
  const std::string& local_ip() const { return local_ip_; }
  uint16_t local_port() const { return local_port_; }
  bool tls_active() const { return tls_ == Tls::kActive; }
  // "TLSv1.3", the cipher's OpenSSL name and strength, for logs and Received headers;
  // empty / 0 unless tls_active().
  std::string tls_version() const;
  std::string tls_cipher() const;
  int tls_cipher_bits() const;
  // The peer's certificate chained to a trust anchor and matched the SNI host (client side;
  // meaningful also when the context does not enforce verification).
  bool tls_peer_verified() const;
  // Bytes accepted by write() and not yet taken by the kernel.
  size_t pending_write_bytes() const;
  // Why the connection ended if not by close()/abort(): "peer closed the connection",
  // "read: connection reset by peer", "tls: ...". Empty otherwise.
  const std::string& close_reason() const { return close_reason_; }

 private:
  friend struct detail::ConnectionAccess;
  struct Io;  // libuv handles and the OpenSSL session (connection.cpp)

  // Allowed transitions: kConnecting -> kOpen -> kClosing -> kClosed, and any -> kClosed.
  enum class State { kConnecting, kOpen, kClosing, kClosed };
  // kNone -> kHandshaking -> kActive | kFailed.
  enum class Tls { kNone, kHandshaking, kActive, kFailed };

  Connection(Loop& loop, bool unix_socket);
  ~Connection();

  void on_bytes(std::string_view bytes);
  void on_eof();
  void pump_tls();
  bool tls_input_buffered() const;
  void handshake_failed(std::string why);
  bool begin_tls(const std::shared_ptr<TlsContext>& ctx);
  void drain_tls_output();
  void flush();
  void start_write();
  void finish_close();
  void fail(std::string why);
  void update_reading();
  void mark_dirty();
  void take_turn();
  void on_handle_closed();

  Loop& loop_;
  std::unique_ptr<Io> io_;
  Handler* handler_ = nullptr;
  State state_ = State::kConnecting;
  Tls tls_ = Tls::kNone;
  bool want_read_ = false;   // start_reading() and not paused
  bool uv_reading_ = false;  // uv_read_start is in effect
  bool eof_ = false;         // the peer shut down its side
  bool write_in_flight_ = false;
  bool tls_shutdown_sent_ = false;
  bool tcp_shutdown_sent_ = false;
  bool dirty_ = false;  // listed in the loop's dirty list
  int open_handles_ = 0;
  std::string out_;        // wire bytes not yet handed to libuv
  std::string in_flight_;  // wire bytes libuv is writing
  std::string plain_out_;  // plaintext waiting for the handshake or the next turn
  std::string peer_ip_;
  uint16_t peer_port_ = 0;
  std::string local_ip_;
  uint16_t local_port_ = 0;
  std::string close_reason_;
  std::string connect_target_;  // "ip:port" while connecting
  int connect_timeout_ms_ = 0;
  std::function<void(core::Result<Connection*>)> on_connect_;
};

}  // namespace net
