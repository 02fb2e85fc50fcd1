#include "dns/cares_resolver.h"

#include <arpa/nameser.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <span>

#include "core/log.h"
#include "core/metrics.h"
#include "dns/message.h"

namespace dns {

struct CaresResolver::Poll {
  uv_poll_t handle;
  CaresResolver* owner;
  ares_socket_t fd;
};

// One ares_query in flight; `done` decodes the reply and posts the caller's callback.
struct CaresResolver::Query {
  std::function<void(int status, std::span<const uint8_t> reply)> done;
};

namespace {

template <typename T>
core::Result<Answer<T>> to_result(int status, std::span<const uint8_t> reply,
                                  const std::string& name, RrType type,
                                  core::Result<Answer<T>> (*decode)(std::span<const uint8_t>,
                                                                    std::string_view)) {
  const std::string what = std::string(rr_type_name(type)) + " " + name;
  // With a reply in hand its RCODE is the truth; c-ares's status only summarises it.
  if (!reply.empty() &&
      (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND)) {
    return decode(reply, name);
  }
  switch (status) {
    case ARES_ENOTFOUND:
      return core::Status::not_found("dns: NXDOMAIN for " + what);
    case ARES_EBADNAME:
      return core::Status::invalid("dns: bad name for " + what);
    case ARES_ESERVFAIL:
      return core::Status::temporary("dns: SERVFAIL for " + what);
    case ARES_ETIMEOUT:
      return core::Status::temporary("dns: timeout for " + what);
    // c-ares 1.18 ends a query this way once every server was skipped, after a SERVFAIL,
    // REFUSED or NOTIMP reply (which it retries elsewhere) or a refused connection.
    case ARES_ECONNREFUSED:
      return core::Status::temporary("dns: SERVFAIL, REFUSED or no answer from every server for " +
                                     what);
    default:
      return core::Status::temporary("dns: " + std::string(ares_strerror(status)) + " for " + what);
  }
}

// porter_dns_queries_total{type,result}: every query c-ares finished, by outcome, made in
// advance for every type and outcome so that counting is one atomic add on the loop.
enum class Outcome { kOk, kNoData, kNxDomain, kServFail, kTimeout, kError };
constexpr std::array<const char*, 6> kOutcomeNames = {"ok",       "nodata",  "nxdomain",
                                                      "servfail", "timeout", "error"};
constexpr std::array<RrType, 5> kQueryTypes = {RrType::kMx, RrType::kA, RrType::kAaaa,
                                               RrType::kTxt, RrType::kPtr};

core::Counter& query_counter(RrType type, Outcome outcome) {
  using Row = std::array<core::Counter*, kOutcomeNames.size()>;
  static const std::array<Row, kQueryTypes.size()> all = [] {
    auto& family = core::metrics_registry().counter(
        "porter_dns_queries_total", "DNS queries sent upstream, by type and outcome.",
        {"type", "result"});
    std::array<Row, kQueryTypes.size()> out{};
    for (size_t t = 0; t < kQueryTypes.size(); ++t)
      for (size_t o = 0; o < kOutcomeNames.size(); ++o)
        out[t][o] = &family.with({rr_type_name(kQueryTypes[t]), kOutcomeNames[o]});
    return out;
  }();
  const size_t t = std::find(kQueryTypes.begin(), kQueryTypes.end(), type) - kQueryTypes.begin();
  return *all[t][static_cast<size_t>(outcome)];
}

template <typename T>
Outcome outcome_of(int status, const core::Result<Answer<T>>& result) {
  if (result) return result->records.empty() ? Outcome::kNoData : Outcome::kOk;
  if (result.status().kind() == core::Status::Kind::kNotFound) return Outcome::kNxDomain;
  if (status == ARES_ETIMEOUT) return Outcome::kTimeout;
  if (status == ARES_ESERVFAIL || status == ARES_ECONNREFUSED) return Outcome::kServFail;
  return Outcome::kError;
}

}  // namespace

core::Result<std::unique_ptr<CaresResolver>> CaresResolver::create(uv_loop_t* loop,
                                                                   const CaresOptions& options) {
  static std::once_flag init_once;
  static int init_status = ARES_SUCCESS;
  std::call_once(init_once, [] { init_status = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init_status != ARES_SUCCESS) {
    return core::Status::invalid(std::string("dns: c-ares init: ") + ares_strerror(init_status));
  }
  if (options.timeout_ms <= 0 || options.tries <= 0) {
    return core::Status::invalid("dns: timeout and tries must be positive");
  }

  std::unique_ptr<CaresResolver> self(new CaresResolver(loop));
  ares_options opts{};
  opts.sock_state_cb = on_sock_state;
  opts.sock_state_cb_data = self.get();
  opts.timeout = options.timeout_ms;
  opts.tries = options.tries;
  const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  if (int rc = ares_init_options(&self->channel_, &opts, mask); rc != ARES_SUCCESS) {
    self->channel_ = nullptr;
    return core::Status::invalid(std::string("dns: c-ares init: ") + ares_strerror(rc));
  }
  if (!options.servers.empty()) {
    std::string csv;
    for (const std::string& server : options.servers) {
      if (!csv.empty()) csv += ',';
      csv += server;
    }
    if (int rc = ares_set_servers_ports_csv(self->channel_, csv.c_str()); rc != ARES_SUCCESS) {
      return core::Status::invalid("dns: bad server list \"" + csv + "\": " + ares_strerror(rc));
    }
  }
  return self;
}

CaresResolver::CaresResolver(uv_loop_t* loop) : loop_(loop), timer_(new uv_timer_t), poster_(loop) {
  uv_timer_init(loop, timer_);
  timer_->data = this;
}

CaresResolver::~CaresResolver() {
  // Ends every query with ARES_EDESTRUCTION (on_reply drops those) and reports each socket
  // closed through on_sock_state, which closes its poll handle.
  if (channel_) ares_destroy(channel_);
  for (auto& [fd, poll] : polls_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle),
             [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
  }
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void CaresResolver::query_mx(const std::string& domain, AnswerCallback<MxRecord> cb) {
  query<MxRecord>(domain, RrType::kMx, decode_mx_reply, std::move(cb));
}

void CaresResolver::query_a(const std::string& name, AnswerCallback<std::string> cb) {
  query<std::string>(name, RrType::kA, decode_a_reply, std::move(cb));
}

void CaresResolver::query_aaaa(const std::string& name, AnswerCallback<std::string> cb) {
  query<std::string>(name, RrType::kAaaa, decode_aaaa_reply, std::move(cb));
}

void CaresResolver::query_txt(const std::string& name, AnswerCallback<std::string> cb) {
  query<std::string>(name, RrType::kTxt, decode_txt_reply, std::move(cb));
}

void CaresResolver::query_ptr(const std::string& name, AnswerCallback<std::string> cb) {
  query<std::string>(name, RrType::kPtr, decode_ptr_reply, std::move(cb));
}

template <typename T>
void CaresResolver::query(const std::string& name, RrType type, Decoder<T> decode,
                          AnswerCallback<T> cb) {
  auto* q = new Query{[this, name, type, decode, cb = std::move(cb)](
                          int status, std::span<const uint8_t> reply) mutable {
    core::Result<Answer<T>> result = to_result<T>(status, reply, name, type, decode);
    query_counter(type, outcome_of(status, result)).inc();
    poster_.post([cb = std::move(cb), result = std::move(result)]() mutable {
      cb(std::move(result));
    });
  }};
  // c-ares may answer from inside ares_query (a name it refuses); on_reply posts either way.
  ares_query(channel_, name.c_str(), ns_c_in, static_cast<int>(type), on_reply, q);
  arm_timer();
}

void CaresResolver::on_reply(void* arg, int status, int timeouts, unsigned char* abuf, int alen) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
  std::span<const uint8_t> reply;
  if (abuf && alen > 0) reply = {abuf, static_cast<size_t>(alen)};
  q->done(status, reply);
}

void CaresResolver::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<CaresResolver*>(data);
  auto it = self->polls_.find(fd);
  if (!readable && !writable) {
    if (it == self->polls_.end()) return;
    Poll* poll = it->second;
    self->polls_.erase(it);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle),
             [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
    return;
  }
  Poll* poll;
  if (it != self->polls_.end()) {
    poll = it->second;
  } else {
    poll = new Poll{{}, self, fd};
    if (int rc = uv_poll_init_socket(self->loop_, &poll->handle, fd); rc != 0) {
      // The query cannot be heard; c-ares's own timeout ends it as temporary.
      core::LogLine(core::LogLevel::kWarn, "dns_poll_failed")
          .kv("fd", int64_t{fd})
          .kv("error", uv_strerror(rc))
          .emit();
      delete poll;
      return;
    }
    poll->handle.data = poll;
    self->polls_.emplace(fd, poll);
  }
  const int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  uv_poll_start(&poll->handle, events, on_poll);
}

void CaresResolver::on_poll(uv_poll_t* handle, int status, int events) {
  auto* poll = static_cast<Poll*>(handle->data);
  CaresResolver* self = poll->owner;
  // On a poll error let c-ares try both directions: its read or write then sees the error.
  const bool failed = status < 0;
  const ares_socket_t fd = poll->fd;
  ares_process_fd(self->channel_, failed || (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                  failed || (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
  self->arm_timer();
}

void CaresResolver::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<CaresResolver*>(timer->data);
  ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  self->arm_timer();
}

void CaresResolver::arm_timer() {
  timeval tv;
  if (ares_timeout(channel_, nullptr, &tv)) {
    const uint64_t ms = uint64_t(tv.tv_sec) * 1000 + (uint64_t(tv.tv_usec) + 999) / 1000;
    uv_timer_start(timer_, on_timer, ms, 0);
  } else {
    uv_timer_stop(timer_);
  }
}

}  // namespace dns
