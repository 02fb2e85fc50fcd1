#include "queue/writer.h"

#include <chrono>
#include <exception>

#include "core/metrics.h"
#include "core/queue_id.h"
#include "queue/record.h"

namespace queue {
namespace {

// Room for the batch's own framing per chunk and per request, so that reserving once up
// front avoids regrowing (and so briefly copying) a batch full of message bodies.
constexpr size_t kOverheadPerChunk = 32;
constexpr size_t kOverheadPerRequest = 1024;

size_t estimate_bytes(const std::vector<std::string>& chunks) {
  size_t n = kOverheadPerRequest;
  for (const auto& c : chunks) n += c.size() + kOverheadPerChunk;
  return n;
}

// For a client waiting on its 250, a failed commit is a failure to try again later:
// contention stays kTemporary, anything else is the disk's fault (kIo).
core::Status commit_failure(const rocksdb::Status& rs, const std::string& context) {
  core::Status s = to_status(rs, context);
  if (s.kind() == core::Status::Kind::kTemporary) return s;
  return core::Status::io(s.message());
}

// The series mta/metrics.h lists for the group commit; registered with the first Writer.
struct CommitMetrics {
  core::Histogram& batch_size;
  core::Counter& ok;
  core::Counter& failed;
  core::Histogram& duration;
};

const CommitMetrics& commit_metrics() {
  static const CommitMetrics m = [] {
    auto& r = core::metrics_registry();
    auto& commits = r.counter("porter_queue_commits_total",
                              "Synced queue write batches, by result.", {"result"});
    return CommitMetrics{
        r.histogram("porter_queue_commit_batch_size", "Requests committed per synced batch.",
                    core::exponential_buckets(1, 2, 11))
            .with({}),
        commits.with({"ok"}),
        commits.with({"failed"}),
        r.histogram("porter_queue_commit_duration_seconds",
                    "Seconds to write and sync one queue batch.",
                    core::exponential_buckets(0.0005, 2, 12))
            .with({}),
    };
  }();
  return m;
}

}  // namespace

Writer::Writer(Db& db) : db_(db) { commit_metrics(); }

Writer::~Writer() { stop(); }

void Writer::start() {
  std::lock_guard lock(mu_);
  if (state_ != State::kIdle) return;
  state_ = State::kRunning;
  thread_ = std::thread([this] { run(); });
}

void Writer::stop() {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kStopped) return;
    // Requests made before a start() that never came are still owed a write.
    if (state_ == State::kIdle && !pending_.empty()) thread_ = std::thread([this] { run(); });
    state_ = State::kStopped;
    cv_.notify_all();
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

void Writer::enqueue(NewMessage msg, Done done) { add(Request{std::move(msg), std::move(done)}); }

void Writer::submit(Fill fill, Done done) { add(Request{std::move(fill), std::move(done)}); }

void Writer::add(Request r) {
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kStopped) {
      // The writer thread only waits when nothing is pending.
      if (pending_.empty()) cv_.notify_one();
      pending_.push_back(std::move(r));
      return;
    }
  }
  r.done(core::Status::temporary("queue: the writer has stopped"));
}

Writer::Stats Writer::stats() const {
  return Stats{batches_.load(), requests_.load(), largest_batch_.load(), failed_batches_.load()};
}

void Writer::run() {
  std::vector<Request> work;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !pending_.empty() || state_ == State::kStopped; });
      if (pending_.empty()) return;  // stopped and drained
      work.swap(pending_);
    }
    write(work);
    work.clear();
  }
}

void Writer::write(std::vector<Request>& requests) {
  size_t reserve = 0;
  for (const auto& r : requests)
    if (const auto* m = std::get_if<NewMessage>(&r.work)) reserve += estimate_bytes(m->body_chunks);
  rocksdb::WriteBatch batch(reserve);

  std::vector<core::Status> outcome(requests.size());
  uint64_t in_batch = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    batch.SetSavePoint();
    core::Status s;
    try {
      if (auto* m = std::get_if<NewMessage>(&requests[i].work))
        s = add_new_message(db_, batch, *m);
      else
        std::get<Fill>(requests[i].work)(batch);
    } catch (const std::exception& e) {
      s = core::Status::invalid(std::string("queue: filling a batch: ") + e.what());
    } catch (...) {
      s = core::Status::invalid("queue: filling a batch: unknown exception");
    }
    if (s) {
      batch.PopSavePoint().PermitUncheckedError();
      ++in_batch;
    } else {
      batch.RollbackToSavePoint().PermitUncheckedError();
      outcome[i] = std::move(s);
    }
  }

  if (in_batch > 0) {
    const std::string context =
        "queue: writing a batch of " + std::to_string(in_batch) + " requests to " + db_.dir();
    rocksdb::Status rs;
    const auto started = std::chrono::steady_clock::now();
    try {
      // After an I/O failure RocksDB refuses writes until told to resume; a disk that has
      // been given space again should not need a restart of the daemon.
      if (resume_needed_) rs = db_.raw()->Resume();
      if (rs.ok()) rs = db_.raw()->Write(synced_writes(), &batch);
    } catch (const std::exception& e) {
      rs = rocksdb::Status::Aborted(e.what());
    }
    resume_needed_ = rs.IsIOError();
    const CommitMetrics& metrics = commit_metrics();
    metrics.duration.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    metrics.batch_size.observe(static_cast<double>(in_batch));
    (rs.ok() ? metrics.ok : metrics.failed).inc();
    batches_.fetch_add(1);
    requests_.fetch_add(in_batch);
    if (in_batch > largest_batch_.load()) largest_batch_.store(in_batch);  // one writer thread
    if (!rs.ok()) failed_batches_.fetch_add(1);
    const core::Status result = rs.ok() ? core::Status::ok() : commit_failure(rs, context);
    for (auto& o : outcome)
      if (o) o = result;
  }
  for (size_t i = 0; i < requests.size(); ++i) requests[i].done(std::move(outcome[i]));
}

core::Status add_new_message(const Db& db, rocksdb::WriteBatch& batch, NewMessage& m) {
  if (!core::is_valid_queue_id(m.id))
    return core::Status::invalid("queue: \"" + m.id + "\" is not a queue ID");
  MessageRecord r;
  r.id = m.id;
  rocksdb::Status rs;
  for (std::string& chunk : m.body_chunks) {
    if (chunk.empty()) continue;
    r.body_size += chunk.size();
    if (rs.ok()) rs = batch.Put(db.cf(Family::kBodies), body_key(r.id, r.body_chunks++), chunk);
    std::string().swap(chunk);  // the batch has the bytes now
  }
  r.envelope = std::move(m.envelope);
  r.status.resize(r.envelope.recipients.size());
  r.created_ms = m.now_ms;
  r.next_attempt_ms = m.now_ms;
  if (rs.ok()) rs = batch.Put(db.cf(Family::kEnvelopes), r.id, encode_record(r));
  if (rs.ok()) rs = batch.Put(db.cf(Family::kSchedule), schedule_key(m.now_ms, r.id), "");
  return rs.ok() ? core::Status::ok() : to_status(rs, "queue: adding " + r.id + " to a batch");
}

}  // namespace queue
