#pragma once
// Dates for the header fields Porter writes (Date:, and the DSN's Arrival-Date,
// Last-Attempt-Date and Will-Retry-Until, which RFC 3464 §2.1.1 defines as RFC 5322 dates).
//
// Pure and locale-free: the calendar is computed by hand, so neither setlocale() nor the time
// zone database changes the output, and any thread may call it.
// Limits: always UTC ("+0000"); no parsing.

#include <cstdint>
#include <string>

namespace core {

// RFC 5322 §3.3 date-time: "Tue, 14 Nov 2023 22:13:20 +0000". Milliseconds are dropped
// (rounded towards the past, also before 1970).
std::string rfc5322_date(int64_t unix_ms);

}  // namespace core
