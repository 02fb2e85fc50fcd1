#include "policy/conn_limits.h"

#include <utility>

namespace policy {

ConnectionToken::ConnectionToken(ConnectionToken&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), client_(std::move(other.client_)) {}

ConnectionToken& ConnectionToken::operator=(ConnectionToken&& other) noexcept {
  if (this != &other) {
    reset();
    limiter_ = std::exchange(other.limiter_, nullptr);
    client_ = std::move(other.client_);
  }
  return *this;
}

void ConnectionToken::reset() {
  if (limiter_ == nullptr) return;
  std::exchange(limiter_, nullptr)->release(client_);
}

core::Reply refusal_reply(ConnectionRefusal refusal) {
  switch (refusal) {
    case ConnectionRefusal::kNone:
      break;
    case ConnectionRefusal::kTotal:
      return {421, "4.3.2", "Too many connections; try again later"};
    case ConnectionRefusal::kPerClient:
      return {421, "4.7.0", "Too many connections from your address; try again later"};
  }
  return {421, "4.3.0", "Connection refused; try again later"};
}

ConnectionLimiter::Acquired ConnectionLimiter::acquire(const std::string& client) {
  std::lock_guard lock(mu_);
  if (config_.max_total != 0 && total_ >= config_.max_total)
    return {std::nullopt, ConnectionRefusal::kTotal};
  size_t& n = per_client_[client];
  if (config_.max_per_client != 0 && n >= config_.max_per_client)
    return {std::nullopt, ConnectionRefusal::kPerClient};
  ++n;
  ++total_;
  return {ConnectionToken(this, client), ConnectionRefusal::kNone};
}

void ConnectionLimiter::release(const std::string& client) {
  std::lock_guard lock(mu_);
  const auto it = per_client_.find(client);
  if (it == per_client_.end()) return;
  if (--it->second == 0) per_client_.erase(it);
  --total_;
}

size_t ConnectionLimiter::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

size_t ConnectionLimiter::count(const std::string& client) const {
  std::lock_guard lock(mu_);
  const auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace policy
