#pragma once
// run_blocking: offload work that would stall the loop (crypt(3) password checks, which take
// tens of milliseconds by design) to libuv's thread pool.
//
// work runs on a pool thread and must touch nothing the loop thread uses without a lock;
// after_on_loop then runs on the loop thread, where it may use the loop's objects again
// (check that the connection it serves is still open: it may have closed meanwhile).
//
// Limits: the pool is process-wide, shared by all loops, 4 threads unless UV_THREADPOOL_SIZE
// is set in the environment before the first use. Work cannot be cancelled; Loop's
// destructor waits for work in flight and runs its after_on_loop.

#include <functional>

namespace net {

class Loop;

void run_blocking(Loop& loop, std::function<void()> work, std::function<void()> after_on_loop);

}  // namespace net
