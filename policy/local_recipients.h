#pragma once
// Who receives mail sent to an address in one of our own domains (issue 4, "Local delivery
// and the store"): users, aliases, plus-addressing and an optional catch-all.
//
// A user receives mail at every full "local@domain" entry of its addresses whose domain is
// local ("@domain" entries only let it send). An alias gives one address to several users.
// An address may be claimed by several users and aliases: all of them receive it. resolve()
// tries, in order:
//   1. the address itself;
//   2. with a recipient delimiter (default "+"): the part of the local part before the first
//      delimiter, so "alice+lists@example.com" reaches whoever receives "alice@example.com";
//   3. the catch-all user, for any other address in a local domain.
// Local parts compare ASCII-case-insensitively and domains case-insensitively (see
// policy::may_send_as for why); non-ASCII bytes compare exactly.
//
// Lifetime and threading: immutable after create(); any number of threads may call the
// const methods at once. It copies what it needs from the UserDb.
//
// Limits: no recursive aliases (an alias lists logins, not addresses); no per-domain
// catch-all; domains match exactly (a subdomain of a local domain is not local).

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/address.h"
#include "core/status.h"
#include "policy/users.h"

namespace policy {

struct LocalAlias {
  std::string address;              // "local@domain", in a local domain
  std::vector<std::string> logins;  // users of the UserDb
};

class LocalRecipients {
 public:
  LocalRecipients() = default;

  // Refuses (kInvalid, naming the culprit) an alias whose address is malformed or outside
  // the local domains, an alias or catch-all naming a login the UserDb does not know, and a
  // delimiter longer than one character or equal to '@'.
  static core::Result<LocalRecipients> create(const std::vector<std::string>& local_domains,
                                              const UserDb& users,
                                              const std::vector<LocalAlias>& aliases,
                                              std::string_view delimiter,
                                              std::string_view catch_all);

  bool is_local_domain(std::string_view domain) const;

  // The logins (as the UserDb spells them, each once, in a stable order) that receive mail
  // sent to `address`; empty when the domain is not local or nobody receives it.
  std::vector<std::string> resolve(const core::Address& address) const;

  // The mailbox quota of a login in bytes; 0: none (also for an unknown login).
  uint64_t quota_bytes(std::string_view login) const;

 private:
  const std::vector<std::string>* lookup(std::string_view local, std::string_view domain) const;

  std::vector<std::string> domains_;  // lower case
  // "local@domain" with both parts lower-cased (ASCII) -> logins
  std::unordered_map<std::string, std::vector<std::string>> receivers_;
  std::unordered_map<std::string, uint64_t> quotas_;  // lower-cased login -> bytes
  std::string delimiter_;
  std::string catch_all_;
};

}  // namespace policy
