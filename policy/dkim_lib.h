#pragma once
// OpenDKIM (libopendkim 2.11) behind RAII, for DkimSigner and DkimVerifier only: the one
// header that includes <opendkim/dkim.h>. That header spells its booleans with C's _Bool and
// only includes <stdbool.h> (which makes _Bool mean bool in C++) when HAVE_STDBOOL_H is set.
//
// Threading: a library handle is configured right after dkim_init() and only read after that,
// so it may be shared by threads (OpenDKIM's own filter shares one among its workers). A
// message handle (DKIM) belongs to one thread.
//
// Limits: internal to policy/; the public headers only forward-declare dkim_lib.

#ifndef HAVE_STDBOOL_H
#define HAVE_STDBOOL_H 1
#endif
#include <opendkim/dkim.h>

#include <memory>
#include <string>
#include <string_view>

namespace policy::dkim_internal {

// Frees the message handle and then empties this thread's OpenSSL error queue: OpenDKIM may
// leave entries there (a failed RSA_verify pushes some), and the TLS code running on the same
// loop thread would read them back through SSL_get_error() as its own.
struct HandleFreer {
  void operator()(DKIM* dkim) const;
};
using HandlePtr = std::unique_ptr<DKIM, HandleFreer>;

// A library handle with DKIM_LIBFLAGS_* `flags` set, closed by dkim_close() when the last
// owner lets go; nullptr if libopendkim cannot start (out of memory).
std::shared_ptr<DKIM_LIB> make_lib(unsigned flags);

// Passes a whole message to dkim_chunk() and then the end-of-input call dkim_chunk(NULL, 0);
// dkim_eom() is the caller's. Stops at the first status that is not DKIM_STAT_OK.
DKIM_STAT feed_message(DKIM* dkim, std::string_view message);

// For a verifying handle: passes the message to dkim_chunk() only until OpenDKIM has read
// the header section (dkim_getsiglist() then answers). DKIM_STAT_NOSIG: no signature.
DKIM_STAT feed_header_section(DKIM* dkim, std::string_view message);

// "Syntax error: required header "from" not found": OpenDKIM's name for the status, and the
// handle's own error text when it has one, for Status messages and logs.
std::string describe(DKIM* dkim, DKIM_STAT status);

// The id given to dkim_sign()/dkim_verify(), which keep the pointer rather than a copy.
inline constexpr unsigned char kHandleId[] = "porter";

}  // namespace policy::dkim_internal
