#pragma once
// Users who may authenticate, their crypt(3) password hashes, and the addresses they may
// send as.
//
// A User lists address entries of two forms: a full address "alice@example.com", or a
// whole domain "@example.com" meaning every address in that domain. UserDb is immutable
// after construction, so any number of threads may call find() at once; the User pointers
// it hands out live as long as the UserDb.
//
// Passwords are checked with libxcrypt: yescrypt "$y$", SHA-512-crypt "$6$", bcrypt "$2b$"
// (and other methods libxcrypt rates as strong); methods it rates legacy (DES, MD5-crypt)
// are refused. verify_password() is slow
// by design (yescrypt costs tens of milliseconds): callers run it on a worker thread, never
// on an event loop.
//
// Limits: no password policy (length, strength); no per-user lockout (see AuthThrottle,
// which works per client address); local parts are compared ASCII-case-insensitively (see
// may_send_as).

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/address.h"
#include "core/status.h"

namespace policy {

struct User {
  std::string name;  // the login, as given in AUTH
  std::string password_hash;
  std::vector<std::string> addresses;  // "alice@example.com" or "@example.com"
  uint64_t quota_bytes = 0;            // mailbox quota; 0: none
};

class UserDb {
 public:
  UserDb() = default;
  // Checks every user (validate_user) and refuses a login given twice (logins compare
  // case-insensitively). The error names the offending login.
  static core::Result<UserDb> create(std::vector<User> users);

  // The user whose login equals `login` ignoring ASCII case, or nullptr.
  const User* find(std::string_view login) const;
  size_t size() const { return users_.size(); }
  const std::vector<User>& all() const { return users_; }

  // True if `password` hashes to `hash`. A hash that is malformed, locked ("!...", "*..."),
  // empty or of a legacy method never verifies. The final comparison runs in constant time.
  static bool verify_password(std::string_view password, const std::string& hash);
  // A new yescrypt hash with a random salt (what `porter passwd` prints). Refuses an empty
  // password and one holding a NUL byte (crypt(3) would silently cut it there).
  static core::Result<std::string> hash_password(std::string_view password);

 private:
  std::vector<User> users_;
  std::unordered_map<std::string, size_t> by_login_;  // lower-cased login -> index
};

// Compares without an early exit, so the time taken does not reveal where two equally long
// strings first differ. Strings of different lengths are unequal at once: a crypt hash's
// length is fixed by its method, which is not secret.
bool constant_time_equals(std::string_view a, std::string_view b);

// A login must be non-empty UTF-8 without controls, spaces or ':'; the hash must use a
// strong method libxcrypt implements; each address entry must be "local@domain" or "@domain".
core::Status validate_user(const User& user);

// True if one of the user's entries covers `address`. Domains compare case-insensitively
// (DNS names are). Local parts also compare ASCII-case-insensitively: RFC 5321 lets a
// domain treat "Alice" and "alice" as different mailboxes, but in practice no mail system
// does, and users type their address in whatever case their client remembers. The null
// address is owned by no one (callers allow the null sender separately).
bool may_send_as(const User& user, const core::Address& address);

// A users file: one user per line, "login:hash:addr1,addr2" (the address list may be
// empty); blank lines and lines starting with '#' are ignored; white space around fields is
// trimmed. Errors name the line: "line 3: ...".
core::Result<std::vector<User>> load_users_file(std::string_view text);

}  // namespace policy
