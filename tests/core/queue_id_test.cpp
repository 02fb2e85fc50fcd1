#include "core/queue_id.h"

#include <catch2/catch.hpp>
#include <set>
#include <thread>
#include <vector>

TEST_CASE("queue_id: unique, valid and sorted by time", "[core][unit]") {
  core::QueueIdGenerator gen;
  std::string prev;
  for (int64_t t = 1'700'000'000'000; t < 1'700'000'000'000 + 50; ++t) {
    auto id = gen.next(t);
    CHECK(core::is_valid_queue_id(id));
    CHECK(core::queue_id_time_ms(id) == t);
    CHECK(id > prev);
    prev = id;
  }
}

TEST_CASE("queue_id: no duplicates across threads in one millisecond", "[core][unit]") {
  core::QueueIdGenerator gen;
  std::vector<std::vector<std::string>> out(4);
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&, i] {
      for (int k = 0; k < 5000; ++k) out[i].push_back(gen.next(1'700'000'000'000));
    });
  for (auto& t : ts) t.join();
  std::set<std::string> all;
  for (auto& v : out) all.insert(v.begin(), v.end());
  CHECK(all.size() == 20000);
}

TEST_CASE("queue_id: a clock step back keeps order", "[core][unit]") {
  core::QueueIdGenerator gen;
  auto a = gen.next(2'000'000'000'000);
  auto b = gen.next(1'999'999'999'000);
  CHECK(b > a);
  CHECK_FALSE(core::is_valid_queue_id("0123456789ABCDEI"));  // I is not in the alphabet
  CHECK_FALSE(core::is_valid_queue_id("short"));
}
