#include "policy/users.h"

#include <crypt.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace policy {
namespace {

// struct crypt_data is ~32 KiB: too big for a worker thread's stack, so it lives on the
// heap, and it is wiped on the way out because it holds the password and intermediate
// state.
class CryptScratch {
 public:
  CryptScratch() : data_(std::make_unique<crypt_data>()) {}
  ~CryptScratch() { explicit_bzero(data_.get(), sizeof(crypt_data)); }
  CryptScratch(const CryptScratch&) = delete;
  CryptScratch& operator=(const CryptScratch&) = delete;

  // crypt_rn(3); nullptr when libxcrypt refuses the setting. Failure strings ("*0") are
  // mapped to nullptr too, so that a caller cannot mistake one for a hash.
  const char* crypt(std::string_view password, const char* setting) {
    std::string phrase(password);
    const char* out = crypt_rn(phrase.c_str(), setting, data_.get(), sizeof(crypt_data));
    explicit_bzero(phrase.data(), phrase.size());
    if (out == nullptr || out[0] == '*') return nullptr;
    return out;
  }

 private:
  std::unique_ptr<crypt_data> data_;
};

// Methods libxcrypt calls legacy (DES, MD5-crypt, ...) are refused: DES ignores all but 8
// characters of a password and both fall to a GPU in hours.
bool is_usable_hash(const std::string& hash) {
  return !hash.empty() && crypt_checksalt(hash.c_str()) == CRYPT_SALT_OK;
}

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

core::Status validate_address_entry(std::string_view entry) {
  if (!entry.empty() && entry.front() == '@') {
    if (!core::is_valid_domain(entry.substr(1), /*allow_utf8=*/true))
      return core::Status::invalid("malformed domain entry \"" + std::string(entry) + "\"");
    return core::Status::ok();
  }
  auto parsed = core::parse_mailbox(entry, /*allow_utf8=*/true);
  if (!parsed)
    return core::Status::invalid("malformed address \"" + std::string(entry) +
                                 "\": " + parsed.status().message());
  return core::Status::ok();
}

}  // namespace

bool constant_time_equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  return diff == 0;
}

core::Status validate_user(const User& user) {
  if (user.name.empty()) return core::Status::invalid("empty login");
  if (!core::is_valid_utf8(user.name))
    return core::Status::invalid("login \"" + user.name + "\" is not UTF-8");
  for (char ch : user.name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == ':')
      return core::Status::invalid("login \"" + user.name +
                                   "\" holds a space, a control character or ':'");
  }
  if (!is_usable_hash(user.password_hash))
    return core::Status::invalid("password hash of " + user.name +
                                 " is not a crypt(3) hash of a supported method (yescrypt, "
                                 "SHA-512-crypt, bcrypt; make one with `porter passwd`)");
  for (const auto& entry : user.addresses) {
    auto s = validate_address_entry(entry);
    if (!s) return core::Status::invalid("user " + user.name + ": " + s.message());
  }
  return core::Status::ok();
}

core::Result<UserDb> UserDb::create(std::vector<User> users) {
  UserDb db;
  for (size_t i = 0; i < users.size(); ++i) {
    auto s = validate_user(users[i]);
    if (!s) return s;
    if (!db.by_login_.emplace(core::to_lower_ascii(users[i].name), i).second)
      return core::Status::invalid("login " + users[i].name + " is listed twice");
  }
  db.users_ = std::move(users);
  return db;
}

const User* UserDb::find(std::string_view login) const {
  const auto it = by_login_.find(core::to_lower_ascii(login));
  return it == by_login_.end() ? nullptr : &users_[it->second];
}

bool UserDb::verify_password(std::string_view password, const std::string& hash) {
  if (!is_usable_hash(hash) || password.find('\0') != std::string_view::npos) return false;
  CryptScratch scratch;
  const char* out = scratch.crypt(password, hash.c_str());
  return out != nullptr && constant_time_equals(out, hash);
}

core::Result<std::string> UserDb::hash_password(std::string_view password) {
  if (password.empty()) return core::Status::invalid("empty password");
  if (password.find('\0') != std::string_view::npos)
    return core::Status::invalid("password holds a NUL byte");
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // count 0: libxcrypt's default cost; rbytes nullptr: salt from the OS random source.
  if (crypt_gensalt_rn("$y$", 0, nullptr, 0, setting, sizeof setting) == nullptr)
    return core::Status::io(std::string("crypt_gensalt: ") + std::strerror(errno));
  CryptScratch scratch;
  const char* out = scratch.crypt(password, setting);
  if (out == nullptr) return core::Status::io(std::string("crypt: ") + std::strerror(errno));
  return std::string(out);
}

bool may_send_as(const User& user, const core::Address& address) {
  if (address.empty()) return false;
  for (const auto& entry : user.addresses) {
    const size_t at = entry.rfind('@');
    if (at == std::string::npos) continue;
    const std::string_view local = std::string_view(entry).substr(0, at);
    const std::string_view domain = std::string_view(entry).substr(at + 1);
    if (!core::iequals(domain, address.domain)) continue;
    if (local.empty() || core::iequals(local, address.local)) return true;
  }
  return false;
}

core::Result<std::vector<User>> load_users_file(std::string_view text) {
  std::vector<User> users;
  std::unordered_map<std::string, size_t> first_line;  // lower-cased login -> line
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t eol = text.find('\n');
    const std::string_view line = trim(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty() || line.front() == '#') continue;

    const auto error = [line_no](const std::string& what) {
      return core::Status::invalid("line " + std::to_string(line_no) + ": " + what);
    };
    const size_t c1 = line.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return error("expected login:hash:addresses");
    User user;
    user.name = std::string(trim(line.substr(0, c1)));
    user.password_hash = std::string(trim(line.substr(c1 + 1, c2 - c1 - 1)));
    std::string_view rest = line.substr(c2 + 1);
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view entry = trim(rest.substr(0, comma));
      if (entry.empty()) return error("empty entry in the address list");
      user.addresses.emplace_back(entry);
      rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
    }
    auto valid = validate_user(user);
    if (!valid) return error(valid.message());
    const auto [it, fresh] = first_line.emplace(core::to_lower_ascii(user.name), line_no);
    if (!fresh)
      return error("login " + user.name + " already given on line " + std::to_string(it->second));
    users.push_back(std::move(user));
  }
  return users;
}

}  // namespace policy
