#pragma once
// The `porter` verbs that administer a running daemon, as clients of its admin API
// (mta/admin_api.h): each is one HTTP request over the admin socket that the config names,
// printed for people, or as the API's JSON with --json.
//
//   porter queue list [--sender S] [--recipient R] [--domain D] [--state active|deferred|held]
//                     [--older-than AGE] [--newer-than AGE] [--error TEXT] [--limit N]
//   porter queue summary
//   porter queue show|cat|trace ID
//   porter queue flush [ID] [--domain D]
//   porter queue hold|release|delete|retry-now ID...
//   porter queue bounce ID... [--reason TEXT]
//   porter suppression list [--scope S]
//   porter suppression add ADDRESS [--scope S] [--reason TEXT] [--expire-days N]
//   porter suppression remove ADDRESS [--scope S]
//   porter route explain --from A --to B
//   porter reload
//   porter status
//
// Exit status: 0 done, 1 refused or failed (the API's error is printed), 2 bad usage.

#include <string>
#include <vector>

#include "mta/config.h"

namespace mta {

// `args` from the verb on ("queue", "list", "--domain", "x"), without "--config FILE".
int admin_cli(const Config& config, const std::vector<std::string>& args);

}  // namespace mta
