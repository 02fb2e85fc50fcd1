#include "dns_test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace dns::test {

bool TestLoop::run_until(const std::function<bool()>& done, int timeout_ms) {
  struct Wait {
    const std::function<bool()>& done;
    bool expired = false;
  } wait{done};
  // The check runs before each poll, so the loop never blocks once done() holds, even when
  // the last callback ran in the timer phase of the same iteration.
  uv_prepare_t check;
  uv_prepare_init(&loop_, &check);
  check.data = &wait;
  uv_prepare_start(&check, [](uv_prepare_t* p) {
    if (static_cast<Wait*>(p->data)->done()) uv_stop(p->loop);
  });
  uv_timer_t guard;
  uv_timer_init(&loop_, &guard);
  guard.data = &wait;
  uv_timer_start(
      &guard,
      [](uv_timer_t* t) {
        static_cast<Wait*>(t->data)->expired = true;
        uv_stop(t->loop);
      },
      timeout_ms, 0);
  while (!done() && !wait.expired) uv_run(&loop_, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);  // their close callbacks, before they leave scope
  return done();
}

int TestLoop::close() {
  if (closed_) return 0;
  closed_ = true;
  uv_run(&loop_, UV_RUN_NOWAIT);
  return uv_loop_close(&loop_);
}

FakeDnsServer& FakeDnsServer::shared() {
  static FakeDnsServer server;
  return server;
}

FakeDnsServer::FakeDnsServer() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    return;
  }
  const std::string script = PORTER_DNS_TEST_DIR "/fake_dns_server.py";
  const std::string zone = PORTER_DNS_TEST_DIR "/test.zone";
  std::vector<std::string> args = {"/usr/bin/python3", script,     "--zone",     zone,
                                   "--port",           "0",        "--servfail", "broken.test",
                                   "--drop",           "slow.test"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    pid_ = -1;
    error_ = std::string("posix_spawn: ") + std::strerror(rc);
    ::close(fds[0]);
    return;
  }

  // Wait for "ready PORT\n" (python start-up plus dnslib import take a fraction of a second).
  std::string line;
  pollfd pfd{fds[0], POLLIN, 0};
  while (line.find('\n') == std::string::npos && poll(&pfd, 1, 10000) == 1) {
    char buf[64];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (line.rfind("ready ", 0) != 0) {
    error_ = "fake_dns_server.py did not start: \"" + line + "\"";
    return;
  }
  address_ = "127.0.0.1:" + line.substr(6, line.find('\n') - 6);
}

FakeDnsServer::~FakeDnsServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status;
  waitpid(pid_, &status, 0);
}

}  // namespace dns::test
