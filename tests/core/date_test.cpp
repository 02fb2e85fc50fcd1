#include "core/date.h"

#include <catch2/catch.hpp>

TEST_CASE("date: RFC 5322 dates in UTC", "[mime][unit]") {
  const auto [ms, expected] = GENERATE(table<int64_t, std::string>({
      {0, "Thu, 1 Jan 1970 00:00:00 +0000"},
      {999, "Thu, 1 Jan 1970 00:00:00 +0000"},
      {-1, "Wed, 31 Dec 1969 23:59:59 +0000"},
      {1'700'000'000'000, "Tue, 14 Nov 2023 22:13:20 +0000"},
      {951'782'400'000, "Tue, 29 Feb 2000 00:00:00 +0000"},
      {4'107'542'399'000, "Sun, 28 Feb 2100 23:59:59 +0000"},
      {4'107'542'400'000, "Mon, 1 Mar 2100 00:00:00 +0000"},
      {253'402'300'799'000, "Fri, 31 Dec 9999 23:59:59 +0000"},
  }));
  CAPTURE(ms);
  CHECK(core::rfc5322_date(ms) == expected);
}
