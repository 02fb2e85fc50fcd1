#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "core/metrics.h"
#include "core/queue_id.h"
#include "queue/writer.h"
#include "tests/queue/queue_test_util.h"

namespace {

// RocksDB tells its listeners from a background thread, a moment after Flush() returns.
bool eventually(const std::function<bool()>& cond) {
  for (int i = 0; i < 500; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

double stalled() {
  return core::metrics_registry().gauge("porter_rocksdb_write_stalled", "").with({}).value();
}

uint64_t counter(const char* name, std::initializer_list<std::string_view> labels,
                 std::vector<std::string> label_names) {
  return core::metrics_registry().counter(name, "", std::move(label_names)).with(labels).value();
}

TEST_CASE("unit: writer counts synced batches and their sizes", "[queue][unit]") {
  queue_test::TempDir dir;
  auto db = queue_test::open_db(dir.path());
  auto& sizes =
      core::metrics_registry()
          .histogram("porter_queue_commit_batch_size", "", core::exponential_buckets(1, 2, 11))
          .with({});
  queue::Writer writer(*db);
  const uint64_t ok_before = counter("porter_queue_commits_total", {"ok"}, {"result"});
  const uint64_t batches_before = sizes.count();
  const double requests_before = sizes.sum();
  core::QueueIdGenerator ids;
  constexpr size_t kMessages = 5;
  queue_test::Waiter waiter(kMessages);
  // Before start(): all five wait, so they go in one batch.
  for (size_t i = 0; i < kMessages; ++i)
    writer.enqueue({ids.next(1000), queue_test::make_envelope(1), {"body"}, 1000}, waiter.done(i));
  writer.start();
  REQUIRE(waiter.wait());
  writer.stop();
  CHECK(counter("porter_queue_commits_total", {"ok"}, {"result"}) == ok_before + 1);
  CHECK(sizes.count() == batches_before + 1);
  CHECK(sizes.sum() - requests_before == kMessages);
  const std::string text = core::render_prometheus(core::metrics_registry());
  CHECK(text.find("porter_queue_commit_duration_seconds_count ") != std::string::npos);
}

TEST_CASE("unit: a RocksDB write stall is counted and timed", "[queue][unit]") {
  queue_test::TempDir dir;
  auto db = queue_test::open_db(dir.path());
  auto* cf = db->cf(queue::Family::kEnvelopes);
  const uint64_t delayed_before =
      counter("porter_rocksdb_write_stalls_total", {"delayed"}, {"condition"});
  const uint64_t micros_before = counter("porter_rocksdb_write_stall_microseconds_total", {}, {});
  // Three level-0 files made with compaction off (RocksDB ignores the level-0 triggers then);
  // turning it on while background work is paused finds them over the slowdown trigger, and
  // raising the trigger 50 ms later ends the stall. Both notices come from this thread.
  REQUIRE(db->raw()
              ->SetOptions(cf, {{"disable_auto_compactions", "true"},
                                {"level0_file_num_compaction_trigger", "2"},
                                {"level0_slowdown_writes_trigger", "2"},
                                {"level0_stop_writes_trigger", "100"}})
              .ok());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(db->raw()->Put(rocksdb::WriteOptions(), cf, "k" + std::to_string(i), "v").ok());
    REQUIRE(db->raw()->Flush(rocksdb::FlushOptions(), cf).ok());
  }
  CHECK(stalled() == 0);
  REQUIRE(db->raw()->PauseBackgroundWork().ok());
  REQUIRE(db->raw()->SetOptions(cf, {{"disable_auto_compactions", "false"}}).ok());
  CHECK(counter("porter_rocksdb_write_stalls_total", {"delayed"}, {"condition"}) ==
        delayed_before + 1);
  CHECK(stalled() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(db->raw()
              ->SetOptions(cf, {{"level0_file_num_compaction_trigger", "50"},
                                {"level0_slowdown_writes_trigger", "50"}})
              .ok());
  REQUIRE(db->raw()->ContinueBackgroundWork().ok());
  CHECK(stalled() == 0);
  CHECK(counter("porter_rocksdb_write_stall_microseconds_total", {}, {}) >= micros_before + 50000);
  CHECK(core::render_prometheus(core::metrics_registry())
            .find("porter_rocksdb_write_stalls_total{condition=\"delayed\"} ") !=
        std::string::npos);
}

}  // namespace
