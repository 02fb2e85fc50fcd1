#include "mta/net/listener.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "mta/net/internal.h"
#include "mta/net/tls_context.h"

namespace net {
namespace {

constexpr int kBacklog = 511;

std::string errno_text() {
  return std::strerror(errno);
}

// A file descriptor closed on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Makes room for a new socket at addr's path: nothing there, or a socket nobody accepts on
// (left by a crash), which is removed. A live socket or any other file is refused.
core::Status clear_stale_socket(const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(addr.sun_path, &st) != 0) {
    if (errno == ENOENT) return core::Status::ok();
    return core::Status::io(errno_text());
  }
  if (!S_ISSOCK(st.st_mode)) return core::Status::invalid("exists and is not a socket");
  // Non-blocking, so a live server with a full backlog answers EAGAIN instead of stalling.
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (probe.get() < 0) return core::Status::io(errno_text());
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ||
      errno == EAGAIN || errno == EINPROGRESS)
    return core::Status::io("address already in use");
  if (errno != ECONNREFUSED) return core::Status::io(errno_text());
  if (::unlink(addr.sun_path) != 0 && errno != ENOENT)
    return core::Status::io("removing the stale socket: " + errno_text());
  return core::Status::ok();
}

}  // namespace

Listener::Listener(Loop& loop, std::string host, uint16_t port, bool implicit_tls,
                   std::shared_ptr<TlsContext> tls, std::function<void(Connection*)> on_accept)
    : loop_(loop),
      host_(std::move(host)),
      port_(port),
      implicit_tls_(implicit_tls),
      tls_(std::move(tls)),
      on_accept_(std::move(on_accept)) {}

Listener::Listener(Loop& loop, UnixSocket socket, bool implicit_tls,
                   std::shared_ptr<TlsContext> tls, std::function<void(Connection*)> on_accept)
    : loop_(loop),
      is_unix_(true),
      unix_(std::move(socket)),
      implicit_tls_(implicit_tls),
      tls_(std::move(tls)),
      on_accept_(std::move(on_accept)) {}

Listener::~Listener() {
  close();
}

std::string Listener::name() const {
  if (is_unix_) return unix_.path;
  std::string ip = host_;
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  return detail::endpoint_text(ip, handle_ != nullptr ? bound_port_ : port_);
}

core::Status Listener::listen() {
  const std::string where = "listen " + name();
  if (handle_ != nullptr) return core::Status::invalid(where + ": already listening");
  if (implicit_tls_ && !tls_)
    return core::Status::invalid(where + ": implicit TLS needs a certificate");
  return is_unix_ ? listen_unix(where) : listen_tcp(where);
}

core::Status Listener::listen_tcp(const std::string& where) {
  std::string ip = host_;
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  sockaddr_storage addr;
  if (!detail::to_sockaddr(ip, port_, &addr))
    return core::Status::invalid(where + ": not an IP address");

  auto* tcp = new uv_tcp_t;
  // init_ex creates the socket now, so SO_REUSEPORT can be set before bind.
  if (const int rc = uv_tcp_init_ex(&loop_.impl().uv, tcp, addr.ss_family); rc < 0) {
    delete tcp;
    return core::Status::io(where + ": " + uv_strerror(rc));
  }
  handle_ = reinterpret_cast<uv_stream_t*>(tcp);
  handle_->data = this;
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(handle_), &fd);
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    const std::string why = errno_text();
    close();
    return core::Status::io(where + ": SO_REUSEPORT: " + why);
  }
  // libuv may report a bind error only at listen time.
  int rc = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(handle_, kBacklog, on_connection);
  if (rc < 0) {
    close();
    return core::Status::io(where + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  bound_port_ =
      ntohs(bound.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  return core::Status::ok();
}

core::Status Listener::listen_unix(const std::string& where) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (unix_.path.empty() || unix_.path.size() >= sizeof addr.sun_path)
    return core::Status::invalid(where + ": the path must have 1 to " +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, unix_.path.data(), unix_.path.size());
  if (core::Status s = clear_stale_socket(addr); !s)
    return s.kind() == core::Status::Kind::kInvalid
               ? core::Status::invalid(where + ": " + s.message())
               : core::Status::io(where + ": " + s.message());

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return core::Status::io(where + ": " + errno_text());
  // bind() creates the file with the socket inode's mode minus the umask: never wider than
  // `mode`. The chmod below then sets it exactly, whatever the umask took away.
  if (::fchmod(fd.get(), unix_.mode) != 0 ||
      ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return core::Status::io(where + ": " + errno_text());
  struct stat st {};
  if (::stat(addr.sun_path, &st) == 0) {
    unix_dev_ = st.st_dev;
    unix_ino_ = st.st_ino;
  }
  auto* pipe = new uv_pipe_t;
  uv_pipe_init(&loop_.impl().uv, pipe, 0);
  handle_ = reinterpret_cast<uv_stream_t*>(pipe);
  handle_->data = this;
  if (::chmod(addr.sun_path, unix_.mode) != 0) {
    const std::string why = errno_text();
    close();  // removes the file: it is ours now
    return core::Status::io(where + ": chmod: " + why);
  }
  int rc = uv_pipe_open(pipe, fd.get());
  if (rc == 0) {
    fd.release();  // the handle owns it now
    rc = uv_listen(handle_, kBacklog, on_connection);
  }
  if (rc < 0) {
    close();
    return core::Status::io(where + ": " + uv_strerror(rc));
  }
  return core::Status::ok();
}

void Listener::close() {
  if (handle_ == nullptr) return;
  handle_->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) {
    if (h->type == UV_NAMED_PIPE) {
      delete reinterpret_cast<uv_pipe_t*>(h);
    } else {
      delete reinterpret_cast<uv_tcp_t*>(h);
    }
  });
  handle_ = nullptr;
  if (unix_ino_ != 0) {
    // Only our own file: a successor may already have replaced it with its socket.
    struct stat st {};
    if (::lstat(unix_.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        static_cast<uint64_t>(st.st_dev) == unix_dev_ &&
        static_cast<uint64_t>(st.st_ino) == unix_ino_)
      ::unlink(unix_.path.c_str());
    unix_dev_ = unix_ino_ = 0;
  }
}

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (self == nullptr) return;
  if (status < 0) {
    core::LogLine(core::LogLevel::kWarn, "accept_failed")
        .kv("listener", self->name())
        .kv("error", uv_strerror(status))
        .emit();
    return;
  }
  auto accepted =
      detail::accept_connection(self->loop_, server, self->implicit_tls_ ? self->tls_ : nullptr);
  if (!accepted) {
    core::LogLine(core::LogLevel::kWarn, "accept_failed")
        .kv("listener", self->name())
        .kv("error", accepted.status().message())
        .emit();
    return;
  }
  self->on_accept_(*accepted);
}

}  // namespace net
