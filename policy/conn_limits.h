#pragma once
// Connection limits: at most max_total connections at once, and at most max_per_client
// from one client.
//
// acquire() is called when a connection is accepted; it hands back a ConnectionToken that
// holds the slot until the token is destroyed (or reset()), so a connection closed on any
// path releases its slot. Tokens are movable, not copyable. One ConnectionLimiter is shared
// by all event loops: its methods take a mutex briefly, and a token may be destroyed on any
// thread. The limiter must outlive every token it issued.
//
// Clients are named by a string key; use client_key() (policy/client_key.h) so that an
// IPv6 client is counted by its /64.
//
// What the glue replies when refused, instead of the greeting, then closes
// (RFC 5321 §3.1 allows 421 as the opening reply): refusal_reply().
//
// Limits: the count is of connections, not of sessions' cost; a limit of 0 means none.

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/reply.h"

namespace policy {

struct ConnectionLimitsConfig {
  size_t max_total = 1000;
  size_t max_per_client = 20;
};

class ConnectionLimiter;

class ConnectionToken {
 public:
  ConnectionToken(ConnectionToken&& other) noexcept;
  ConnectionToken& operator=(ConnectionToken&& other) noexcept;
  ConnectionToken(const ConnectionToken&) = delete;
  ConnectionToken& operator=(const ConnectionToken&) = delete;
  ~ConnectionToken() { reset(); }

  // Releases the slot now; afterwards the token holds nothing.
  void reset();
  bool held() const { return limiter_ != nullptr; }
  const std::string& client() const { return client_; }

 private:
  friend class ConnectionLimiter;
  ConnectionToken(ConnectionLimiter* limiter, std::string client)
      : limiter_(limiter), client_(std::move(client)) {}

  ConnectionLimiter* limiter_;
  std::string client_;
};

enum class ConnectionRefusal { kNone, kTotal, kPerClient };

// 421 4.3.2 for the server-wide cap (the server is busy), 421 4.7.0 for the per-client cap
// (this client uses too much).
core::Reply refusal_reply(ConnectionRefusal refusal);

class ConnectionLimiter {
 public:
  struct Acquired {
    std::optional<ConnectionToken> token;  // set when a slot was free
    ConnectionRefusal refusal = ConnectionRefusal::kNone;
  };

  explicit ConnectionLimiter(ConnectionLimitsConfig config = {}) : config_(config) {}
  ConnectionLimiter(const ConnectionLimiter&) = delete;
  ConnectionLimiter& operator=(const ConnectionLimiter&) = delete;

  Acquired acquire(const std::string& client);

  size_t total() const;
  size_t count(const std::string& client) const;

 private:
  friend class ConnectionToken;
  void release(const std::string& client);

  const ConnectionLimitsConfig config_;
  mutable std::mutex mu_;
  size_t total_ = 0;
  std::unordered_map<std::string, size_t> per_client_;  // only clients with a connection
};

}  // namespace policy
