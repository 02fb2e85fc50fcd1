#include "policy/local_recipients.h"

#include <algorithm>

namespace policy {
namespace {

std::string key_of(std::string_view local, std::string_view domain) {
  return core::to_lower_ascii(local) + "@" + core::to_lower_ascii(domain);
}

void add_receiver(std::vector<std::string>& logins, const std::string& login) {
  const bool known = std::any_of(logins.begin(), logins.end(),
                                 [&](const std::string& l) { return core::iequals(l, login); });
  if (!known) logins.push_back(login);
}

}  // namespace

core::Result<LocalRecipients> LocalRecipients::create(const std::vector<std::string>& local_domains,
                                                      const UserDb& users,
                                                      const std::vector<LocalAlias>& aliases,
                                                      std::string_view delimiter,
                                                      std::string_view catch_all) {
  LocalRecipients r;
  if (delimiter.size() > 1 || delimiter == "@")
    return core::Status::invalid("recipient delimiter must be one character other than '@'");
  r.delimiter_ = delimiter;
  for (const auto& d : local_domains) r.domains_.push_back(core::to_lower_ascii(d));

  for (const User& u : users.all()) {
    if (u.quota_bytes > 0) r.quotas_[core::to_lower_ascii(u.name)] = u.quota_bytes;
    for (const auto& entry : u.addresses) {
      auto parsed = core::parse_mailbox(entry, /*allow_utf8=*/true);
      if (!parsed || !r.is_local_domain(parsed->domain)) continue;
      add_receiver(r.receivers_[key_of(parsed->local, parsed->domain)], u.name);
    }
  }
  for (const LocalAlias& a : aliases) {
    auto parsed = core::parse_mailbox(a.address, /*allow_utf8=*/true);
    if (!parsed) return core::Status::invalid("alias \"" + a.address + "\" is not an address");
    if (!r.is_local_domain(parsed->domain))
      return core::Status::invalid("alias " + a.address + " is not in a local domain");
    if (a.logins.empty()) return core::Status::invalid("alias " + a.address + " has no users");
    auto& receivers = r.receivers_[key_of(parsed->local, parsed->domain)];
    for (const auto& login : a.logins) {
      const User* u = users.find(login);
      if (!u) return core::Status::invalid("alias " + a.address + ": no user " + login);
      add_receiver(receivers, u->name);
    }
  }
  if (!catch_all.empty()) {
    const User* u = users.find(catch_all);
    if (!u) return core::Status::invalid("catch-all: no user " + std::string(catch_all));
    r.catch_all_ = u->name;
  }
  return r;
}

bool LocalRecipients::is_local_domain(std::string_view domain) const {
  return std::any_of(domains_.begin(), domains_.end(),
                     [&](const std::string& d) { return core::iequals(d, domain); });
}

const std::vector<std::string>* LocalRecipients::lookup(std::string_view local,
                                                        std::string_view domain) const {
  const auto it = receivers_.find(key_of(local, domain));
  return it == receivers_.end() ? nullptr : &it->second;
}

std::vector<std::string> LocalRecipients::resolve(const core::Address& address) const {
  if (address.empty() || !is_local_domain(address.domain)) return {};
  if (const auto* found = lookup(address.local, address.domain)) return *found;
  if (!delimiter_.empty()) {
    // RFC 5233 subaddressing: the detail after the first delimiter selects nothing here.
    const size_t cut = address.local.find(delimiter_[0]);
    if (cut != std::string::npos && cut > 0) {
      if (const auto* found =
              lookup(std::string_view(address.local).substr(0, cut), address.domain))
        return *found;
    }
  }
  if (!catch_all_.empty()) return {catch_all_};
  return {};
}

uint64_t LocalRecipients::quota_bytes(std::string_view login) const {
  const auto it = quotas_.find(core::to_lower_ascii(login));
  return it == quotas_.end() ? 0 : it->second;
}

}  // namespace policy
