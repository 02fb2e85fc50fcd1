#pragma once
// The IMAP service: binds sans-IO IMAP sessions (mta/access/imap_session.h) to network
// connections on one loop; logins go through the shared check (mta/login.h), mailbox access
// through StoreImapBackend (mta/imap_store_backend.h), and changes made by other sessions or
// by delivery reach a session through the store's event registry, posted to its loop.
//
// Threading: ImapContext is shared by every loop; each loop owns one ImapService.
// Limits: see ImapSession; the idle timeout is 30 minutes (RFC 9051 §5.4: at least 30).

#include <memory>
#include <vector>

#include "mta/access/imap_session.h"
#include "mta/config.h"
#include "mta/imap_search_cache.h"
#include "mta/login.h"
#include "mta/mailbox/events.h"
#include "mta/mailbox/store.h"
#include "mta/net/listener.h"
#include "mta/net/loop.h"
#include "mta/net/tls_context.h"
#include "policy/conn_limits.h"
#include "queue/writer.h"

namespace mta {

struct ImapContext {
  const Config& config;
  LoginServices& login;
  policy::ConnectionLimiter& limiter;
  std::shared_ptr<net::TlsContext> tls;  // null: no STARTTLS, no imaps
  mailbox::Store& store;  // its events() tell sessions of changes
  queue::Writer& writer;
  access::ImapConfig session;
  ImapSearchCache search_cache{};  // shared by every session on every loop
};

class ImapService {
 public:
  ImapService(net::Loop& loop, ImapContext& ctx);
  ~ImapService();
  // Opens every imap/imaps listener on this loop.
  core::Status listen();
  void close();

 private:
  net::Loop& loop_;
  ImapContext& ctx_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
};

}  // namespace mta
