#pragma once
// The IMAP server session (RFC 9051 IMAP4rev2, with IMAP4rev1 clients in mind) as a state
// machine over bytes: commands are read by ImapReader, answered from an ImapBackend (the
// logged-in user's mailboxes), and the replies collected for the glue to write.
//
//   not authenticated --LOGIN/AUTHENTICATE--> authenticated --SELECT/EXAMINE--> selected
//   any --LOGOUT--> logout;  selected --CLOSE/UNSELECT/failed SELECT--> authenticated
//
// Like the SMTP session it never touches a socket, a clock or the disk itself. The glue
// feeds receive(), writes take_output(), and answers what waiting() asks: start TLS, or
// check a password (then on_auth() with the user's backend). Backend writes complete later
// through callbacks on the same thread; while one is pending, and while IDLE waits for
// "DONE", input is buffered, not processed. on_mailbox_changed() tells the session that
// another session or a delivery changed a mailbox: the selected one is re-read and the
// differences sent as untagged EXISTS / FETCH (FLAGS) / EXPUNGE: at once during IDLE, else
// with the reply to the next NOOP, CHECK, EXPUNGE or MOVE (APPEND reports new mail and flag
// changes only), never inside a FETCH, STORE or SEARCH reply (RFC 9051 §7.5.1), so the
// sequence numbers a client holds stay right.
//
// Capabilities: IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE NAMESPACE ID UNSELECT
// UIDPLUS MOVE SPECIAL-USE CHILDREN ESEARCH SEARCHRES, STARTTLS and LOGINDISABLED before TLS,
// AUTH=PLAIN after. SEARCH is mta/access/imap_search.h.
//
// Lifetime: one per connection, one thread. The backend must outlive the session.
// Limits: mailbox names are UTF-8 (no modified UTF-7 for IMAP4rev1 clients); no CONDSTORE,
// QRESYNC, BINARY, NOTIFY, COMPRESS; no \Recent (IMAP4rev2 dropped it: RECENT is always 0).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/access/imap_backend.h"
#include "mta/access/imap_parser.h"

namespace mta::access {

struct ImapConfig {
  std::string hostname = "localhost";
  bool starttls_available = false;
  ImapLimits limits;
  int max_bad_commands = 20;  // then BYE
};

enum class ImapWait { kNone, kStartTls, kAuth };

struct ImapAuthRequest {
  std::string login;
  std::string password;
};

class ImapSession {
 public:
  ImapSession(const ImapConfig& config, bool tls_active);
  ~ImapSession();
  ImapSession(const ImapSession&) = delete;
  ImapSession& operator=(const ImapSession&) = delete;

  void greet();
  void receive(std::string_view bytes);
  std::string take_output();
  bool closing() const { return closing_; }

  ImapWait waiting() const { return wait_; }
  const ImapAuthRequest& auth_request() const { return auth_; }
  // The user, or nullopt and the reason for the tagged NO ("[AUTHENTICATIONFAILED] ...").
  void on_auth(std::optional<std::string> user, ImapBackend* backend, std::string_view refusal);
  void on_tls_started();
  // A mailbox of this user changed (any session, any delivery).
  void on_mailbox_changed(std::string_view mailbox);
  // Idle timeout: BYE and close.
  void on_timeout();

  const std::string& user() const { return user_; }
  const std::string& selected() const { return selected_; }
  bool idling() const { return idle_tag_.has_value(); }

 private:
  enum class State { kNotAuthenticated, kAuthenticated, kSelected, kLogout };

  using Handler = void (ImapSession::*)(ImapCommand& cmd);
  struct Command {
    std::string_view name;
    Handler handler;
    unsigned states;  // bit per State the command is valid in
  };
  static const Command kCommands[];

  void process();
  void dispatch(ImapCommand cmd);
  void untagged(std::string_view text);
  void ok(const std::string& tag, std::string_view text);
  void no(const std::string& tag, std::string_view text);
  void bad(const std::string& tag, std::string_view text);
  void busy();   // a backend write is in flight: hold input
  void resume(); // it finished: go on with buffered input
  bool writable(const std::string& tag);  // selected read-write, else NO sent

  // The selected mailbox as this session last told the client.
  void refresh(bool expunges_allowed);
  std::optional<std::vector<size_t>> resolve_set(const ImapValue& arg, bool uid,
                                                 const std::string& tag);
  std::vector<uint32_t> uids_of(const std::vector<size_t>& indexes) const;
  // The first message of view_ whose UID is `uid` or greater (view_ is in UID order).
  size_t index_at_or_after(uint32_t uid) const;
  void apply_flag_changes(const std::vector<ImapMessageMeta>& changed);

  void cmd_capability(ImapCommand& c);
  void cmd_noop(ImapCommand& c);
  void cmd_logout(ImapCommand& c);
  void cmd_starttls(ImapCommand& c);
  void cmd_login(ImapCommand& c);
  void cmd_authenticate(ImapCommand& c);
  void cmd_enable(ImapCommand& c);
  void cmd_id(ImapCommand& c);
  void cmd_namespace(ImapCommand& c);
  void cmd_list(ImapCommand& c);
  void cmd_lsub(ImapCommand& c);
  void cmd_subscribe(ImapCommand& c);
  void cmd_unsubscribe(ImapCommand& c);
  void cmd_create(ImapCommand& c);
  void cmd_delete(ImapCommand& c);
  void cmd_rename(ImapCommand& c);
  void cmd_status(ImapCommand& c);
  void cmd_select(ImapCommand& c);
  void cmd_examine(ImapCommand& c);
  void cmd_unselect(ImapCommand& c);
  void cmd_close(ImapCommand& c);
  void cmd_expunge(ImapCommand& c);
  void cmd_uid_expunge(ImapCommand& c);
  void cmd_append(ImapCommand& c);
  void cmd_fetch(ImapCommand& c);
  void cmd_uid_fetch(ImapCommand& c);
  void cmd_store(ImapCommand& c);
  void cmd_uid_store(ImapCommand& c);
  void cmd_copy(ImapCommand& c);
  void cmd_uid_copy(ImapCommand& c);
  void cmd_move(ImapCommand& c);
  void cmd_uid_move(ImapCommand& c);
  void cmd_idle(ImapCommand& c);
  void cmd_search(ImapCommand& c);
  void cmd_uid_search(ImapCommand& c);
  void search(ImapCommand& c, bool uid);
  // What SEARCH knows of message `i` of the view without its summary or bytes.
  struct SearchMessage search_message(size_t i) const;
  void cmd_check(ImapCommand& c);

  void open_mailbox(ImapCommand& c, bool read_only);
  void list_like(ImapCommand& c, bool subscribed_only, bool lsub);
  void fetch(ImapCommand& c, bool uid);
  void store(ImapCommand& c, bool uid);
  void copy_or_move(ImapCommand& c, bool uid, bool move);
  void expunge_uids(const std::string& tag, std::vector<uint32_t> uids, bool silent_if_none);
  void simple_write(ImapCommand& c, std::string_view what,
                    const std::function<void(ImapBackend::Done)>& start);

  const ImapConfig& cfg_;
  ImapReader reader_;
  State state_ = State::kNotAuthenticated;
  ImapWait wait_ = ImapWait::kNone;
  bool tls_;
  bool closing_ = false;
  bool busy_ = false;
  bool rev2_ = false;  // ENABLE IMAP4rev2
  int bad_ = 0;
  std::string out_;
  std::string user_;
  ImapBackend* backend_ = nullptr;
  ImapAuthRequest auth_;
  std::string auth_tag_;
  std::optional<std::string> authenticate_tag_;  // AUTHENTICATE waiting for its response line
  std::optional<std::string> idle_tag_;
  // The selected mailbox.
  std::string selected_;
  bool read_only_ = false;
  bool changed_ = false;  // on_mailbox_changed for it since the last refresh
  uint32_t uidvalidity_ = 0;
  std::vector<ImapMessageMeta> view_;  // sequence number = index + 1
  std::vector<uint32_t> saved_uids_;   // SEARCH RETURN (SAVE), RFC 5182, ascending
  // Shared with backend callbacks, so a callback arriving after the session died is harmless.
  std::shared_ptr<bool> alive_;
};

}  // namespace mta::access
