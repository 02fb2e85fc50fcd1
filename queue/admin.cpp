#include "queue/admin.h"

#include <rocksdb/iterator.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <unordered_map>
#include <utility>

#include "core/address.h"

namespace queue {
namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool icontains(std::string_view haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [](char a, char b) { return lower(a) == lower(b); }) != haystack.end();
}

int64_t age_of(const MessageRecord& r, int64_t now_ms) {
  return std::max<int64_t>(0, now_ms - r.created_ms);
}

bool matches(const ListFilter& f, const MessageRecord& r, int64_t now_ms) {
  if (f.state && r.state != *f.state) return false;
  const int64_t age = age_of(r, now_ms);
  if (f.min_age_ms && age < *f.min_age_ms) return false;
  if (f.max_age_ms && age > *f.max_age_ms) return false;
  if (f.sender) {
    const core::Address& s = r.envelope.sender;
    if (*f.sender == "<>" ? !s.empty() : !icontains(s.str(), *f.sender)) return false;
  }
  if (!f.recipient && !f.domain && !f.error) return true;
  // The recipient fields may be met by different pending recipients of one message.
  bool recipient = !f.recipient, domain = !f.domain, error = !f.error;
  for (size_t i = 0; i < r.status.size() && i < r.envelope.recipients.size(); ++i) {
    if (r.status[i].state != RecipientState::kPending) continue;
    const core::Address& a = r.envelope.recipients[i].address;
    recipient = recipient || icontains(a.str(), *f.recipient);
    domain = domain || core::iequals(a.domain, *f.domain);
    error = error || icontains(r.status[i].last_reply, *f.error);
  }
  return recipient && domain && error;
}

// Walks every record of the envelopes family from `start` (the first key when empty),
// skipping `skip`, collecting the IDs of records that do not decode.
template <typename Visit>
core::Status scan(const Db& db, const std::string& start, const std::string* skip,
                  std::vector<std::string>& unreadable, Visit visit) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db.raw()->NewIterator(ro, db.cf(Family::kEnvelopes)));
  for (start.empty() ? it->SeekToFirst() : it->Seek(start); it->Valid(); it->Next()) {
    if (skip && it->key() == rocksdb::Slice(*skip)) continue;
    auto record = decode_record(it->value().ToStringView());
    if (!record) {
      unreadable.push_back(it->key().ToString());
      continue;
    }
    if (!visit(*record)) break;
  }
  return to_status(it->status(), "queue: scanning the envelopes in " + db.dir());
}

}  // namespace

core::Result<ListPage> list_messages(const Db& db, const ListFilter& filter, int64_t now_ms,
                                     const std::function<bool(const MessageRecord&)>& visit) {
  if (filter.limit == 0) return core::Status::invalid("queue list: limit must be at least 1");
  if ((filter.min_age_ms && *filter.min_age_ms < 0) ||
      (filter.max_age_ms && *filter.max_age_ms < 0))
    return core::Status::invalid("queue list: an age cannot be negative");
  ListPage page;
  const std::string start = filter.after.value_or("");
  core::Status s = scan(db, start, filter.after ? &start : nullptr, page.unreadable,
                        [&](const MessageRecord& r) {
                          ++page.scanned;
                          if (!matches(filter, r, now_ms)) return true;
                          ++page.matched;
                          if (visit(r) && page.matched < filter.limit) return true;
                          page.next_after = r.id;
                          return false;
                        });
  if (!s) return s;
  return page;
}

core::Result<MessageState> parse_state(std::string_view text) {
  for (MessageState s : {MessageState::kActive, MessageState::kDeferred, MessageState::kHeld})
    if (core::iequals(text, state_name(s))) return s;
  return core::Status::invalid("queue state \"" + std::string(text) +
                               "\": expected active, deferred or held");
}

core::Result<int64_t> parse_age(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return core::Status::invalid("age \"" + std::string(text) + "\": " + std::string(why));
  };
  if (text.size() < 2) return bad("expected a number and a unit (s, m, h, d, w), as in 10m");
  int64_t unit = 0;
  switch (lower(text.back())) {
    case 's':
      unit = 1'000;
      break;
    case 'm':
      unit = 60'000;
      break;
    case 'h':
      unit = 3'600'000;
      break;
    case 'd':
      unit = 86'400'000;
      break;
    case 'w':
      unit = 7 * 86'400'000LL;
      break;
    default:
      return bad("the unit must be s, m, h, d or w");
  }
  int64_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return bad("expected digits before the unit");
    if (n > (std::numeric_limits<int64_t>::max() / unit - (c - '0')) / 10) return bad("too large");
    n = n * 10 + (c - '0');
  }
  return n * unit;
}

const std::array<std::string_view, kAgeBuckets>& age_bucket_labels() {
  static const std::array<std::string_view, kAgeBuckets> kLabels = {
      "0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160-320m", "320m+"};
  return kLabels;
}

size_t age_bucket(int64_t age_ms) {
  size_t b = 0;
  while (b < kAgeBucketBoundsMinutes.size() && age_ms >= kAgeBucketBoundsMinutes[b] * 60'000) ++b;
  return b;
}

core::Result<QueueSummary> summary(const Db& db, int64_t now_ms) {
  QueueSummary out;
  out.all.domain = "TOTAL";
  std::unordered_map<std::string, DomainShape> by_domain;
  core::Status s = scan(db, "", nullptr, out.unreadable, [&](const MessageRecord& r) {
    ++out.messages;
    ++out.by_state[static_cast<size_t>(r.state)];
    const int64_t age = age_of(r, now_ms);
    if (out.oldest_id.empty() || age > out.oldest_age_ms) {
      out.oldest_age_ms = age;
      out.oldest_id = r.id;
    }
    const size_t bucket = age_bucket(age);
    for (size_t i = 0; i < r.status.size() && i < r.envelope.recipients.size(); ++i) {
      if (r.status[i].state != RecipientState::kPending) continue;
      const std::string& domain = r.envelope.recipients[i].address.domain;
      auto it = by_domain.find(domain);
      if (it == by_domain.end()) it = by_domain.emplace(domain, DomainShape{domain}).first;
      ++it->second.total;
      ++it->second.buckets[bucket];
      ++out.all.total;
      ++out.all.buckets[bucket];
    }
    return true;
  });
  if (!s) return s;
  out.domains.reserve(by_domain.size());
  for (auto& [domain, shape] : by_domain) out.domains.push_back(std::move(shape));
  std::sort(out.domains.begin(), out.domains.end(), [](const DomainShape& a, const DomainShape& b) {
    return a.total != b.total ? a.total > b.total : a.domain < b.domain;
  });
  return out;
}

}  // namespace queue
