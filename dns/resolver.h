#pragma once
// The resolver interface the rest of Porter sees: asynchronous MX, A, AAAA, TXT and PTR lookups.
//
// Outcomes (one vocabulary for every implementation):
//   records found          -> ok, records non-empty, ttl = smallest TTL of the answer
//   NODATA (name exists)   -> ok, records empty, ttl = RFC 2308 §5 negative TTL
//   NXDOMAIN               -> Status::not_found, message contains "NXDOMAIN"
//   SERVFAIL, REFUSED, timeout, network error, malformed reply -> Status::temporary
//   a name that cannot be queried (bad syntax) -> Status::invalid
//
// Threading: an implementation belongs to one loop thread. Callbacks run on that thread and
// never synchronously inside the query call (they are posted), so a caller cannot be
// re-entered while it issues a query. Destroying a resolver drops the callbacks of queries
// still in flight without calling them; a caller that must know keeps its own state alive
// with the callback.
//
// Limits: class IN only; names are ASCII (A-labels); IDN conversion is the caller's.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace dns {

enum class RrType : uint16_t {
  kA = 1,
  kCname = 5,
  kSoa = 6,
  kPtr = 12,
  kMx = 15,
  kTxt = 16,
  kAaaa = 28,
};

// "MX", "A", ... for log lines and status messages.
const char* rr_type_name(RrType type);

// Used for NODATA when the server sent no SOA to take a negative TTL from (RFC 2308 §5).
inline constexpr uint32_t kDefaultNegativeTtl = 300;

struct MxRecord {
  uint16_t preference = 0;
  std::string host;  // without trailing dot; "." is the root (null MX, RFC 7505)

  bool operator==(const MxRecord&) const = default;
};

template <typename T>
struct Answer {
  std::vector<T> records;
  uint32_t ttl = 0;  // seconds
};

using MxAnswer = Answer<MxRecord>;
// Addresses in text form ("192.0.2.1", "2001:db8::1").
using AddressAnswer = Answer<std::string>;
// One string per TXT RR: its character-strings concatenated, as RFC 7208 §3.3 requires.
using TxtAnswer = Answer<std::string>;
// Host names without trailing dot, in the order of the reply.
using PtrAnswer = Answer<std::string>;

template <typename T>
using AnswerCallback = std::function<void(core::Result<Answer<T>>)>;

class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual void query_mx(const std::string& domain, AnswerCallback<MxRecord> cb) = 0;
  virtual void query_a(const std::string& name, AnswerCallback<std::string> cb) = 0;
  virtual void query_aaaa(const std::string& name, AnswerCallback<std::string> cb) = 0;
  virtual void query_txt(const std::string& name, AnswerCallback<std::string> cb) = 0;
  // `name` is the reverse name itself: "4.3.2.1.in-addr.arpa" (RFC 1035 §3.5) or the nibble
  // form under ip6.arpa (RFC 3596 §2.5).
  virtual void query_ptr(const std::string& name, AnswerCallback<std::string> cb) = 0;
};

// Canonical form for comparing and keying names: ASCII lower case, no trailing dot
// (except the root, which stays ".").
std::string normalize_name(std::string_view name);

}  // namespace dns
