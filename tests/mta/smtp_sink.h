#pragma once
// Test support for delivery tests: a real SMTP server on loopback that records what it
// receives and answers RCPT as a test tells it, and a wait for a condition.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tests {

// Waits up to 10 s for pred() to hold.
template <typename P>
inline bool eventually(P pred) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// A minimal SMTP server on 127.0.0.1 (an ephemeral port): one thread per connection, plain
// text, no extensions. RCPT gets `rcpt_reply(line)` when that is set (set it before the
// first connection), else `rcpt_code`; with `stall` set, a new connection waits for its
// greeting until stall is cleared or the sink stops; `greet_delay_ms` delays every greeting.
class SmtpSink {
 public:
  SmtpSink() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~SmtpSink() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : sessions_) t.join();
    close(fd_);
  }

  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

  uint16_t port = 0;
  std::atomic<int> rcpt_code{250};
  std::function<std::string(const std::string& line)> rcpt_reply;
  std::atomic<bool> stall{false};
  std::atomic<int> greet_delay_ms{0};

 private:
  bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, 20) > 0;
  }
  void accept_loop() {
    while (!stop_) {
      if (!readable(fd_)) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c >= 0) sessions_.emplace_back([this, c] { session(c); });
    }
  }
  void send(int c, const std::string& s) { (void)!write(c, s.data(), s.size()); }
  void session(int c) {
    while (stall && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(greet_delay_ms.load()));
    send(c, "220 sink\r\n");
    std::string in;
    bool data = false;
    std::string body;
    while (!stop_) {
      if (!readable(c)) continue;
      char buf[4096];
      const ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      for (size_t eol; (eol = in.find("\r\n")) != std::string::npos;) {
        const std::string line = in.substr(0, eol);
        in.erase(0, eol + 2);
        if (data) {
          if (line == ".") {
            data = false;
            {
              std::lock_guard lock(mu_);
              messages_.push_back(body);
            }
            body.clear();
            send(c, "250 2.0.0 queued\r\n");
          } else {
            body += line + "\r\n";
          }
          continue;
        }
        const std::string verb = line.substr(0, 4);
        if (verb == "RCPT") {
          send(c, rcpt_reply ? rcpt_reply(line) + "\r\n"
                             : std::to_string(rcpt_code.load()) +
                                   (rcpt_code >= 400 ? " 4.7.1 not now\r\n" : " 2.1.5 ok\r\n"));
        } else if (verb == "DATA") {
          data = true;
          send(c, "354 go\r\n");
        } else if (verb == "QUIT") {
          send(c, "221 bye\r\n");
          close(c);
          return;
        } else {
          send(c, "250 ok\r\n");
        }
      }
    }
    close(c);
  }

  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> sessions_;  // acceptor thread only, until joined
  std::mutex mu_;
  std::vector<std::string> messages_;
};

}  // namespace tests
