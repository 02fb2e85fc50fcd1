#include "mta/net/connection.h"

#include <openssl/err.h>
#include <sys/un.h>

#include <algorithm>

#include "core/cidr.h"
#include "mta/net/internal.h"
#include "mta/net/openssl_util.h"
#include "mta/net/tls_context.h"

namespace net {

struct Connection::Io {
  // The same code serves both: libuv treats either as a uv_stream_t.
  union Socket {
    uv_tcp_t tcp;
    uv_pipe_t pipe;  // unix-domain socket
  } socket{};
  bool unix_socket = false;
  uv_timer_t timer{};  // the connect timeout, later the close deadline
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
  uv_connect_t connect_req{};
  SSL* ssl = nullptr;   // owns both BIOs
  BIO* rbio = nullptr;  // socket -> OpenSSL
  BIO* wbio = nullptr;  // OpenSSL -> socket
  ~Io() { SSL_free(ssl); }
};

namespace detail {

// The libuv callbacks, with access to Connection's internals.
struct ConnectionAccess {
  using State = Connection::State;

  static Connection& of(void* handle_data) { return *static_cast<Connection*>(handle_data); }
  static uv_stream_t* stream(Connection& c) {
    return reinterpret_cast<uv_stream_t*>(&c.io_->socket);
  }
  static uv_handle_t* handle(auto* h) { return reinterpret_cast<uv_handle_t*>(h); }

  static Connection* make(Loop& loop, bool unix_socket) {
    return new Connection(loop, unix_socket);
  }
  static void take_turn(Connection& c) { c.take_turn(); }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto& bytes = of(h->data).loop_.impl().read_buf;
    *buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    Connection& c = of(s->data);
    if (n > 0) {
      c.on_bytes(std::string_view(buf->base, static_cast<size_t>(n)));
    } else if (n == UV_EOF) {
      c.on_eof();
    } else if (n < 0) {
      c.fail(std::string("read: ") + uv_strerror(static_cast<int>(n)));
    }
  }

  static void on_write(uv_write_t* req, int status) {
    Connection& c = of(req->handle->data);
    c.write_in_flight_ = false;
    if (status == UV_ECANCELED || c.state_ == State::kClosed) return;
    if (status < 0) return c.fail(std::string("write: ") + uv_strerror(status));
    // A 1 MiB reply must not stay allocated for the rest of an idle IMAP session.
    if (c.in_flight_.capacity() > 64 * 1024) {
      std::string().swap(c.in_flight_);
    } else {
      c.in_flight_.clear();
    }
    c.flush();
  }

  static void on_shutdown(uv_shutdown_t* req, int status) {
    if (status == UV_ECANCELED) return;
    of(req->handle->data).abort();
  }

  static void on_connect(uv_connect_t* req, int status) {
    Connection& c = of(req->handle->data);
    if (status == UV_ECANCELED || c.state_ != State::kConnecting) return;
    if (status < 0) {
      c.close_reason_ = uv_strerror(status);
      return c.abort();
    }
    uv_timer_stop(&c.io_->timer);
    opened(c);
    auto done = std::move(c.on_connect_);
    c.on_connect_ = nullptr;
    done(&c);
  }

  static void on_timer(uv_timer_t* t) {
    Connection& c = of(t->data);
    if (c.state_ == State::kConnecting) {
      c.close_reason_ = "timed out after " + std::to_string(c.connect_timeout_ms_) + " ms";
    } else if (c.close_reason_.empty()) {
      c.close_reason_ =
          "close timed out with " + std::to_string(c.pending_write_bytes()) + " bytes unsent";
    }
    c.abort();
  }

  static void on_close(uv_handle_t* h) {
    Connection& c = of(h->data);
    if (--c.open_handles_ == 0) c.on_handle_closed();
  }

  static void read_endpoint(int (*get)(const uv_tcp_t*, sockaddr*, int*), const uv_tcp_t* tcp,
                            std::string& ip, uint16_t& port) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (get(tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      uv_ip4_name(a, text, sizeof text);
      port = ntohs(a->sin_port);
    } else {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      uv_ip6_name(a, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    auto folded = core::IpAddress::parse(text);  // "::ffff:192.0.2.1" -> "192.0.2.1"
    ip = folded ? folded->str() : text;
  }

  // The socket is connected: note both ends (getpeername fails once the peer is gone).
  static void opened(Connection& c) {
    c.state_ = State::kOpen;
    if (c.io_->unix_socket) {
      c.peer_ip_ = Connection::kUnixPeer;
      char path[sizeof(sockaddr_un::sun_path) + 1] = {};
      size_t len = sizeof path;
      if (uv_pipe_getsockname(&c.io_->socket.pipe, path, &len) == 0) c.local_ip_.assign(path, len);
      return;
    }
    // Replies are already coalesced per loop iteration; Nagle would only delay them.
    uv_tcp_nodelay(&c.io_->socket.tcp, 1);
    read_endpoint(uv_tcp_getpeername, &c.io_->socket.tcp, c.peer_ip_, c.peer_port_);
    read_endpoint(uv_tcp_getsockname, &c.io_->socket.tcp, c.local_ip_, c.local_port_);
  }
};

void run_connection_turns(Loop::Impl& loop) {
  // A turn may mark more connections dirty (or its own again); they get theirs in this
  // same pass, because the loop is about to block in poll.
  for (size_t i = 0; i < loop.dirty.size(); ++i) {
    if (Connection* c = loop.dirty[i]) ConnectionAccess::take_turn(*c);
  }
  loop.dirty.clear();
}

core::Result<Connection*> accept_connection(Loop& loop, uv_stream_t* server,
                                            const std::shared_ptr<TlsContext>& implicit_tls) {
  Connection* c = ConnectionAccess::make(loop, server->type == UV_NAMED_PIPE);
  if (const int rc = uv_accept(server, ConnectionAccess::stream(*c)); rc < 0) {
    c->abort();  // no handler yet: it just goes away
    return core::Status::io(std::string("accept: ") + uv_strerror(rc));
  }
  ConnectionAccess::opened(*c);
  if (implicit_tls) c->start_tls(implicit_tls);
  return c;
}

}  // namespace detail

namespace {

using Access = detail::ConnectionAccess;

std::string tls_error_text(SSL* ssl, int ssl_error) {
  std::string why =
      detail::openssl_errors(ssl_error == SSL_ERROR_SYSCALL ? "connection lost" : "protocol error");
  const long verify = SSL_get_verify_result(ssl);
  if (!SSL_is_server(ssl) && verify != X509_V_OK)
    why += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
  return why;
}

}  // namespace

Connection::Connection(Loop& loop, bool unix_socket) : loop_(loop), io_(std::make_unique<Io>()) {
  Loop::Impl& impl = loop.impl();
  io_->unix_socket = unix_socket;
  if (unix_socket) {
    uv_pipe_init(&impl.uv, &io_->socket.pipe, 0);
  } else {
    uv_tcp_init(&impl.uv, &io_->socket.tcp);
  }
  uv_timer_init(&impl.uv, &io_->timer);
  Access::stream(*this)->data = this;
  io_->timer.data = this;
  open_handles_ = 2;
  impl.connections.insert(this);
}

Connection::~Connection() {
  Loop::Impl& impl = loop_.impl();
  impl.connections.erase(this);
  if (dirty_)
    std::replace(impl.dirty.begin(), impl.dirty.end(), this, static_cast<Connection*>(nullptr));
}

void Connection::connect(Loop& loop, const std::string& ip, uint16_t port, int timeout_ms,
                         std::function<void(core::Result<Connection*>)> done) {
  const std::string target = detail::endpoint_text(ip, port);
  sockaddr_storage addr;
  if (!detail::to_sockaddr(ip, port, &addr)) {
    loop.post([done = std::move(done), target] {
      done(core::Status::invalid("connect " + target + ": not an IP address"));
    });
    return;
  }
  Connection* c = Access::make(loop, false);
  c->connect_target_ = target;
  c->connect_timeout_ms_ = timeout_ms;
  c->on_connect_ = std::move(done);
  const int rc = uv_tcp_connect(&c->io_->connect_req, &c->io_->socket.tcp,
                                reinterpret_cast<const sockaddr*>(&addr), Access::on_connect);
  if (rc < 0) {
    c->close_reason_ = uv_strerror(rc);
    return c->abort();  // done() is called from the close callback
  }
  if (timeout_ms > 0) uv_timer_start(&c->io_->timer, Access::on_timer, timeout_ms, 0);
}

void Connection::start_reading() {
  want_read_ = true;
  update_reading();
  // Records that arrived while paused are already in OpenSSL's buffers: no read will
  // announce them, so the next turn delivers them.
  if (tls_ == Tls::kActive && tls_input_buffered()) mark_dirty();
}

void Connection::resume_reading() { start_reading(); }

void Connection::pause_reading() {
  want_read_ = false;
  update_reading();
}

void Connection::update_reading() {
  // While closing, keep reading and discard: unread input would turn our FIN into an RST,
  // and the peer could lose the last reply.
  bool want = state_ == State::kOpen ? want_read_ : state_ == State::kClosing;
  if (eof_) want = false;
  if (want && !uv_reading_) {
    if (const int rc = uv_read_start(Access::stream(*this), Access::on_alloc, Access::on_read);
        rc < 0)
      return fail(std::string("read: ") + uv_strerror(rc));
    uv_reading_ = true;
  } else if (!want && uv_reading_) {
    uv_read_stop(Access::stream(*this));
    uv_reading_ = false;
  }
}

void Connection::write(std::string data) {
  if (state_ != State::kOpen || data.empty() || tls_ == Tls::kFailed) return;
  // The mode at the time of the call decides: a STARTTLS "220" written just before
  // start_tls() goes out in clear.
  std::string& queue = tls_ == Tls::kNone ? out_ : plain_out_;
  if (queue.empty()) {
    queue = std::move(data);
  } else {
    queue += data;
  }
  mark_dirty();
}

bool Connection::begin_tls(const std::shared_ptr<TlsContext>& ctx) {
  if (state_ != State::kOpen || tls_ != Tls::kNone || !ctx) return false;
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx->native());
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (ssl == nullptr || rbio == nullptr || wbio == nullptr) {
    SSL_free(ssl);
    BIO_free(rbio);
    BIO_free(wbio);
    fail("tls: cannot create a session: " + detail::openssl_errors());
    return false;
  }
  SSL_set_bio(ssl, rbio, wbio);
  io_->ssl = ssl;
  io_->rbio = rbio;
  io_->wbio = wbio;
  tls_ = Tls::kHandshaking;
  return true;
}

void Connection::start_tls(std::shared_ptr<TlsContext> ctx) {
  if (!begin_tls(ctx)) return;
  SSL_set_accept_state(io_->ssl);
}

void Connection::start_tls_client(std::shared_ptr<TlsContext> ctx, const std::string& sni_host) {
  if (!begin_tls(ctx)) return;
  SSL* ssl = io_->ssl;
  SSL_set_connect_state(ssl);
  if (!sni_host.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    // RFC 6066 §3: no IP literals in SNI; the certificate is then matched on its IP SAN.
    if (core::IpAddress::parse(sni_host).is_ok()) {
      X509_VERIFY_PARAM_set1_ip_asc(param, sni_host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, sni_host.c_str());
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, sni_host.c_str(), 0);
    }
  }
  mark_dirty();  // the turn writes the ClientHello
}

void Connection::on_bytes(std::string_view bytes) {
  if (state_ != State::kOpen) return;  // closing: late input is discarded
  switch (tls_) {
    case Tls::kNone:
      if (handler_ != nullptr) handler_->on_read(bytes);
      return;
    case Tls::kFailed:
      return;
    case Tls::kHandshaking:
    case Tls::kActive:
      // A memory BIO grows as needed; it only fails when malloc does.
      if (BIO_write(io_->rbio, bytes.data(), static_cast<int>(bytes.size())) !=
          static_cast<int>(bytes.size()))
        return fail("tls: out of memory buffering input");
      pump_tls();
      return;
  }
}

bool Connection::tls_input_buffered() const {
  return io_->ssl != nullptr && (SSL_has_pending(io_->ssl) == 1 || BIO_ctrl_pending(io_->rbio) > 0);
}

void Connection::pump_tls() {
  if (state_ != State::kOpen) return;
  SSL* ssl = io_->ssl;
  if (tls_ == Tls::kHandshaking) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl);
    if (rc != 1) {
      const int err = SSL_get_error(ssl, rc);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
        return handshake_failed(tls_error_text(ssl, err));
      drain_tls_output();
      return;
    }
    tls_ = Tls::kActive;
    drain_tls_output();  // the client's Finished, the server's session tickets
    mark_dirty();        // plaintext written during the handshake can go now
    if (handler_ != nullptr) handler_->on_tls_ready(core::Status::ok());
  }
  if (tls_ != Tls::kActive) return;
  auto& plain = loop_.impl().plain_buf;
  while (state_ == State::kOpen && want_read_) {
    ERR_clear_error();
    const int n = SSL_read(ssl, plain.data(), static_cast<int>(plain.size()));
    if (n > 0) {
      if (handler_ != nullptr)
        handler_->on_read(std::string_view(plain.data(), static_cast<size_t>(n)));
      continue;
    }
    const int err = SSL_get_error(ssl, n);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      close_reason_ = "peer closed the TLS session";
      close();
      break;
    }
    fail("tls: " + tls_error_text(ssl, err));
    return;
  }
  drain_tls_output();  // TLS 1.3 key updates and the like need an answer
}

void Connection::handshake_failed(std::string why) {
  tls_ = Tls::kFailed;
  close_reason_ = "tls handshake: " + why;
  drain_tls_output();  // OpenSSL's alert tells the peer why
  if (handler_ != nullptr) handler_->on_tls_ready(core::Status::io(close_reason_));
  close();
}

void Connection::drain_tls_output() {
  while (const size_t pending = BIO_ctrl_pending(io_->wbio)) {
    const size_t old = out_.size();
    out_.resize(old + pending);
    const int n = BIO_read(io_->wbio, out_.data() + old, static_cast<int>(pending));
    out_.resize(old + static_cast<size_t>(std::max(n, 0)));
    if (n <= 0) break;
  }
  if (!out_.empty()) mark_dirty();
}

void Connection::mark_dirty() {
  if (dirty_ || state_ == State::kClosed) return;
  dirty_ = true;
  loop_.impl().dirty.push_back(this);
}

void Connection::take_turn() {
  dirty_ = false;
  if (state_ == State::kClosed) return;
  if (tls_ == Tls::kHandshaking || (tls_ == Tls::kActive && want_read_ && tls_input_buffered()))
    pump_tls();
  flush();
}

void Connection::flush() {
  if (state_ == State::kClosed) return;
  if (tls_ == Tls::kActive && !plain_out_.empty() && !tls_shutdown_sent_) {
    ERR_clear_error();
    // Without SSL_MODE_ENABLE_PARTIAL_WRITE and with a memory BIO this takes it all.
    const int n = SSL_write(io_->ssl, plain_out_.data(), static_cast<int>(plain_out_.size()));
    if (n <= 0) return fail("tls: " + tls_error_text(io_->ssl, SSL_get_error(io_->ssl, n)));
    plain_out_.clear();
    drain_tls_output();
  }
  if (!write_in_flight_ && !out_.empty()) start_write();
  if (state_ == State::kClosing && !write_in_flight_ && out_.empty()) finish_close();
}

void Connection::start_write() {
  in_flight_.swap(out_);
  out_.clear();
  uv_buf_t buf = uv_buf_init(in_flight_.data(), static_cast<unsigned>(in_flight_.size()));
  if (const int rc = uv_write(&io_->write_req, Access::stream(*this), &buf, 1, Access::on_write);
      rc < 0)
    return fail(std::string("write: ") + uv_strerror(rc));
  write_in_flight_ = true;
}

void Connection::close() {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  if (state_ == State::kConnecting) return abort();
  state_ = State::kClosing;
  update_reading();
  uv_timer_start(&io_->timer, Access::on_timer, kCloseTimeoutMs, 0);
  mark_dirty();
}

void Connection::finish_close() {
  if (tls_ == Tls::kActive && !tls_shutdown_sent_) {
    tls_shutdown_sent_ = true;
    // Send our close_notify (RFC 8446 §6.1) without waiting for the peer's.
    ERR_clear_error();
    SSL_shutdown(io_->ssl);
    drain_tls_output();
    if (!out_.empty()) return start_write();
  }
  if (tcp_shutdown_sent_) return;
  tcp_shutdown_sent_ = true;
  if (uv_shutdown(&io_->shutdown_req, Access::stream(*this), Access::on_shutdown) < 0) abort();
}

void Connection::abort() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  // Pending write, shutdown and connect requests end with UV_ECANCELED before the close
  // callbacks; the Connection lives until the last of those.
  uv_timer_stop(&io_->timer);
  uv_close(Access::handle(Access::stream(*this)), Access::on_close);
  uv_close(Access::handle(&io_->timer), Access::on_close);
}

void Connection::fail(std::string why) {
  if (close_reason_.empty()) close_reason_ = std::move(why);
  abort();
}

void Connection::on_handle_closed() {
  if (on_connect_) {
    auto done = std::move(on_connect_);
    on_connect_ = nullptr;
    done(core::Status::temporary("connect " + connect_target_ + ": " +
                                 (close_reason_.empty() ? "cancelled" : close_reason_)));
  } else if (handler_ != nullptr) {
    handler_->on_closed();
  }
  delete this;
}

void Connection::on_eof() {
  eof_ = true;
  uv_reading_ = false;  // libuv stops reading by itself at EOF
  if (state_ != State::kOpen) return;
  if (tls_ == Tls::kHandshaking) return handshake_failed("connection closed during the handshake");
  close_reason_ = "peer closed the connection";
  close();
}

std::string Connection::tls_version() const {
  return tls_active() ? SSL_get_version(io_->ssl) : "";
}

std::string Connection::tls_cipher() const {
  return tls_active() ? SSL_get_cipher_name(io_->ssl) : "";
}

int Connection::tls_cipher_bits() const {
  return tls_active() ? SSL_get_cipher_bits(io_->ssl, nullptr) : 0;
}

bool Connection::tls_peer_verified() const {
  return tls_active() && SSL_get0_peer_certificate(io_->ssl) != nullptr &&
         SSL_get_verify_result(io_->ssl) == X509_V_OK;
}

size_t Connection::pending_write_bytes() const {
  const size_t in_libuv =
      write_in_flight_
          ? uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&io_->socket))
          : 0;
  return out_.size() + plain_out_.size() + in_libuv;
}

}  // namespace net
