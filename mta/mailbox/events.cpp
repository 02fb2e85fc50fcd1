#include "mta/mailbox/events.h"

#include <algorithm>
#include <utility>

#include "core/address.h"

namespace mta::mailbox {

void Changes::add(std::string_view user, std::string_view mailbox) {
  Touched t{std::string(user), std::string(mailbox)};
  if (std::find(touched_.begin(), touched_.end(), t) == touched_.end())
    touched_.push_back(std::move(t));
}

Events::Watch::Watch(Watch&& other) noexcept
    : events_(std::exchange(other.events_, nullptr)),
      user_(std::move(other.user_)),
      id_(other.id_) {}

Events::Watch& Events::Watch::operator=(Watch&& other) noexcept {
  if (this != &other) {
    reset();
    events_ = std::exchange(other.events_, nullptr);
    user_ = std::move(other.user_);
    id_ = other.id_;
  }
  return *this;
}

void Events::Watch::reset() {
  if (events_ != nullptr) std::exchange(events_, nullptr)->unwatch(user_, id_);
}

Events::Watch Events::watch(std::string_view user, Callback callback) {
  std::string id_user = core::to_lower_ascii(user);
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  watchers_[id_user].emplace(id, std::move(callback));
  return Watch(this, std::move(id_user), id);
}

void Events::unwatch(const std::string& user, uint64_t id) {
  std::lock_guard lock(mu_);
  const auto it = watchers_.find(user);
  if (it == watchers_.end()) return;
  it->second.erase(id);
  if (it->second.empty()) watchers_.erase(it);
}

void Events::notify(const Changes& changes) {
  std::lock_guard lock(mu_);
  for (const Changes::Touched& t : changes.touched()) {
    const auto it = watchers_.find(t.user);
    if (it == watchers_.end()) continue;
    for (const auto& [id, callback] : it->second) callback(t.mailbox);
  }
}

size_t Events::watchers(std::string_view user) const {
  std::lock_guard lock(mu_);
  const auto it = watchers_.find(core::to_lower_ascii(user));
  return it == watchers_.end() ? 0 : it->second.size();
}

}  // namespace mta::mailbox
