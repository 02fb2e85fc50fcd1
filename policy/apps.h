#pragma once
// Applications: company software that sends transactional mail through Porter, each with its
// own credentials, the addresses it may send as, its message quotas and how its mail is
// signed and routed ([[app]] in the config).
//
// An App authenticates by SMTP AUTH (password, a crypt(3) hash: the runtime puts the app into
// the UserDb as a policy::User, see AppDb::as_user) or by an HTTP API key, stored only as its
// SHA-256 (hex): find_by_api_key() hashes the key it is given and compares the digests in
// constant time. The digest lookup itself is a hash-map probe: its timing can only reveal
// something about the SHA-256 of a guessed key, which does not help to find a key.
//
// senders lists the only envelope senders and From addresses the app may use, in the form
// of User::addresses: "a@b" or "@domain" (that domain exactly, not its subdomains).
//
// AppDb is immutable after create(): any number of threads may call its const methods; the
// App pointers it hands out live as long as the AppDb (a Runtime holds it; a reload makes a
// new one).
//
// AppQuota counts each app's messages (per minute and per day, sliding windows) in an object
// that outlives reloads, so a reload never resets a count; it takes each app's limits from
// the App passed to take(), so a reload that changes a limit applies it to the counts so far.
// Thread-safe (one mutex, held briefly).
//
// Limits: route is stored, not acted on here (delivery chooses the smarthost or MX); tags
// are stored for events; an app's counts are keyed by its lower-cased name, so renaming an
// app starts it from zero, and the counts of an app removed by a reload stay until restart
// (a few KiB each).

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/address.h"
#include "core/status.h"
#include "policy/users.h"

namespace policy {

struct App {
  // Where the app's mail goes: by MX, or through [delivery] smarthost.
  enum class Route { kDirect, kSmarthost };

  std::string name;                  // its login; unique among users and apps (ASCII case)
  std::string password_hash;         // crypt(3); empty: no SMTP AUTH
  std::string api_key_sha256;        // 64 lower-case hex digits; empty: no HTTP API key
  std::vector<std::string> senders;  // "a@b" or "@domain"; at least one
  uint32_t messages_per_minute = 0;  // 0: unlimited
  uint32_t messages_per_day = 0;     // 0: unlimited
  std::string dkim_selector;         // empty: every key of the From domain signs
  Route route = Route::kDirect;
  std::vector<std::string> tags;  // added to the app's events
};

const char* route_name(App::Route r);

// Lower-case hex SHA-256 of `data`: what api_key_sha256 holds for the key `data`.
std::string sha256_hex(std::string_view data);
// 64 hex digits, either case: the form of api_key_sha256.
bool is_sha256_hex(std::string_view s);

// A name is a login (non-empty UTF-8 without controls, spaces or ':'); a sender is "a@b" or
// "@domain"; a tag is 1-64 of [A-Za-z0-9._:-] (it goes into key=value log lines).
core::Status validate_app_name(std::string_view name);
core::Status validate_sender(std::string_view entry);
core::Status validate_tag(std::string_view tag);
// The whole app: the rules above, at least one sender, at least one credential, a password
// hash of a method libxcrypt rates strong, an api_key_sha256 of 64 hex digits.
core::Status validate_app(const App& app);

class AppDb {
 public:
  AppDb() = default;
  // Validates every app and refuses a name given twice (ASCII case-insensitive) and an API key
  // hash given twice; api_key_sha256 is lower-cased. Errors name the app.
  static core::Result<AppDb> create(std::vector<App> apps);

  const App* find_by_login(std::string_view name) const;
  // The app whose api_key_sha256 is the SHA-256 of `key`, or nullptr (also for an empty key).
  const App* find_by_api_key(std::string_view key) const;
  // True if one of the app's senders covers `address` (as policy::may_send_as for users:
  // domains and local parts ASCII-case-insensitive; the null address is nobody's).
  static bool may_send_as(const App& app, const core::Address& address);
  // The login an app with a password is in the UserDb: its name, hash and senders.
  static User as_user(const App& app);

  const std::vector<App>& all() const { return apps_; }
  size_t size() const { return apps_.size(); }

 private:
  std::vector<App> apps_;
  std::unordered_map<std::string, size_t> by_login_;    // lower-cased name -> index
  std::unordered_map<std::string, size_t> by_api_key_;  // api_key_sha256 -> index
};

class AppQuota {
 public:
  // The minute window is 60 one-second slots, the day window 288 five-minute slots (plus the
  // slot now is in): a message is forgotten between 60 and 61 seconds, or between 24 hours
  // and 24 hours 5 minutes, after it was counted; never earlier, so no sliding window of a
  // minute or a day ever holds more than the limit.
  static constexpr int64_t kMinuteSlotMs = 1000;
  static constexpr int kMinuteSlots = 60;
  static constexpr int64_t kDaySlotMs = 300'000;
  static constexpr int kDaySlots = 288;

  enum class Period { kMinute, kDay };
  struct Decision {
    bool allowed = true;
    Period period = Period::kMinute;  // when refused: the limit that was reached
    uint32_t limit = 0;               // when refused: that limit
    int64_t retry_after_ms = 0;       // when refused: until a message leaves that window
  };
  struct Usage {
    uint64_t minute = 0;  // messages counted in the last minute
    uint64_t day = 0;     // and in the last 24 hours
  };

  AppQuota() = default;
  AppQuota(const AppQuota&) = delete;
  AppQuota& operator=(const AppQuota&) = delete;

  // Counts one message of `app` if it fits under both of its limits; otherwise counts
  // nothing and says which limit refused (the minute's first). Messages are counted even
  // when the app has no limit, so that one set later by a reload sees the traffic so far.
  Decision take(const App& app, int64_t now_ms);
  Usage usage(std::string_view app_name, int64_t now_ms) const;

 private:
  struct Slot {
    int64_t index = -1;  // now_ms / slot_ms of the messages counted here
    uint64_t count = 0;
  };
  // A sliding window of `slots` slots plus the current one.
  struct Window {
    Window(int64_t slot_ms, int slots);
    uint64_t sum(int64_t now_ms) const;
    void add(int64_t now_ms);
    // How long until the window holds fewer than `limit` messages (it holds at least that).
    int64_t retry_after_ms(int64_t now_ms, uint64_t limit) const;

    int64_t slot_ms;
    int slots;
    std::vector<Slot> ring;
  };
  struct Counts {
    Window minute{kMinuteSlotMs, kMinuteSlots};
    Window day{kDaySlotMs, kDaySlots};
  };

  mutable std::mutex mu_;
  std::unordered_map<std::string, Counts> counts_;  // lower-cased app name -> counts
};

}  // namespace policy
