#include "mta/net/listener.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "mta/net/internal.h"
#include "mta/net/tls_context.h"

namespace net {
namespace {

constexpr int kBacklog = 511;

}  // namespace

Listener::Listener(Loop& loop, std::string host, uint16_t port, bool implicit_tls,
                   std::shared_ptr<TlsContext> tls, std::function<void(Connection*)> on_accept)
    : loop_(loop),
      host_(std::move(host)),
      port_(port),
      implicit_tls_(implicit_tls),
      tls_(std::move(tls)),
      on_accept_(std::move(on_accept)) {}

Listener::~Listener() { close(); }

core::Status Listener::listen() {
  std::string ip = host_;
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  const std::string where = "listen " + detail::endpoint_text(ip, port_);
  if (handle_ != nullptr) return core::Status::invalid(where + ": already listening");
  if (implicit_tls_ && !tls_)
    return core::Status::invalid(where + ": implicit TLS needs a certificate");
  sockaddr_storage addr;
  if (!detail::to_sockaddr(ip, port_, &addr))
    return core::Status::invalid(where + ": not an IP address");

  handle_ = new uv_tcp_t;
  // init_ex creates the socket now, so SO_REUSEPORT can be set before bind.
  if (const int rc = uv_tcp_init_ex(&loop_.impl().uv, handle_, addr.ss_family); rc < 0) {
    delete handle_;
    handle_ = nullptr;
    return core::Status::io(where + ": " + uv_strerror(rc));
  }
  handle_->data = this;
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(handle_), &fd);
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    const std::string why = std::strerror(errno);
    close();
    return core::Status::io(where + ": SO_REUSEPORT: " + why);
  }
  // libuv may report a bind error only at listen time.
  int rc = uv_tcp_bind(handle_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle_), kBacklog, on_connection);
  if (rc < 0) {
    close();
    return core::Status::io(where + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(handle_, reinterpret_cast<sockaddr*>(&bound), &len);
  bound_port_ =
      ntohs(bound.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  return core::Status::ok();
}

void Listener::close() {
  if (handle_ == nullptr) return;
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  handle_ = nullptr;
}

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    core::LogLine(core::LogLevel::kWarn, "accept_failed")
        .kv("listener", detail::endpoint_text(self->host_, self->bound_port_))
        .kv("error", uv_strerror(status))
        .emit();
    return;
  }
  auto accepted =
      detail::accept_connection(self->loop_, server, self->implicit_tls_ ? self->tls_ : nullptr);
  if (!accepted) {
    core::LogLine(core::LogLevel::kWarn, "accept_failed")
        .kv("listener", detail::endpoint_text(self->host_, self->bound_port_))
        .kv("error", accepted.status().message())
        .emit();
    return;
  }
  self->on_accept_(*accepted);
}

}  // namespace net
