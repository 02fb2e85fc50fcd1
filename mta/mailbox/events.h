#pragma once
// Change notification across threads: "mailbox X of user U changed", told after the write
// that changed it is committed, so that IMAP sessions on any loop (IDLE, NOOP, the untagged
// EXISTS / FETCH / EXPUNGE of RFC 9051 §7.4) learn of deliveries and of other sessions'
// writes without polling.
//
// Flow: every Store::stage_*() that changes a mailbox records it in the caller's Changes;
// the caller passes that to Store::notify_committed() in its queue::Writer request's `done`
// (the writer thread), which tells every Watch of each user touched, once per mailbox.
// What changed is not said: a session reads the mailbox again (Store::list_index()) and
// compares it with what it has shown.
//
// Threading: watch() and a Watch's destruction on any thread; notify() on any thread
// (normally the writer's). Callbacks run on the notifying thread under the registry's lock,
// so they must not block (post to your own loop) and must not create or destroy a Watch.
// Once a Watch is destroyed (or reset) its callback is not running and never runs again.
// Lifetime: every Watch must be gone before its Events.
//
// Limits: a notification is a hint, not a log: a session that reads the mailbox after
// several commits sees them all at once; a mailbox renamed away is told under both names.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mta::mailbox {

// The mailboxes that a caller's stagings changed.
class Changes {
 public:
  struct Touched {
    std::string user;  // lower-cased login
    std::string mailbox;
    bool operator==(const Touched&) const = default;
  };

  // Once per pair, in the order first added.
  void add(std::string_view user, std::string_view mailbox);
  bool empty() const { return touched_.empty(); }
  const std::vector<Touched>& touched() const { return touched_; }

 private:
  std::vector<Touched> touched_;
};

class Events {
 public:
  using Callback = std::function<void(std::string_view mailbox)>;

  // A registration; destroying it unregisters.
  class Watch {
   public:
    Watch() = default;
    Watch(Watch&& other) noexcept;
    Watch& operator=(Watch&& other) noexcept;
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    ~Watch() { reset(); }
    void reset();

   private:
    friend class Events;
    Watch(Events* events, std::string user, uint64_t id)
        : events_(events), user_(std::move(user)), id_(id) {}

    Events* events_ = nullptr;
    std::string user_;
    uint64_t id_ = 0;
  };

  Events() = default;
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;

  // Calls `callback` with the mailbox name after each committed change to a mailbox of
  // `user` (a login, in any case).
  [[nodiscard]] Watch watch(std::string_view user, Callback callback);

  void notify(const Changes& changes);

  // Watches registered for `user` (for tests and diagnostics).
  size_t watchers(std::string_view user) const;

 private:
  void unwatch(const std::string& user, uint64_t id);

  mutable std::mutex mu_;
  uint64_t next_id_ = 1;  // guarded by mu_
  // By lower-cased login, then by watch id; guarded by mu_.
  std::unordered_map<std::string, std::map<uint64_t, Callback>> watchers_;
};

}  // namespace mta::mailbox
