#include "mta/access/imap_session.h"

#include "mta/access/imap_search.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <set>

#include "core/address.h"
#include "core/sasl.h"
#include "mta/mime/imap_section.h"
#include "mta/mime/imap_structure.h"
#include "mta/mime/mime_tree.h"

namespace mta::access {
namespace {

constexpr unsigned kNotAuth = 1, kAuth = 2, kSel = 4;
constexpr unsigned kAny = kNotAuth | kAuth | kSel;

const char* const kSystemFlagNames[] = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
                                        "\\Draft"};

std::string flags_text(const ImapFlags& f) {
  std::string out = "(";
  for (int bit = 0; bit < 5; ++bit) {
    if (!(f.system & (1u << bit))) continue;
    if (out.size() > 1) out += ' ';
    out += kSystemFlagNames[bit];
  }
  for (const auto& k : f.keywords) {
    if (out.size() > 1) out += ' ';
    out += k;
  }
  return out + ")";
}

// A flag list argument: system flags by name, keywords as atoms. nullopt: not a flag.
std::optional<ImapFlags> parse_flags(const ImapValue& v) {
  ImapFlags f;
  std::vector<const ImapValue*> items;
  if (v.kind == ImapValue::Kind::kList) {
    for (const auto& i : v.items) items.push_back(&i);
  } else {
    items.push_back(&v);
  }
  for (const ImapValue* i : items) {
    if (i->kind != ImapValue::Kind::kAtom) return std::nullopt;
    bool system = false;
    for (int bit = 0; bit < 5; ++bit) {
      if (core::iequals(i->text, kSystemFlagNames[bit])) {
        f.system |= static_cast<uint8_t>(1u << bit);
        system = true;
      }
    }
    if (system) continue;
    if (i->text.empty() || i->text[0] == '\\' || i->text.size() > 255) return std::nullopt;
    if (std::find(f.keywords.begin(), f.keywords.end(), i->text) == f.keywords.end())
      f.keywords.push_back(i->text);
  }
  return f;
}

std::string quoted(std::string_view s) {
  std::string out;
  mime::append_imap_string(out, s, true);
  return out;
}

// RFC 9051 date-time: "17-Jul-1996 02:44:25 -0700", in UTC here.
std::string imap_date_time(int64_t ms) {
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

// APPEND's optional date-time argument; nullopt when malformed.
std::optional<int64_t> parse_date_time(std::string_view s) {
  static const char* const kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                        "jul", "aug", "sep", "oct", "nov", "dec"};
  // " 7-Jul-1996 02:44:25 -0700" or "17-Jul-1996 02:44:25 -0700"
  if (!s.empty() && s[0] == ' ') s.remove_prefix(1);
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0, zone = 0;
  char mon[4] = {};
  char sign = 0;
  if (std::sscanf(std::string(s).c_str(), "%d-%3c-%d %d:%d:%d %c%d", &day, mon, &year, &hh, &mm,
                  &ss, &sign, &zone) != 8)
    return std::nullopt;
  int month = -1;
  for (int i = 0; i < 12; ++i)
    if (core::iequals(std::string_view(mon, 3), kMonths[i])) month = i;
  if (month < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 ||
      (sign != '+' && sign != '-'))
    return std::nullopt;
  struct tm tm {};
  tm.tm_mday = day;
  tm.tm_mon = month;
  tm.tm_year = year - 1900;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  const int64_t offset = ((zone / 100) * 60 + zone % 100) * 60 * (sign == '-' ? -1 : 1);
  return (static_cast<int64_t>(timegm(&tm)) - offset) * 1000;
}

// "INBOX" in any case, alone or as the first level, reads as "INBOX" (RFC 9051 §5.1).
std::string fold_inbox(std::string_view s) {
  std::string out(s);
  if (s.size() >= 5 && core::iequals(s.substr(0, 5), "INBOX") && (s.size() == 5 || s[5] == '/'))
    out.replace(0, 5, "INBOX");
  return out;
}

// LIST pattern matching (RFC 9051 §6.3.9): '*' matches anything, '%' anything but the
// separator. Dynamic programming, so no pattern can make it take exponential time.
bool pattern_matches(std::string_view pattern_in, std::string_view name_in) {
  const std::string p = fold_inbox(pattern_in), n = fold_inbox(name_in);
  // can[j]: pattern so far matches the first j bytes of the name.
  std::vector<char> can(n.size() + 1, 0), next(n.size() + 1, 0);
  can[0] = 1;
  for (char pc : p) {
    std::fill(next.begin(), next.end(), 0);
    if (pc == '*' || pc == '%') {
      bool reach = false;
      for (size_t j = 0; j <= n.size(); ++j) {
        if (can[j]) reach = true;
        next[j] = reach;
        if (pc == '%' && j < n.size() && n[j] == '/') reach = false;
      }
    } else {
      for (size_t j = 0; j < n.size(); ++j) next[j + 1] = can[j] && n[j] == pc;
    }
    can.swap(next);
  }
  return can[n.size()];
}

// Fills `slot` from `load()` the first time; false when loading failed.
template <typename T, typename Load>
bool load_once(std::optional<T>& slot, Load load) {
  if (slot) return true;
  auto r = load();
  if (!r) return false;
  slot = std::move(*r);
  return true;
}

// The text of "NO" for a mailbox that could not be opened.
std::string mailbox_refusal(const core::Status& s) {
  if (s.kind() == core::Status::Kind::kNotFound) return "[NONEXISTENT] No such mailbox";
  return "[SERVERBUG] " + s.message();
}

std::string canonical(std::string_view name) {
  if (core::iequals(name, "INBOX")) return "INBOX";
  return std::string(name);
}

// One FETCH data item, parsed.
struct FetchItem {
  enum class Kind {
    kFlags, kUid, kInternalDate, kSize, kEnvelope, kBodyStructure, kBody, kSection,
    kRfc822, kRfc822Header, kRfc822Text
  };
  Kind kind;
  bool peek = false;
  std::string section;  // inside the brackets, as given
  std::optional<std::pair<uint64_t, uint64_t>> partial;
};

std::optional<FetchItem> parse_fetch_item(std::string_view text, std::string* why) {
  using K = FetchItem::Kind;
  const size_t bracket = text.find('[');
  std::string name = core::to_lower_ascii(text.substr(0, bracket));
  if (bracket == std::string_view::npos) {
    static const std::pair<const char*, K> kPlain[] = {
        {"flags", K::kFlags}, {"uid", K::kUid}, {"internaldate", K::kInternalDate},
        {"rfc822.size", K::kSize}, {"envelope", K::kEnvelope},
        {"bodystructure", K::kBodyStructure}, {"body", K::kBody}, {"rfc822", K::kRfc822},
        {"rfc822.header", K::kRfc822Header}, {"rfc822.text", K::kRfc822Text}};
    for (const auto& [n, k] : kPlain)
      if (name == n) return FetchItem{k, false, {}, std::nullopt};
    *why = "Unknown FETCH item " + std::string(text);
    return std::nullopt;
  }
  if (name != "body" && name != "body.peek") {
    *why = "Unknown FETCH item " + std::string(text);
    return std::nullopt;
  }
  const size_t close = text.find(']', bracket);
  FetchItem item{K::kSection, name == "body.peek",
                 std::string(text.substr(bracket + 1, close - bracket - 1)), std::nullopt};
  std::string_view rest = text.substr(close + 1);
  if (!rest.empty()) {
    unsigned long long origin = 0, count = 0;
    char tail = 0;
    if (std::sscanf(std::string(rest).c_str(), "<%llu.%llu%c", &origin, &count, &tail) != 3 ||
        tail != '>' || count == 0) {
      *why = "Bad partial " + std::string(rest);
      return std::nullopt;
    }
    item.partial = {origin, count};
  }
  if (auto spec = mime::parse_section(item.section); !spec) {
    *why = "Bad section [" + item.section + "]: " + spec.status().message();
    return std::nullopt;
  }
  return item;
}

}  // namespace

const ImapSession::Command ImapSession::kCommands[] = {
    {"CAPABILITY", &ImapSession::cmd_capability, kAny},
    {"NOOP", &ImapSession::cmd_noop, kAny},
    {"LOGOUT", &ImapSession::cmd_logout, kAny},
    {"ID", &ImapSession::cmd_id, kAny},
    {"STARTTLS", &ImapSession::cmd_starttls, kNotAuth},
    {"LOGIN", &ImapSession::cmd_login, kNotAuth},
    {"AUTHENTICATE", &ImapSession::cmd_authenticate, kNotAuth},
    {"ENABLE", &ImapSession::cmd_enable, kAuth | kSel},
    {"NAMESPACE", &ImapSession::cmd_namespace, kAuth | kSel},
    {"LIST", &ImapSession::cmd_list, kAuth | kSel},
    {"LSUB", &ImapSession::cmd_lsub, kAuth | kSel},
    {"SUBSCRIBE", &ImapSession::cmd_subscribe, kAuth | kSel},
    {"UNSUBSCRIBE", &ImapSession::cmd_unsubscribe, kAuth | kSel},
    {"CREATE", &ImapSession::cmd_create, kAuth | kSel},
    {"DELETE", &ImapSession::cmd_delete, kAuth | kSel},
    {"RENAME", &ImapSession::cmd_rename, kAuth | kSel},
    {"STATUS", &ImapSession::cmd_status, kAuth | kSel},
    {"SELECT", &ImapSession::cmd_select, kAuth | kSel},
    {"EXAMINE", &ImapSession::cmd_examine, kAuth | kSel},
    {"APPEND", &ImapSession::cmd_append, kAuth | kSel},
    {"IDLE", &ImapSession::cmd_idle, kAuth | kSel},
    {"UNSELECT", &ImapSession::cmd_unselect, kSel},
    {"CLOSE", &ImapSession::cmd_close, kSel},
    {"CHECK", &ImapSession::cmd_check, kSel},
    {"EXPUNGE", &ImapSession::cmd_expunge, kSel},
    {"UID EXPUNGE", &ImapSession::cmd_uid_expunge, kSel},
    {"FETCH", &ImapSession::cmd_fetch, kSel},
    {"UID FETCH", &ImapSession::cmd_uid_fetch, kSel},
    {"STORE", &ImapSession::cmd_store, kSel},
    {"UID STORE", &ImapSession::cmd_uid_store, kSel},
    {"COPY", &ImapSession::cmd_copy, kSel},
    {"UID COPY", &ImapSession::cmd_uid_copy, kSel},
    {"MOVE", &ImapSession::cmd_move, kSel},
    {"SEARCH", &ImapSession::cmd_search, kSel},
    {"UID SEARCH", &ImapSession::cmd_uid_search, kSel},
    {"UID MOVE", &ImapSession::cmd_uid_move, kSel},
};

ImapSession::ImapSession(const ImapConfig& config, bool tls_active)
    : cfg_(config), reader_(config.limits), tls_(tls_active), alive_(std::make_shared<bool>(true)) {}

ImapSession::~ImapSession() { *alive_ = false; }

void ImapSession::greet() {
  untagged("OK [CAPABILITY " + std::string(tls_ ? "IMAP4rev2 IMAP4rev1 AUTH=PLAIN" : "IMAP4rev2 IMAP4rev1 STARTTLS LOGINDISABLED") +
           "] " + cfg_.hostname + " IMAP ready");
}

void ImapSession::receive(std::string_view bytes) {
  if (state_ == State::kLogout) return;
  reader_.feed(bytes);
  process();
}

std::string ImapSession::take_output() { return std::exchange(out_, {}); }

void ImapSession::untagged(std::string_view text) {
  out_ += "* ";
  out_ += text;
  out_ += "\r\n";
}

void ImapSession::ok(const std::string& tag, std::string_view text) {
  out_ += tag + " OK " + std::string(text) + "\r\n";
}

void ImapSession::no(const std::string& tag, std::string_view text) {
  out_ += tag + " NO " + std::string(text) + "\r\n";
}

void ImapSession::bad(const std::string& tag, std::string_view text) {
  out_ += tag + " BAD " + std::string(text) + "\r\n";
  if (++bad_ >= cfg_.max_bad_commands) {
    untagged("BYE Too many bad commands");
    closing_ = true;
    state_ = State::kLogout;
  }
}

void ImapSession::busy() { busy_ = true; }

void ImapSession::resume() {
  busy_ = false;
  process();
}

void ImapSession::process() {
  while (state_ != State::kLogout && !busy_ && wait_ == ImapWait::kNone) {
    if (idle_tag_) {
      auto line = reader_.next_line();
      if (!line) return;
      if (!core::iequals(*line, "DONE")) {
        bad(*idle_tag_, "Expected DONE");
      } else {
        ok(*idle_tag_, "IDLE terminated");
      }
      idle_tag_.reset();
      continue;
    }
    if (authenticate_tag_) {
      auto line = reader_.next_line();
      if (!line) return;
      const std::string tag = *std::exchange(authenticate_tag_, std::nullopt);
      if (*line == "*") {
        bad(tag, "AUTHENTICATE cancelled");
        continue;
      }
      auto creds = core::decode_sasl_plain(*line);
      if (!creds) {
        bad(tag, "Malformed AUTHENTICATE PLAIN response");
        continue;
      }
      auth_ = {std::move(creds->login), std::move(creds->password)};
      auth_tag_ = tag;
      wait_ = ImapWait::kAuth;
      return;
    }
    auto e = reader_.next();
    switch (e.kind) {
      case ImapReader::Event::Kind::kNone:
        return;
      case ImapReader::Event::Kind::kContinue:
        out_ += "+ Ready for literal data\r\n";
        continue;
      case ImapReader::Event::Kind::kError:
        bad(e.error.tag, e.error.reason);
        continue;
      case ImapReader::Event::Kind::kCommand:
        dispatch(std::move(e.command));
        continue;
    }
  }
}

void ImapSession::dispatch(ImapCommand cmd) {
  for (const Command& c : kCommands) {
    if (cmd.name != c.name) continue;
    const unsigned bit = state_ == State::kNotAuthenticated ? kNotAuth
                         : state_ == State::kAuthenticated  ? kAuth
                                                            : kSel;
    if (!(c.states & bit)) {
      return bad(cmd.tag, state_ == State::kNotAuthenticated ? "Log in first"
                          : state_ == State::kAuthenticated  ? "Select a mailbox first"
                                                             : "Not valid in this state");
    }
    return (this->*c.handler)(cmd);
  }
  bad(cmd.tag, "Unknown command " + cmd.name);
}

// --- any state ------------------------------------------------------------------------------

void ImapSession::cmd_capability(ImapCommand& c) {
  std::string caps = "CAPABILITY IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE NAMESPACE ID "
                     "UNSELECT UIDPLUS MOVE SPECIAL-USE CHILDREN ESEARCH SEARCHRES";
  caps += tls_ ? " AUTH=PLAIN" : (cfg_.starttls_available ? " STARTTLS LOGINDISABLED" : " LOGINDISABLED");
  untagged(caps);
  ok(c.tag, "CAPABILITY completed");
}

void ImapSession::cmd_noop(ImapCommand& c) {
  if (state_ == State::kSelected) refresh(true);
  ok(c.tag, "NOOP completed");
}

void ImapSession::cmd_check(ImapCommand& c) {
  refresh(true);
  ok(c.tag, "CHECK completed");
}

void ImapSession::cmd_logout(ImapCommand& c) {
  untagged("BYE Logging out");
  ok(c.tag, "LOGOUT completed");
  closing_ = true;
  state_ = State::kLogout;
}

void ImapSession::cmd_id(ImapCommand& c) {
  untagged("ID (\"name\" \"Porter\")");
  ok(c.tag, "ID completed");
}

// --- not authenticated ----------------------------------------------------------------------

void ImapSession::cmd_starttls(ImapCommand& c) {
  if (tls_) return bad(c.tag, "TLS is already active");
  if (!cfg_.starttls_available) return no(c.tag, "STARTTLS is not available");
  ok(c.tag, "Begin TLS negotiation now");
  wait_ = ImapWait::kStartTls;
}

void ImapSession::on_tls_started() {
  wait_ = ImapWait::kNone;
  tls_ = true;
  // RFC 9051 §6.2.1: anything the client sent after STARTTLS before the handshake is dropped.
  reader_.discard_buffered();
  process();
}

void ImapSession::cmd_login(ImapCommand& c) {
  if (!tls_) return no(c.tag, "[PRIVACYREQUIRED] Log in only after STARTTLS");
  if (c.args.size() != 2 || !c.args[0].is_astring() || !c.args[1].is_astring())
    return bad(c.tag, "LOGIN needs a user name and a password");
  auth_ = {c.args[0].text, c.args[1].text};
  auth_tag_ = c.tag;
  wait_ = ImapWait::kAuth;
}

void ImapSession::cmd_authenticate(ImapCommand& c) {
  if (c.args.empty() || !c.args[0].is_atom("PLAIN"))
    return no(c.tag, "[CANNOT] Only AUTHENTICATE PLAIN is supported");
  if (!tls_) return no(c.tag, "[PRIVACYREQUIRED] Log in only after STARTTLS");
  if (c.args.size() == 1) {
    out_ += "+ \r\n";
    authenticate_tag_ = c.tag;
    return;
  }
  auto creds = core::decode_sasl_plain(c.args[1].text);
  if (!creds) return bad(c.tag, "Malformed AUTHENTICATE PLAIN response");
  auth_ = {std::move(creds->login), std::move(creds->password)};
  auth_tag_ = c.tag;
  wait_ = ImapWait::kAuth;
}

void ImapSession::on_auth(std::optional<std::string> user, ImapBackend* backend,
                          std::string_view refusal) {
  wait_ = ImapWait::kNone;
  auth_.password.assign(auth_.password.size(), '\0');
  auth_ = {};
  const std::string tag = std::exchange(auth_tag_, {});
  if (user && backend) {
    user_ = std::move(*user);
    backend_ = backend;
    state_ = State::kAuthenticated;
    ok(tag, "[CAPABILITY IMAP4rev2 IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE NAMESPACE ID UNSELECT "
            "UIDPLUS MOVE SPECIAL-USE CHILDREN ESEARCH SEARCHRES] Logged in");
  } else {
    no(tag, refusal.empty() ? "[AUTHENTICATIONFAILED] Authentication failed" : refusal);
  }
  process();
}

// --- authenticated --------------------------------------------------------------------------

void ImapSession::cmd_enable(ImapCommand& c) {
  std::string enabled;
  for (const auto& a : c.args) {
    if (a.is_atom("IMAP4rev2") && !rev2_) {
      rev2_ = true;
      enabled += " IMAP4rev2";
    }
  }
  untagged("ENABLED" + enabled);
  ok(c.tag, "ENABLE completed");
}

void ImapSession::cmd_namespace(ImapCommand& c) {
  untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
  ok(c.tag, "NAMESPACE completed");
}

void ImapSession::cmd_list(ImapCommand& c) { list_like(c, false, false); }
void ImapSession::cmd_lsub(ImapCommand& c) { list_like(c, true, true); }

void ImapSession::list_like(ImapCommand& c, bool subscribed_only, bool lsub) {
  // LIST [(selection)] reference pattern [RETURN (...)]: the selection and return options of
  // RFC 5258 are read for SUBSCRIBED and SPECIAL-USE; others are ignored.
  size_t i = 0;
  bool special_only = false;
  if (!lsub && i < c.args.size() && c.args[i].kind == ImapValue::Kind::kList) {
    for (const auto& o : c.args[i].items) {
      if (o.is_atom("SUBSCRIBED")) subscribed_only = true;
      if (o.is_atom("SPECIAL-USE")) special_only = true;
    }
    ++i;
  }
  if (c.args.size() < i + 2 || !c.args[i].is_astring()) return bad(c.tag, "LIST needs a reference and a pattern");
  const std::string ref = c.args[i].text;
  std::vector<std::string> patterns;
  if (c.args[i + 1].kind == ImapValue::Kind::kList) {
    for (const auto& p : c.args[i + 1].items) patterns.push_back(ref + p.text);
  } else {
    patterns.push_back(ref + c.args[i + 1].text);
  }
  const char* verb = lsub ? "LSUB" : "LIST";
  if (patterns.size() == 1 && c.args[i + 1].text.empty()) {
    untagged(std::string(verb) + " (\\Noselect) \"/\" \"\"");
    return ok(c.tag, std::string(verb) + " completed");
  }
  auto boxes = backend_->mailboxes();
  if (!boxes) return no(c.tag, "[SERVERBUG] " + boxes.status().message());
  for (const ImapMailboxInfo& b : *boxes) {
    if (subscribed_only && !b.subscribed) continue;
    bool special = false;
    for (const auto& a : b.attributes)
      if (a != "\\HasChildren" && a != "\\HasNoChildren" && a != "\\Noselect" &&
          a != "\\NonExistent")
        special = true;
    if (special_only && !special) continue;
    bool match = false;
    for (const auto& p : patterns) match |= pattern_matches(p, b.name);
    if (!match) continue;
    std::string attrs;
    for (const auto& a : b.attributes) {
      if (!attrs.empty()) attrs += ' ';
      attrs += a;
    }
    if (b.subscribed && !lsub) attrs += attrs.empty() ? "\\Subscribed" : " \\Subscribed";
    untagged(std::string(verb) + " (" + attrs + ") \"/\" " + quoted(b.name));
  }
  ok(c.tag, std::string(verb) + " completed");
}

void ImapSession::simple_write(ImapCommand& c, std::string_view what,
                               const std::function<void(ImapBackend::Done)>& start) {
  busy();
  std::weak_ptr<bool> alive = alive_;
  start([this, alive, tag = c.tag, what = std::string(what)](core::Status s) {
    if (alive.expired()) return;
    if (s) {
      ok(tag, what + " completed");
    } else if (s.kind() == core::Status::Kind::kNotFound) {
      no(tag, "[NONEXISTENT] " + s.message());
    } else if (s.kind() == core::Status::Kind::kInvalid ||
               s.kind() == core::Status::Kind::kPermanent) {
      no(tag, "[CANNOT] " + s.message());
    } else {
      no(tag, "[SERVERBUG] " + s.message());
    }
    resume();
  });
}

void ImapSession::cmd_subscribe(ImapCommand& c) {
  if (c.args.size() != 1 || !c.args[0].is_astring()) return bad(c.tag, "SUBSCRIBE needs a mailbox");
  const std::string name = canonical(c.args[0].text);
  simple_write(c, "SUBSCRIBE", [this, name](ImapBackend::Done d) { backend_->subscribe(name, true, d); });
}

void ImapSession::cmd_unsubscribe(ImapCommand& c) {
  if (c.args.size() != 1 || !c.args[0].is_astring()) return bad(c.tag, "UNSUBSCRIBE needs a mailbox");
  const std::string name = canonical(c.args[0].text);
  simple_write(c, "UNSUBSCRIBE", [this, name](ImapBackend::Done d) { backend_->subscribe(name, false, d); });
}

void ImapSession::cmd_create(ImapCommand& c) {
  if (c.args.empty() || !c.args[0].is_astring()) return bad(c.tag, "CREATE needs a mailbox");
  std::string name = canonical(c.args[0].text);
  if (!name.empty() && name.back() == '/') name.pop_back();  // RFC 9051 §6.3.4
  if (name == "INBOX" || backend_->status(name))
    return no(c.tag, "[ALREADYEXISTS] Mailbox exists");
  simple_write(c, "CREATE", [this, name](ImapBackend::Done d) { backend_->create(name, d); });
}

void ImapSession::cmd_delete(ImapCommand& c) {
  if (c.args.size() != 1 || !c.args[0].is_astring()) return bad(c.tag, "DELETE needs a mailbox");
  const std::string name = canonical(c.args[0].text);
  if (name == "INBOX") return no(c.tag, "[CANNOT] INBOX cannot be deleted");
  if (state_ == State::kSelected && name == selected_) {
    // Deleting the selected mailbox ends the selection (RFC 9051 §6.3.5 leaves it open).
    state_ = State::kAuthenticated;
    selected_.clear();
    view_.clear();
  }
  simple_write(c, "DELETE", [this, name](ImapBackend::Done d) { backend_->remove(name, d); });
}

void ImapSession::cmd_rename(ImapCommand& c) {
  if (c.args.size() != 2 || !c.args[0].is_astring() || !c.args[1].is_astring())
    return bad(c.tag, "RENAME needs two mailboxes");
  const std::string from = canonical(c.args[0].text), to = canonical(c.args[1].text);
  if (to == "INBOX" || backend_->status(to)) return no(c.tag, "[ALREADYEXISTS] Mailbox exists");
  simple_write(c, "RENAME", [this, from, to](ImapBackend::Done d) { backend_->rename(from, to, d); });
}

void ImapSession::cmd_status(ImapCommand& c) {
  if (c.args.size() != 2 || !c.args[0].is_astring() || c.args[1].kind != ImapValue::Kind::kList)
    return bad(c.tag, "STATUS needs a mailbox and a list of items");
  const std::string name = canonical(c.args[0].text);
  auto st = backend_->status(name);
  if (!st) return no(c.tag, mailbox_refusal(st.status()));
  std::string items;
  for (const auto& i : c.args[1].items) {
    std::string v;
    if (i.is_atom("MESSAGES")) v = "MESSAGES " + std::to_string(st->messages);
    else if (i.is_atom("UIDNEXT")) v = "UIDNEXT " + std::to_string(st->uidnext);
    else if (i.is_atom("UIDVALIDITY")) v = "UIDVALIDITY " + std::to_string(st->uidvalidity);
    else if (i.is_atom("UNSEEN")) v = "UNSEEN " + std::to_string(st->unseen);
    else if (i.is_atom("DELETED")) v = "DELETED " + std::to_string(st->deleted);
    else if (i.is_atom("SIZE")) v = "SIZE " + std::to_string(st->size);
    else if (i.is_atom("RECENT")) v = "RECENT 0";
    else return bad(c.tag, "Unknown STATUS item " + i.text);
    if (!items.empty()) items += ' ';
    items += v;
  }
  untagged("STATUS " + quoted(name) + " (" + items + ")");
  ok(c.tag, "STATUS completed");
}

void ImapSession::cmd_select(ImapCommand& c) { open_mailbox(c, false); }
void ImapSession::cmd_examine(ImapCommand& c) { open_mailbox(c, true); }

void ImapSession::open_mailbox(ImapCommand& c, bool read_only) {
  if (c.args.empty() || !c.args[0].is_astring()) return bad(c.tag, "SELECT needs a mailbox");
  if (state_ == State::kSelected) untagged("OK [CLOSED] Previous mailbox closed");
  state_ = State::kAuthenticated;
  selected_.clear();
  view_.clear();
  saved_uids_.clear();  // RFC 5182 §2.1
  const std::string name = canonical(c.args[0].text);
  auto st = backend_->status(name);
  if (!st) return no(c.tag, mailbox_refusal(st.status()));
  backend_->selecting(name, st->messages);
  auto msgs = backend_->messages(name);
  if (!msgs) return no(c.tag, "[SERVERBUG] " + msgs.status().message());
  view_ = std::move(*msgs);
  selected_ = name;
  read_only_ = read_only;
  uidvalidity_ = st->uidvalidity;
  changed_ = false;
  state_ = State::kSelected;
  untagged(std::to_string(view_.size()) + " EXISTS");
  if (!rev2_) untagged("0 RECENT");
  untagged("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
  untagged(std::string("OK [PERMANENTFLAGS (") +
           (read_only ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*") +
           ")] Flags permitted");
  untagged("OK [UIDVALIDITY " + std::to_string(st->uidvalidity) + "] UIDs valid");
  untagged("OK [UIDNEXT " + std::to_string(st->uidnext) + "] Predicted next UID");
  if (!rev2_) {
    for (size_t i = 0; i < view_.size(); ++i) {
      if (!(view_[i].flags.system & kImapSeen)) {
        untagged("OK [UNSEEN " + std::to_string(i + 1) + "] First unseen");
        break;
      }
    }
  }
  ok(c.tag, read_only ? "[READ-ONLY] EXAMINE completed" : "[READ-WRITE] SELECT completed");
}

void ImapSession::cmd_unselect(ImapCommand& c) {
  state_ = State::kAuthenticated;
  selected_.clear();
  view_.clear();
  ok(c.tag, "UNSELECT completed");
}

void ImapSession::cmd_close(ImapCommand& c) {
  // CLOSE expunges silently (RFC 9051 §6.4.1), then leaves the selected state.
  std::vector<uint32_t> uids;
  if (!read_only_)
    for (const auto& m : view_)
      if (m.flags.system & kImapDeleted) uids.push_back(m.uid);
  const std::string name = selected_;
  state_ = State::kAuthenticated;
  selected_.clear();
  view_.clear();
  if (uids.empty()) return ok(c.tag, "CLOSE completed");
  simple_write(c, "CLOSE", [this, name, uids](ImapBackend::Done d) { backend_->expunge(name, uids, d); });
}

void ImapSession::cmd_append(ImapCommand& c) {
  // APPEND mailbox [flags] [date-time] literal
  if (c.args.size() < 2 || !c.args[0].is_astring() || !c.args.back().literal)
    return bad(c.tag, "APPEND needs a mailbox and a message literal");
  const std::string name = canonical(c.args[0].text);
  ImapFlags flags;
  int64_t date = -1;
  for (size_t i = 1; i + 1 < c.args.size(); ++i) {
    if (c.args[i].kind == ImapValue::Kind::kList) {
      auto f = parse_flags(c.args[i]);
      if (!f) return bad(c.tag, "Bad flag list");
      flags = *f;
    } else if (c.args[i].kind == ImapValue::Kind::kString) {
      auto d = parse_date_time(c.args[i].text);
      if (!d) return bad(c.tag, "Bad date-time");
      date = *d;
    } else {
      return bad(c.tag, "Unexpected APPEND argument");
    }
  }
  std::string bytes = std::move(c.args.back().text);
  if (bytes.empty()) return no(c.tag, "[CANNOT] Empty message");
  busy();
  std::weak_ptr<bool> alive = alive_;
  backend_->append(name, std::move(bytes), flags, date,
                   [this, alive, tag = c.tag](core::Result<std::pair<uint32_t, uint32_t>> r) {
                     if (alive.expired()) return;
                     if (r) {
                       ok(tag, "[APPENDUID " + std::to_string(r->first) + " " +
                                   std::to_string(r->second) + "] APPEND completed");
                     } else if (r.status().kind() == core::Status::Kind::kNotFound) {
                       no(tag, "[TRYCREATE] No such mailbox");
                     } else {
                       no(tag, "[CANNOT] " + r.status().message());
                     }
                     if (state_ == State::kSelected) refresh(false);
                     resume();
                   });
}

void ImapSession::cmd_idle(ImapCommand& c) {
  if (state_ == State::kSelected) refresh(true);
  out_ += "+ idling\r\n";
  idle_tag_ = c.tag;
}

void ImapSession::on_mailbox_changed(std::string_view mailbox) {
  if (state_ != State::kSelected || canonical(mailbox) != selected_) return;
  changed_ = true;
  // During IDLE the client waits for exactly this (RFC 2177); otherwise it comes with the
  // next command's reply.
  if (idle_tag_ && !busy_) refresh(true);
}

void ImapSession::on_timeout() {
  if (closing_) return;
  untagged("BYE Autologout; idle for too long");
  closing_ = true;
  state_ = State::kLogout;
}

// --- selected ---------------------------------------------------------------------------------

bool ImapSession::writable(const std::string& tag) {
  if (!read_only_) return true;
  no(tag, "[READ-ONLY] The mailbox is selected read-only");
  return false;
}

void ImapSession::refresh(bool expunges_allowed) {
  if (state_ != State::kSelected) return;
  auto msgs = backend_->messages(selected_);
  if (!msgs) return;
  changed_ = false;
  const std::vector<ImapMessageMeta>& now = *msgs;
  // Expunges first, from the highest sequence number down so each number is still right
  // when it is sent.
  std::set<uint32_t> present;
  for (const auto& m : now) present.insert(m.uid);
  if (expunges_allowed) {
    for (size_t i = view_.size(); i-- > 0;) {
      if (!present.count(view_[i].uid)) {
        untagged(std::to_string(i + 1) + " EXPUNGE");
        view_.erase(view_.begin() + static_cast<long>(i));
      }
    }
  }
  // Flag changes of messages the client knows.
  size_t j = 0;
  for (size_t i = 0; i < view_.size(); ++i) {
    while (j < now.size() && now[j].uid < view_[i].uid) ++j;
    if (j < now.size() && now[j].uid == view_[i].uid && now[j].flags != view_[i].flags) {
      view_[i].flags = now[j].flags;
      view_[i].modseq = now[j].modseq;
      untagged(std::to_string(i + 1) + " FETCH (UID " + std::to_string(view_[i].uid) + " FLAGS " +
               flags_text(view_[i].flags) + ")");
    }
  }
  // New messages.
  const uint32_t last = view_.empty() ? 0 : view_.back().uid;
  const size_t before = view_.size();
  for (const auto& m : now)
    if (m.uid > last) view_.push_back(m);
  if (view_.size() != before) untagged(std::to_string(view_.size()) + " EXISTS");
}

std::optional<std::vector<size_t>> ImapSession::resolve_set(const ImapValue& arg, bool uid,
                                                            const std::string& tag) {
  auto set = arg.kind == ImapValue::Kind::kAtom ? parse_sequence_set(arg.text) : std::nullopt;
  if (!set) {
    bad(tag, "Bad sequence set");
    return std::nullopt;
  }
  std::vector<size_t> out;
  if (set->saved) {  // "$": the messages of the last SEARCH RETURN (SAVE) still here
    for (size_t i = 0; i < view_.size(); ++i)
      if (std::binary_search(saved_uids_.begin(), saved_uids_.end(), view_[i].uid)) out.push_back(i);
    return out;
  }
  const auto n = static_cast<uint32_t>(view_.size());
  // Range by range, so a set of many ranges costs what it names, not ranges x messages.
  for (const auto& r : set->ranges) {
    if (uid) {
      const uint32_t star = view_.empty() ? 0 : view_.back().uid;
      uint32_t a = r.first == 0 ? star : r.first, b = r.last == 0 ? star : r.last;
      if (a > b) std::swap(a, b);
      for (size_t i = index_at_or_after(a); i < view_.size() && view_[i].uid <= b; ++i)
        out.push_back(i);
    } else {
      uint32_t a = r.first == 0 ? n : r.first, b = r.last == 0 ? n : r.last;
      if (a > b) std::swap(a, b);
      if (b > n || n == 0) {
        bad(tag, "Sequence number out of range");
        return std::nullopt;
      }
      for (uint32_t seq = a; seq <= b; ++seq) out.push_back(seq - 1);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

size_t ImapSession::index_at_or_after(uint32_t uid) const {
  return static_cast<size_t>(
      std::lower_bound(view_.begin(), view_.end(), uid,
                       [](const ImapMessageMeta& m, uint32_t u) { return m.uid < u; }) -
      view_.begin());
}

void ImapSession::apply_flag_changes(const std::vector<ImapMessageMeta>& changed) {
  for (const auto& c : changed) {
    const size_t i = index_at_or_after(c.uid);
    if (i >= view_.size() || view_[i].uid != c.uid) continue;
    view_[i].flags = c.flags;
    view_[i].modseq = c.modseq;
  }
}

std::vector<uint32_t> ImapSession::uids_of(const std::vector<size_t>& indexes) const {
  std::vector<uint32_t> out;
  for (size_t i : indexes) out.push_back(view_[i].uid);
  return out;
}

void ImapSession::cmd_expunge(ImapCommand& c) {
  if (!writable(c.tag)) return;
  std::vector<uint32_t> uids;
  for (const auto& m : view_)
    if (m.flags.system & kImapDeleted) uids.push_back(m.uid);
  expunge_uids(c.tag, std::move(uids), true);
}

void ImapSession::cmd_uid_expunge(ImapCommand& c) {
  if (!writable(c.tag)) return;
  if (c.args.size() != 1) return bad(c.tag, "UID EXPUNGE needs a UID set");
  auto idx = resolve_set(c.args[0], true, c.tag);
  if (!idx) return;
  std::vector<uint32_t> uids;
  for (size_t i : *idx)
    if (view_[i].flags.system & kImapDeleted) uids.push_back(view_[i].uid);
  expunge_uids(c.tag, std::move(uids), true);
}

void ImapSession::expunge_uids(const std::string& tag, std::vector<uint32_t> uids, bool) {
  if (uids.empty()) {
    refresh(true);
    return ok(tag, "EXPUNGE completed");
  }
  busy();
  std::weak_ptr<bool> alive = alive_;
  backend_->expunge(selected_, std::move(uids), [this, alive, tag](core::Status s) {
    if (alive.expired()) return;
    refresh(true);
    if (s) {
      ok(tag, "EXPUNGE completed");
    } else {
      no(tag, "[SERVERBUG] " + s.message());
    }
    resume();
  });
}

void ImapSession::cmd_fetch(ImapCommand& c) { fetch(c, false); }
void ImapSession::cmd_uid_fetch(ImapCommand& c) { fetch(c, true); }

void ImapSession::fetch(ImapCommand& c, bool uid) {
  using K = FetchItem::Kind;
  if (c.args.size() < 2) return bad(c.tag, "FETCH needs a sequence set and items");
  auto idx = resolve_set(c.args[0], uid, c.tag);
  if (!idx) return;
  std::vector<FetchItem> items;
  std::vector<const ImapValue*> raw;
  if (c.args[1].kind == ImapValue::Kind::kList) {
    for (const auto& v : c.args[1].items) raw.push_back(&v);
  } else {
    raw.push_back(&c.args[1]);
  }
  for (const ImapValue* v : raw) {
    if (v->kind != ImapValue::Kind::kAtom) return bad(c.tag, "Bad FETCH item");
    if (v->is_atom("ALL") || v->is_atom("FAST") || v->is_atom("FULL")) {
      auto plain = [](K k) { return FetchItem{k, false, {}, std::nullopt}; };
      items.push_back(plain(K::kFlags));
      items.push_back(plain(K::kInternalDate));
      items.push_back(plain(K::kSize));
      if (!v->is_atom("FAST")) items.push_back(plain(K::kEnvelope));
      if (v->is_atom("FULL")) items.push_back(plain(K::kBody));
      continue;
    }
    std::string why;
    auto item = parse_fetch_item(v->text, &why);
    if (!item) return bad(c.tag, why);
    items.push_back(*item);
  }
  if (uid && std::none_of(items.begin(), items.end(), [](const FetchItem& i) { return i.kind == K::kUid; }))
    items.insert(items.begin(), FetchItem{K::kUid, false, {}, std::nullopt});
  // Reading a body section without PEEK sets \Seen (RFC 9051 §6.4.5), before the reply so
  // that the FLAGS in it are right.
  bool sets_seen = false;
  for (const auto& i : items)
    sets_seen |= (i.kind == K::kSection && !i.peek) || i.kind == K::kRfc822 || i.kind == K::kRfc822Text;
  std::vector<uint32_t> unseen;
  if (sets_seen && !read_only_)
    for (size_t i : *idx)
      if (!(view_[i].flags.system & kImapSeen)) unseen.push_back(view_[i].uid);

  auto answer = [this, items, idx = *idx, tag = c.tag, uid]() {
    for (size_t i : idx) {
      if (i >= view_.size()) continue;
      const ImapMessageMeta& m = view_[i];
      std::string line = "* " + std::to_string(i + 1) + " FETCH (";
      std::optional<std::string> bytes;
      std::optional<mime::MessageTree> tree;
      std::optional<ImapMessageSummary> summary;
      bool first = true;
      bool failed = false;
      auto add = [&](const std::string& s) {
        if (!first) line += ' ';
        first = false;
        line += s;
      };
      auto need_bytes = [&] {
        return load_once(bytes, [&] { return backend_->message_bytes(selected_, m.uid); });
      };
      auto need_summary = [&] {
        return load_once(summary, [&] { return backend_->summary(selected_, m.uid); });
      };
      auto literal = [](std::string_view data) {
        return "{" + std::to_string(data.size()) + "}\r\n" + std::string(data);
      };
      for (const FetchItem& it : items) {
        switch (it.kind) {
          case K::kFlags: add("FLAGS " + flags_text(m.flags)); break;
          case K::kUid: add("UID " + std::to_string(m.uid)); break;
          case K::kInternalDate: add("INTERNALDATE " + imap_date_time(m.internal_date_ms)); break;
          case K::kSize: add("RFC822.SIZE " + std::to_string(m.size)); break;
          case K::kEnvelope:
            if (!need_summary()) { failed = true; break; }
            add("ENVELOPE " + summary->envelope);
            break;
          case K::kBodyStructure:
            if (!need_summary()) { failed = true; break; }
            add("BODYSTRUCTURE " + summary->bodystructure);
            break;
          case K::kBody:
            if (!need_summary()) { failed = true; break; }
            add("BODY " + summary->body);
            break;
          case K::kRfc822:
          case K::kRfc822Header:
          case K::kRfc822Text:
          case K::kSection: {
            if (!need_bytes()) { failed = true; break; }
            if (!tree) tree = mime::parse_message(*bytes);
            std::string spec = it.kind == K::kRfc822Header ? "HEADER"
                               : it.kind == K::kRfc822Text ? "TEXT"
                               : it.kind == K::kRfc822     ? ""
                                                           : it.section;
            auto parsed = mime::parse_section(spec);
            std::string data;
            if (parsed) {
              auto sec = mime::find_section(*bytes, *tree, *parsed);
              if (sec) data = std::string(sec->view(*bytes));
            }
            std::string name = it.kind == K::kRfc822         ? "RFC822"
                               : it.kind == K::kRfc822Header ? "RFC822.HEADER"
                               : it.kind == K::kRfc822Text   ? "RFC822.TEXT"
                                                             : "BODY[" + it.section + "]";
            if (it.partial) {
              const uint64_t origin = it.partial->first;
              data = origin >= data.size() ? std::string()
                                           : data.substr(origin, it.partial->second);
              name += "<" + std::to_string(origin) + ">";
            }
            add(name + " " + literal(data));
            break;
          }
        }
      }
      if (failed) {
        no(tag, "[SERVERBUG] A message could not be read");
        return;
      }
      out_ += line + ")\r\n";
    }
    (void)uid;
    ok(tag, "FETCH completed");
  };

  if (unseen.empty()) return answer();
  busy();
  std::weak_ptr<bool> alive = alive_;
  ImapFlags seen;
  seen.system = kImapSeen;
  backend_->set_flags(selected_, std::move(unseen), ImapStoreMode::kAdd, seen,
                      [this, alive, answer](core::Result<std::vector<ImapMessageMeta>> r) {
                        if (alive.expired()) return;
                        if (r) apply_flag_changes(*r);
                        answer();
                        resume();
                      });
}

SearchMessage ImapSession::search_message(size_t i) const {
  const ImapMessageMeta& m = view_[i];
  SearchMessage sm;
  sm.seq = static_cast<uint32_t>(i + 1);
  sm.uid = m.uid;
  sm.size = m.size;
  sm.internal_date_ms = m.internal_date_ms;
  sm.modseq = m.modseq;
  sm.flags = m.flags.system;
  sm.keywords = m.flags.keywords;
  return sm;
}

void ImapSession::cmd_search(ImapCommand& c) { search(c, false); }
void ImapSession::cmd_uid_search(ImapCommand& c) { search(c, true); }

void ImapSession::search(ImapCommand& c, bool uid) {
  auto program = parse_search(c.args, 0);
  if (!program) {
    saved_uids_.clear();  // RFC 5182 §2.1: a failed SEARCH empties the saved result
    if (program.status().kind() == core::Status::Kind::kPermanent)
      return no(c.tag, program.status().message());
    return bad(c.tag, program.status().message());
  }
  SearchContext ctx;
  ctx.max_seq = static_cast<uint32_t>(view_.size());
  ctx.max_uid = view_.empty() ? 0 : view_.back().uid;
  ctx.saved_uids = saved_uids_;
  // Flag, date, size and number keys are answered from the session's own list; when header
  // keys are ANDed with such keys, those filter first, so most messages never reach them.
  std::vector<bool> candidate(view_.size(), true);
  if (program->needs_summary && program->root.op == SearchOp::kAnd) {
    SearchProgram cheap;
    cheap.root.op = SearchOp::kAnd;
    for (const SearchKey& k : program->root.children)
      if (!reads_message_data(k, true)) cheap.root.children.push_back(k);
    if (!cheap.root.children.empty()) {
      for (size_t i = 0; i < view_.size(); ++i) candidate[i] = matches(cheap, search_message(i), ctx);
    }
  }
  core::Result<ImapSearchSnapshot> fields = ImapSearchSnapshot{};
  if (program->needs_summary) fields = backend_->search_fields(selected_);
  if (!fields) return no(c.tag, "[SERVERBUG] " + fields.status().message());
  ImapSearchCursor cursor(*fields);
  std::vector<uint32_t> matched, matched_uids;
  const ImapSearchFields none;
  for (size_t i = 0; i < view_.size(); ++i) {
    if (!candidate[i]) continue;
    const ImapMessageMeta& m = view_[i];
    const ImapSearchFields* found = cursor.seek(m.uid);
    const ImapSearchFields& f = found ? *found : none;
    SearchMessage sm = search_message(i);
    sm.from = f.get(ImapSearchFields::kFrom);
    sm.to = f.get(ImapSearchFields::kTo);
    sm.cc = f.get(ImapSearchFields::kCc);
    sm.bcc = f.get(ImapSearchFields::kBcc);
    sm.subject = f.get(ImapSearchFields::kSubject);
    sm.message_id = f.get(ImapSearchFields::kMessageId);
    sm.sent_date_ms = f.sent_date_ms();
    if (program->needs_body || program->needs_header) {
      const uint32_t message_uid = m.uid;
      sm.whole_message = [this, message_uid]() {
        auto b = backend_->message_bytes(selected_, message_uid);
        return b ? std::move(*b) : std::string();
      };
      sm.header_section = [whole = sm.whole_message]() {
        std::string bytes = whole();
        const size_t end = bytes.find("\r\n\r\n");
        return end == std::string::npos ? bytes : bytes.substr(0, end + 2);
      };
    }
    if (!matches(*program, sm, ctx)) continue;
    matched.push_back(uid ? m.uid : sm.seq);
    matched_uids.push_back(m.uid);
  }
  if (program->returns & kReturnSave) saved_uids_ = result_to_save(*program, matched_uids);
  const std::string response = search_response(*program, c.tag, uid, rev2_, matched);
  if (!response.empty()) out_ += response;
  ok(c.tag, (uid ? "UID SEARCH" : "SEARCH") + std::string(" completed"));
}

void ImapSession::cmd_store(ImapCommand& c) { store(c, false); }
void ImapSession::cmd_uid_store(ImapCommand& c) { store(c, true); }

void ImapSession::store(ImapCommand& c, bool uid) {
  if (!writable(c.tag)) return;
  if (c.args.size() != 3 || c.args[1].kind != ImapValue::Kind::kAtom)
    return bad(c.tag, "STORE needs a sequence set, an action and flags");
  auto idx = resolve_set(c.args[0], uid, c.tag);
  if (!idx) return;
  std::string action = core::to_lower_ascii(c.args[1].text);
  const bool silent = action.size() > 7 && action.substr(action.size() - 7) == ".silent";
  if (silent) action.resize(action.size() - 7);
  ImapStoreMode mode;
  if (action == "flags") mode = ImapStoreMode::kReplace;
  else if (action == "+flags") mode = ImapStoreMode::kAdd;
  else if (action == "-flags") mode = ImapStoreMode::kRemove;
  else return bad(c.tag, "STORE action must be FLAGS, +FLAGS or -FLAGS");
  auto flags = parse_flags(c.args[2]);
  if (!flags) return bad(c.tag, "Bad flag list");
  std::vector<uint32_t> uids = uids_of(*idx);
  if (uids.empty()) return ok(c.tag, "STORE completed");
  busy();
  std::weak_ptr<bool> alive = alive_;
  backend_->set_flags(
      selected_, uids, mode, *flags,
      [this, alive, tag = c.tag, silent, uid, uids](core::Result<std::vector<ImapMessageMeta>> r) {
        if (alive.expired()) return;
        if (!r) {
          no(tag, "[SERVERBUG] " + r.status().message());
          return resume();
        }
        apply_flag_changes(*r);
        // The untagged FETCH of each message's flags (all stored ones, changed or not).
        if (!silent) {
          for (uint32_t u : uids) {
            const size_t i = index_at_or_after(u);
            if (i >= view_.size() || view_[i].uid != u) continue;
            out_ += "* " + std::to_string(i + 1) + " FETCH (" +
                    (uid ? "UID " + std::to_string(u) + " " : std::string()) + "FLAGS " +
                    flags_text(view_[i].flags) + ")\r\n";
          }
        }
        ok(tag, "STORE completed");
        resume();
      });
}

void ImapSession::cmd_copy(ImapCommand& c) { copy_or_move(c, false, false); }
void ImapSession::cmd_uid_copy(ImapCommand& c) { copy_or_move(c, true, false); }
void ImapSession::cmd_move(ImapCommand& c) { copy_or_move(c, false, true); }
void ImapSession::cmd_uid_move(ImapCommand& c) { copy_or_move(c, true, true); }

void ImapSession::copy_or_move(ImapCommand& c, bool uid, bool move) {
  if (move && !writable(c.tag)) return;
  if (c.args.size() != 2 || !c.args[1].is_astring())
    return bad(c.tag, "COPY needs a sequence set and a mailbox");
  auto idx = resolve_set(c.args[0], uid, c.tag);
  if (!idx) return;
  std::vector<uint32_t> uids = uids_of(*idx);
  const std::string verb = move ? "MOVE" : "COPY";
  if (uids.empty()) return ok(c.tag, verb + " completed");
  const std::string to = canonical(c.args[1].text);
  busy();
  std::weak_ptr<bool> alive = alive_;
  backend_->copy(
      selected_, uids, to, move,
      [this, alive, tag = c.tag, verb, move](core::Result<ImapBackend::Copied> r) {
        if (alive.expired()) return;
        if (!r) {
          if (r.status().kind() == core::Status::Kind::kNotFound)
            no(tag, "[TRYCREATE] No such mailbox");
          else
            no(tag, "[SERVERBUG] " + r.status().message());
          return resume();
        }
        std::vector<uint32_t> sources, targets;
        for (const auto& [source, target] : r->second) {
          sources.push_back(source);
          targets.push_back(target);
        }
        auto set_text = [](const std::vector<uint32_t>& v) {
          std::string s;
          for (uint32_t u : v) s += (s.empty() ? "" : ",") + std::to_string(u);
          return s;
        };
        const std::string copyuid = "COPYUID " + std::to_string(r->first) + " " +
                                    set_text(sources) + " " + set_text(targets);
        if (move) {
          // RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges.
          untagged("OK [" + copyuid + "] Moved");
          refresh(true);
          ok(tag, verb + " completed");
        } else {
          ok(tag, "[" + copyuid + "] " + verb + " completed");
        }
        resume();
      });
}

}  // namespace mta::access
