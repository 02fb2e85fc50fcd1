#pragma once
// The queue-writer thread: group commit for every write that must be durable (DESIGN.md
// "Durability contract", "Threads").
//
// Any thread hands in requests: a new message (enqueue) or a function that fills its part of
// a batch (submit; delivery state updates, mailbox appends). The writer thread takes all
// pending requests at once, puts them into one rocksdb::WriteBatch, writes it with
// sync=true, and only then calls each request's `done` with the outcome. A message's body
// chunks are moved into the batch one by one and freed as they go, so the bytes are not held
// twice. If the write fails, every request in that batch gets the failing status.
//
// Threading: enqueue()/submit() from any thread, also before start() (requests wait).
// `done` runs on the writer thread and must not block: post to your own loop (uv_async).
// No lock is held while RocksDB writes. stop() writes what is pending, then joins (so never
// call it from a `done`); after it new requests are answered at once, on the calling thread,
// with kTemporary. start() and stop() belong to the owner's thread.
// The Db must outlive the Writer.
//
// Metrics (listed in mta/metrics.h): every batch written adds to porter_queue_commits_total
// and observes its request count and write+sync time (porter_queue_commit_*).
//
// Limits: one batch holds everything pending, however large; the bound on memory is the
// callers' (message size limit times concurrent sessions). A batch that fails leaves RocksDB
// in its background-error state; the next batch first asks RocksDB to resume.

#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/envelope.h"
#include "core/status.h"
#include "queue/db.h"

namespace queue {

struct NewMessage {
  std::string id;  // a core queue ID
  core::Envelope envelope;
  std::vector<std::string> body_chunks;  // the message bytes in order; empty chunks are skipped
  int64_t now_ms = 0;                    // created and first due at this time
};

// Adds what enqueue() stores for `msg` to `batch`: body chunks (moved out of msg, freed as
// they go), the record (every recipient kPending, state kActive) and a schedule entry due at
// now_ms. For a caller that must commit a new message atomically with other writes (a bounce
// with the failure that causes it) from inside a Writer::submit fill. An ID that is not a
// queue ID is refused (kInvalid) before anything is added; after any other error part of the
// message may be in the batch, so the fill should throw (submit then rolls its part back).
core::Status add_new_message(const Db& db, rocksdb::WriteBatch& batch, NewMessage& msg);

class Writer {
 public:
  using Done = std::function<void(core::Status)>;
  using Fill = std::function<void(rocksdb::WriteBatch&)>;

  struct Stats {
    uint64_t batches = 0;        // WriteBatches written (successfully or not)
    uint64_t requests = 0;       // requests in those batches
    uint64_t largest_batch = 0;  // most requests in one batch
    uint64_t failed_batches = 0;
  };

  explicit Writer(Db& db);
  ~Writer();  // stop()
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void start();
  void stop();

  // Stores the message as add_new_message() describes. An ID that is not a valid queue ID
  // is refused (kInvalid).
  void enqueue(NewMessage msg, Done done);
  // `fill` runs on the writer thread, adding its writes to the shared batch. If it throws,
  // its part is rolled back and `done` gets kInvalid; the rest of the batch is unaffected.
  void submit(Fill fill, Done done);

  Stats stats() const;

 private:
  struct Request {
    std::variant<NewMessage, Fill> work;
    Done done;
  };
  enum class State { kIdle, kRunning, kStopped };

  void add(Request r);
  void run();
  void write(std::vector<Request>& requests);

  Db& db_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> pending_;  // guarded by mu_
  State state_ = State::kIdle;    // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  std::thread thread_;
  bool resume_needed_ = false;  // writer thread only

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> largest_batch_{0};
  std::atomic<uint64_t> failed_batches_{0};
};

}  // namespace queue
