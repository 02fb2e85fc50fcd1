#include "policy/apps.h"

#include <openssl/evp.h>

#include <algorithm>

namespace policy {
namespace {

core::Status invalid_app(const App& app, const std::string& what) {
  return core::Status::invalid("app " + app.name + ": " + what);
}

}  // namespace

const char* route_name(App::Route r) {
  return r == App::Route::kSmarthost ? "smarthost" : "direct";
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest fails only when out of memory; an empty result then matches no stored hash.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

bool is_sha256_hex(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

core::Status validate_app_name(std::string_view name) {
  if (name.empty()) return core::Status::invalid("empty name");
  if (!core::is_valid_utf8(name))
    return core::Status::invalid("name \"" + std::string(name) + "\" is not UTF-8");
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == ':')
      return core::Status::invalid("name \"" + std::string(name) +
                                   "\" holds a space, a control character or ':'");
  }
  return core::Status::ok();
}

core::Status validate_sender(std::string_view entry) {
  const bool ok = !entry.empty() && entry.front() == '@'
                      ? core::is_valid_domain(entry.substr(1), /*allow_utf8=*/true)
                      : core::parse_mailbox(entry, /*allow_utf8=*/true).is_ok();
  if (ok) return core::Status::ok();
  return core::Status::invalid("sender \"" + std::string(entry) +
                               "\" is neither \"local@domain\" nor \"@domain\"");
}

core::Status validate_tag(std::string_view tag) {
  const bool ok =
      !tag.empty() && tag.size() <= 64 && std::all_of(tag.begin(), tag.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == ':' || c == '-';
      });
  if (ok) return core::Status::ok();
  return core::Status::invalid("tag \"" + std::string(tag) +
                               "\" must be 1-64 letters, digits, '.', '_', ':' or '-'");
}

core::Status validate_app(const App& app) {
  if (auto s = validate_app_name(app.name); !s) return core::Status::invalid("app: " + s.message());
  if (app.senders.empty()) return invalid_app(app, "no senders");
  for (const auto& entry : app.senders)
    if (auto s = validate_sender(entry); !s) return invalid_app(app, s.message());
  for (const auto& tag : app.tags)
    if (auto s = validate_tag(tag); !s) return invalid_app(app, s.message());
  if (app.password_hash.empty() && app.api_key_sha256.empty())
    return invalid_app(app, "neither a password nor an api_key_sha256: it could never log in");
  if (!app.api_key_sha256.empty() && !is_sha256_hex(app.api_key_sha256))
    return invalid_app(app, "api_key_sha256 must be 64 hex digits (a SHA-256)");
  // The hash rules are the users' (validate_user knows the methods libxcrypt rates strong).
  if (!app.password_hash.empty())
    if (auto s = validate_user(AppDb::as_user(app)); !s) return invalid_app(app, s.message());
  return core::Status::ok();
}

core::Result<AppDb> AppDb::create(std::vector<App> apps) {
  AppDb db;
  for (size_t i = 0; i < apps.size(); ++i) {
    App& app = apps[i];
    app.api_key_sha256 = core::to_lower_ascii(app.api_key_sha256);
    if (auto s = validate_app(app); !s) return s;
    if (!db.by_login_.emplace(core::to_lower_ascii(app.name), i).second)
      return core::Status::invalid("app " + app.name + " is listed twice");
    if (!app.api_key_sha256.empty() && !db.by_api_key_.emplace(app.api_key_sha256, i).second)
      return core::Status::invalid("app " + app.name + " has the api_key_sha256 of another app");
  }
  db.apps_ = std::move(apps);
  return db;
}

const App* AppDb::find_by_login(std::string_view name) const {
  const auto it = by_login_.find(core::to_lower_ascii(name));
  return it == by_login_.end() ? nullptr : &apps_[it->second];
}

const App* AppDb::find_by_api_key(std::string_view key) const {
  if (key.empty()) return nullptr;
  const std::string digest = sha256_hex(key);
  const auto it = by_api_key_.find(digest);
  if (it == by_api_key_.end()) return nullptr;
  const App& app = apps_[it->second];
  return constant_time_equals(digest, app.api_key_sha256) ? &app : nullptr;
}

bool AppDb::may_send_as(const App& app, const core::Address& address) {
  // One ownership rule for users and apps: the app's senders are a user's addresses.
  User view;
  view.addresses = app.senders;
  return policy::may_send_as(view, address);
}

User AppDb::as_user(const App& app) { return User{app.name, app.password_hash, app.senders, 0}; }

AppQuota::Window::Window(int64_t slot_length_ms, int slot_count)
    : slot_ms(slot_length_ms), slots(slot_count), ring(static_cast<size_t>(slot_count) + 1) {}

uint64_t AppQuota::Window::sum(int64_t now_ms) const {
  const int64_t current = now_ms / slot_ms;
  uint64_t total = 0;
  for (const Slot& s : ring)
    if (s.index >= current - slots && s.index <= current) total += s.count;
  return total;
}

void AppQuota::Window::add(int64_t now_ms) {
  const int64_t current = now_ms / slot_ms;
  Slot& s = ring[static_cast<size_t>(current % static_cast<int64_t>(ring.size()))];
  if (s.index != current) s = Slot{current, 0};
  ++s.count;
}

int64_t AppQuota::Window::retry_after_ms(int64_t now_ms, uint64_t limit) const {
  const int64_t current = now_ms / slot_ms;
  std::vector<Slot> live;
  uint64_t total = 0;
  for (const Slot& s : ring)
    if (s.index >= current - slots && s.index <= current && s.count > 0) {
      live.push_back(s);
      total += s.count;
    }
  std::sort(live.begin(), live.end(),
            [](const Slot& a, const Slot& b) { return a.index < b.index; });
  // The oldest slots leave first; one more message fits once the total is below the limit.
  for (const Slot& s : live) {
    total -= s.count;
    if (total < limit) return std::max<int64_t>(1, (s.index + slots + 1) * slot_ms - now_ms);
  }
  return slot_ms;  // unreachable while total >= limit > 0
}

AppQuota::Decision AppQuota::take(const App& app, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Counts& c = counts_[core::to_lower_ascii(app.name)];
  if (app.messages_per_minute > 0 && c.minute.sum(now_ms) >= app.messages_per_minute)
    return {false, Period::kMinute, app.messages_per_minute,
            c.minute.retry_after_ms(now_ms, app.messages_per_minute)};
  if (app.messages_per_day > 0 && c.day.sum(now_ms) >= app.messages_per_day)
    return {false, Period::kDay, app.messages_per_day,
            c.day.retry_after_ms(now_ms, app.messages_per_day)};
  c.minute.add(now_ms);
  c.day.add(now_ms);
  return {};
}

AppQuota::Usage AppQuota::usage(std::string_view app_name, int64_t now_ms) const {
  std::lock_guard lock(mu_);
  const auto it = counts_.find(core::to_lower_ascii(app_name));
  if (it == counts_.end()) return {};
  return {it->second.minute.sum(now_ms), it->second.day.sum(now_ms)};
}

}  // namespace policy
