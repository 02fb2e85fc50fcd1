#pragma once
// The queue as JSON, for the admin API (mta/admin_api.h) and for the CLI when the daemon is
// not running (it then reads a read-only instance of the same queue): the same words and
// fields either way.
//
// Threading: any thread (reads through queue/admin.h and queue/store.h).
// Errors: kInvalid naming the parameter, kNotFound for an unknown queue ID, RocksDB's others.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "queue/db.h"

namespace mta {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// A page size parameter ("limit="): 1 to 100,000; kInvalid naming "limit" otherwise.
core::Result<size_t> parse_page_limit(std::string_view value);

// GET /v1/queue: sender, recipient, domain, state, min_age, max_age, error, limit, after.
core::Result<nlohmann::json> queue_list_json(const queue::Db& db, const QueryParams& params,
                                             int64_t now_ms);
// GET /v1/queue/summary.
core::Result<nlohmann::json> queue_summary_json(const queue::Db& db, int64_t now_ms);
// GET /v1/queue/{id}: the record, its envelope and its header section.
core::Result<nlohmann::json> queue_show_json(const queue::Db& db, const std::string& id,
                                             int64_t now_ms);

}  // namespace mta
