#pragma once
// Shared pieces of the queue tests: a temporary directory for a real RocksDB, test messages,
// and a way to wait for the writer's callbacks.

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/envelope.h"
#include "core/status.h"
#include "queue/db.h"
#include "queue/writer.h"

namespace queue_test {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/porter-queue-test-XXXXXX";
    const char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::unique_ptr<queue::Db> open_db(const std::string& dir,
                                          queue::OpenMode mode = queue::OpenMode::kReadWrite) {
  auto db = queue::Db::open(dir, mode);
  INFO(db.status().to_string());
  REQUIRE(db.is_ok());
  return std::move(db).value();
}

// Bytes of every value, CR and LF included, reproducible from the seed.
inline std::string make_bytes(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return out;
}

inline core::Envelope make_envelope(size_t recipients) {
  core::Envelope e;
  e.sender = {"sender", "example.org"};
  for (size_t i = 0; i < recipients; ++i)
    e.recipients.push_back({{"rcpt" + std::to_string(i), "example.net"}, 0, ""});
  e.body = core::BodyType::k8BitMime;
  e.client_ip = "192.0.2.7";
  e.client_helo = "client.example.org";
  e.listener = "submission";
  e.tls = true;
  e.received_at_ms = 1'700'000'000'000;
  return e;
}

// Collects the statuses of `n` callbacks and waits for all of them.
class Waiter {
 public:
  explicit Waiter(size_t n) : results_(n) {}

  queue::Writer::Done done(size_t i) {
    return [this, i](core::Status s) {
      std::lock_guard lock(mu_);
      results_[i] = std::move(s);
      ++count_;
      cv_.notify_all();
    };
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return count_;
  }
  // True when every callback came within the time limit.
  bool wait() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return count_ == results_.size(); });
  }
  const core::Status& result(size_t i) const { return results_[i]; }
  size_t size() const { return results_.size(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<core::Status> results_;
  size_t count_ = 0;
};

}  // namespace queue_test
