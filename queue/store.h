#pragma once
// The read side of the queue: records, bodies and header sections of queued messages, and
// the start-up sweep of body chunks that no record owns.
//
// Reads of one message use one RocksDB snapshot, so a body is never half of one version and
// half of another. Every function checks what it reads against the record (chunk indices
// 0..n-1, total size) and returns kCorrupt naming the queue ID when they disagree.
//
// Thread safety: any thread, concurrently with the Writer (RocksDB's guarantee).
// Limits: list() stops at the first record it cannot decode (its ID is in the error).
// headers() has no cap of its own: a message of header lines without an empty line comes
// back whole (the SMTP size limit bounds it). remove_incomplete_bodies() reads the first
// chunk of every queued message (a RocksDB 7.8 iterator reads the blob value of the key it
// stops on); it runs once at start-up, before the listeners.

#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "queue/db.h"
#include "queue/record.h"

namespace queue {

// kNotFound when no message has this ID.
core::Result<MessageRecord> get(const Db& db, std::string_view id);
// Every record in ID (= arrival) order until `visit` returns false.
core::Status list(const Db& db, const std::function<bool(const MessageRecord&)>& visit);
// The whole body; for delivery prefer read_body_chunks, which holds one chunk at a time.
core::Result<std::string> read_body(const Db& db, std::string_view id);
// Each chunk in order until `visit` returns false (then Ok, without the final size check).
core::Status read_body_chunks(const Db& db, std::string_view id,
                              const std::function<bool(std::string_view)>& visit);
// The header section, up to and including the empty line that ends it (core::header_end);
// the whole message if it has no body. Reads only as many chunks as it needs.
core::Result<std::string> headers(const Db& db, std::string_view id);
// Deletes body chunks whose ID has no record in the envelopes family (left by a crash if
// bodies are ever written ahead of their record), logging one line per ID removed.
core::Status remove_incomplete_bodies(Db& db);

}  // namespace queue
