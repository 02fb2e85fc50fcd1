// Listener and Connection on unix-domain sockets: the same echo as over TCP, plus what a
// socket file needs (mode, stale files, removal).
#include <sys/stat.h>

#include <fstream>

#include "mta/net/listener.h"
#include "tests/net/test_support.h"

namespace net::test {
namespace {

namespace fs = std::filesystem;

unsigned file_mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// A socket file nobody accepts on, as a crashed server leaves it.
void make_stale_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
  REQUIRE(is_socket(path));
}

core::Status listen_once(LoopThread& lt, const std::string& path) {
  return lt.call([&] {
    Listener l(lt.loop, UnixSocket{path}, false, nullptr, [](Connection* c) { c->abort(); });
    return l.listen();
  });
}

TEST_CASE("unit: a unix socket echoes like TCP and names both ends", "[net][unit]") {
  TempDir dir;
  const std::string path = dir.file("admin.sock");
  LoopThread lt;
  EchoServer server(lt, UnixSocket{path});
  CHECK(server.port() == 0);
  Client client(path);
  client.send("hello\r\n");
  CHECK(client.read_exact(7) == "hello\r\n");

  Events& ev = server.events();
  REQUIRE(ev.wait([&] { return ev.received == "hello\r\n"; }));
  CHECK(ev.peer_ip == "unix");
  CHECK(ev.peer_port == 0);
  CHECK(ev.local_ip == path);
  CHECK(lt.call([&] { return lt.loop.connection_count(); }) == 1);

  // A big write to a slow reader flows as over TCP.
  client.send("BIG 300000");
  CHECK(client.read_to_end() == EchoHandler::pattern(300000));
  REQUIRE(ev.wait([&] { return ev.closed == 1; }));
  CHECK(lt.call([&] { return lt.loop.connection_count(); }) == 0);
}

TEST_CASE("unit: a unix socket file gets exactly the mode asked for", "[net][unit]") {
  TempDir dir;
  const std::string path = dir.file("admin.sock");
  const unsigned mode = GENERATE(0600u, 0660u, 0666u);
  LoopThread lt;
  // 0666 under the usual umask 022 would become 0644 if the umask applied.
  const mode_t old = ::umask(022);
  EchoServer server(lt, UnixSocket{path, mode});
  ::umask(old);
  CHECK(file_mode(path) == mode);
}

TEST_CASE("unit: close() removes the socket file, and connections live on", "[net][unit]") {
  TempDir dir;
  const std::string path = dir.file("admin.sock");
  LoopThread lt;
  EchoServer server(lt, UnixSocket{path});
  Client client(path);
  client.send("ping");  // accepted: a connection still in the backlog would go with it
  REQUIRE(client.read_exact(4) == "ping");
  REQUIRE(is_socket(path));
  server.close();
  CHECK_FALSE(fs::exists(path));
  client.send("still\r\n");
  CHECK(client.read_exact(7) == "still\r\n");
}

TEST_CASE("unit: a stale socket file is replaced", "[net][unit]") {
  TempDir dir;
  const std::string path = dir.file("admin.sock");
  make_stale_socket(path);
  LoopThread lt;
  EchoServer server(lt, UnixSocket{path});
  Client client(path);
  client.send("x");
  CHECK(client.read_exact(1) == "x");
}

TEST_CASE("unit: a live socket, another file or a long path is refused", "[net][unit]") {
  TempDir dir;
  const std::string path = dir.file("admin.sock");
  LoopThread lt;

  SECTION("another server listens on the path") {
    EchoServer first(lt, UnixSocket{path});
    const core::Status s = listen_once(lt, path);
    CHECK(s.kind() == core::Status::Kind::kIo);
    CHECK(s.message() == "listen " + path + ": address already in use");
    Client client(path);  // the first server still owns the file
    client.send("y");
    CHECK(client.read_exact(1) == "y");
  }
  SECTION("a regular file is left alone") {
    std::ofstream(path) << "keep me";
    const core::Status s = listen_once(lt, path);
    CHECK(s.kind() == core::Status::Kind::kInvalid);
    CHECK(s.message() == "listen " + path + ": exists and is not a socket");
    std::ifstream in(path);
    std::string text;
    std::getline(in, text);
    CHECK(text == "keep me");
  }
  SECTION("the path does not fit sockaddr_un") {
    const std::string long_path = "/tmp/" + std::string(120, 'a');
    const core::Status s = listen_once(lt, long_path);
    CHECK(s.kind() == core::Status::Kind::kInvalid);
    CHECK(s.message() == "listen " + long_path + ": the path must have 1 to 107 bytes");
  }
}

TEST_CASE("unit: close() leaves a successor's socket file alone", "[net][unit]") {
  TempDir dir;
  const std::string path = dir.file("admin.sock");
  LoopThread lt;
  EchoServer old_server(lt, UnixSocket{path});
  // An operator removed the file and a new server took the path.
  REQUIRE(::unlink(path.c_str()) == 0);
  EchoServer new_server(lt, UnixSocket{path});
  old_server.close();
  REQUIRE(is_socket(path));
  Client client(path);
  client.send("z");
  CHECK(client.read_exact(1) == "z");
  CHECK(new_server.events().wait([&] { return new_server.events().received == "z"; }));
}

}  // namespace
}  // namespace net::test
