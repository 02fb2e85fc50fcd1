#pragma once
// CaresResolver: the Resolver that asks real DNS servers, through c-ares driven by a libuv
// loop. c-ares's sockets are watched with uv_poll (ARES_OPT_SOCK_STATE_CB tells which and
// when), its retransmissions and timeouts run on one uv_timer set from ares_timeout(); no
// call blocks. Replies are decoded by dns/message.h so that every answer carries its TTL.
//
// Lifetime: owns the c-ares channel and its libuv handles; the loop must outlive it and run
// once more after it is destroyed so the handles' close callbacks can free them. Queries in
// flight at destruction are dropped (their callbacks are not called).
// Threading: one instance per loop (DESIGN.md: c-ares channels are per loop); use it only on
// that loop's thread.
//
// Limits: no caching (wrap in CachingResolver); no search list or ndots (names are queried
// as given, absolute); timeout_ms is c-ares's per-try timeout, which c-ares doubles on each
// round through the server list, so a query against one server gives up after about
// timeout_ms * (2^tries - 1).

#include <ares.h>
#include <uv.h>

#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "dns/post.h"
#include "dns/resolver.h"

namespace dns {

struct CaresOptions {
  // "192.0.2.53", "127.0.0.1:5353", "[::1]:5353". Empty: the servers of /etc/resolv.conf.
  std::vector<std::string> servers;
  int timeout_ms = 2000;
  int tries = 2;
};

class CaresResolver final : public Resolver {
 public:
  // Fails (Status::invalid) on a bad server list or options, or if c-ares cannot start.
  static core::Result<std::unique_ptr<CaresResolver>> create(uv_loop_t* loop,
                                                             const CaresOptions& options);
  ~CaresResolver() override;
  CaresResolver(const CaresResolver&) = delete;
  CaresResolver& operator=(const CaresResolver&) = delete;

  void query_mx(const std::string& domain, AnswerCallback<MxRecord> cb) override;
  void query_a(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_aaaa(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_txt(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_ptr(const std::string& name, AnswerCallback<std::string> cb) override;

 private:
  struct Query;
  struct Poll;

  explicit CaresResolver(uv_loop_t* loop);
  template <typename T>
  using Decoder = core::Result<Answer<T>> (*)(std::span<const uint8_t>, std::string_view);
  template <typename T>
  void query(const std::string& name, RrType type, Decoder<T> decode, AnswerCallback<T> cb);
  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable);
  static void on_reply(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  static void on_poll(uv_poll_t* handle, int status, int events);
  static void on_timer(uv_timer_t* timer);
  void arm_timer();

  uv_loop_t* loop_;
  ares_channel channel_ = nullptr;
  uv_timer_t* timer_;  // heap: freed by its close callback
  std::unordered_map<ares_socket_t, Poll*> polls_;
  LoopPoster poster_;
};

}  // namespace dns
