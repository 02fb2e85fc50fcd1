#include "mta/local_delivery.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "core/address.h"
#include "mta/mime/address_list.h"
#include "mta/mime/encoded_words.h"
#include "mta/mime/header_section.h"
#include "mta/mime/imap_structure.h"
#include "mta/mime/mime_tree.h"
#include "queue/store.h"

namespace mta {
namespace {

using Kind = AttemptOutcome::Kind;

AttemptOutcome outcome(size_t rcpt, Kind kind, std::string reply, std::string status) {
  AttemptOutcome o;
  o.rcpt = rcpt;
  o.kind = kind;
  o.reply = std::move(reply);
  o.status = std::move(status);
  o.local = true;
  return o;
}

}  // namespace

std::string local_delivery_prefix(const core::Address& sender, const core::Address& recipient) {
  return "Return-Path: <" + sender.str() + ">\r\nDelivered-To: " + recipient.str() + "\r\n";
}

LocalDelivery::LocalDelivery(mailbox::Store& store, const queue::Db& db)
    : store_(store), db_(db) {}

LocalDelivery::Plan LocalDelivery::plan(const policy::LocalRecipients& recipients,
                                        const queue::MessageRecord& record,
                                        const std::vector<size_t>& rcpts) const {
  const core::Envelope& env = record.envelope;
  Plan plan;
  plan.mailbox = env.quarantine ? "Junk" : std::string(mailbox::kInbox);
  for (size_t i : rcpts) {
    const core::Address& to = env.recipients.at(i).address;
    const std::string who = "<" + to.str() + ">";
    const std::vector<std::string> users = recipients.resolve(to);
    if (users.empty()) {
      plan.outcomes.push_back(
          outcome(i, Kind::kPermanent, "550 5.1.1 " + who + ": no such user here", "5.1.1"));
      continue;
    }
    const uint64_t incoming = record.body_size + local_delivery_prefix(env.sender, to).size();
    std::optional<AttemptOutcome> refused;
    for (const std::string& user : users) {
      // Read even without a quota: a mailbox the store cannot read defers here, on the retry
      // schedule, instead of failing the settle (which would retry at once).
      auto used = store_.bytes_used(user);
      if (!used) {
        refused = outcome(i, Kind::kTemporary,
                          "451 4.3.0 " + who + ": cannot read the mailbox of " + user + ": " +
                              used.status().message(),
                          "4.3.0");
        break;
      }
      const uint64_t quota = recipients.quota_bytes(user);
      if (quota > 0 && *used + incoming > quota) {
        refused = outcome(i, Kind::kTemporary, "452 4.2.2 " + who + ": mailbox full", "4.2.2");
        break;
      }
    }
    if (refused) {
      plan.outcomes.push_back(std::move(*refused));
      continue;
    }
    plan.outcomes.push_back(outcome(
        i, Kind::kDelivered, "250 2.0.0 " + who + ": delivered to " + plan.mailbox, "2.0.0"));
    for (const std::string& user : users) plan.copies.push_back({i, user});
  }
  return plan;
}

std::shared_ptr<LocalDelivery::Appends> LocalDelivery::prepare(const queue::MessageRecord& record,
                                                               Plan& plan, int64_t now_ms) const {
  if (plan.copies.empty()) return nullptr;
  const core::Envelope& env = record.envelope;
  auto prefix = [&](const Copy& c) {
    return local_delivery_prefix(env.sender, env.recipients.at(c.rcpt).address);
  };
  std::shared_ptr<Appends> a(new Appends(store_));
  a->message_ = prefix(plan.copies[0]);
  const size_t prefix_size = a->message_.size();
  a->message_.reserve(prefix_size + record.body_size);
  auto s = queue::read_body_chunks(db_, record.id, [&](std::string_view chunk) {
    a->message_ += chunk;
    return true;
  });
  if (!s) {
    for (AttemptOutcome& o : plan.outcomes) {
      if (o.kind != Kind::kDelivered) continue;
      o = outcome(o.rcpt, Kind::kTemporary,
                  "451 4.3.0 cannot read the queued message: " + s.message(), "4.3.0");
    }
    plan.copies.clear();
    return nullptr;
  }
  const mailbox::ImapData imap = imap_data_of(a->message_);
  for (size_t i = 1; i < plan.copies.size(); ++i) a->prefixes_.push_back(prefix(plan.copies[i]));
  // Views into message_ and prefixes_, which no longer change.
  const std::string_view body = std::string_view(a->message_).substr(prefix_size);
  for (size_t i = 0; i < plan.copies.size(); ++i) {
    mailbox::Append append;
    append.user = plan.copies[i].user;
    append.mailbox = plan.mailbox;
    append.internal_date_ms = now_ms;
    if (i == 0)
      append.parts = {a->message_};
    else
      append.parts = {a->prefixes_[i - 1], body};
    append.imap = imap;
    append.create_standard = true;  // a Junk the user deleted comes back for quarantined mail
    a->appends_.push_back(std::move(append));
  }
  return a;
}

void LocalDelivery::Appends::stage(rocksdb::WriteBatch& batch) {
  auto r = store_.stage_appends(batch, appends_, changes_);
  if (!r) throw std::runtime_error(r.status().to_string());
  appended_ = std::move(r).value();
  appends_.clear();
  std::string().swap(message_);  // the batch holds the bytes now
  prefixes_.clear();
}

void LocalDelivery::Appends::settled(const core::Status& status) {
  store_.notify_committed(changes_, status);
}

namespace {

// "Name <local@domain>, ..." of every field called `name`, display names decoded.
std::string addresses_utf8(const std::vector<mime::FieldLines>& fields, std::string_view name) {
  std::string out;
  bool group_open = false;  // the next member follows a group's "Name:" directly
  for (const mime::FieldLines& f : fields) {
    if (!core::iequals(f.name, name)) continue;
    const std::vector<mime::MailAddress> list = mime::parse_address_list(f.value);
    if (list.empty()) {
      if (const std::string text = mime::decode_header_value(f.value); !text.empty())
        out += (out.empty() ? "" : ", ") + text;
      continue;
    }
    for (const mime::MailAddress& a : list) {
      using K = mime::MailAddress::Kind;
      if (a.kind == K::kGroupEnd) {
        out += ';';
        group_open = false;
        continue;
      }
      if (!out.empty()) out += group_open ? " " : ", ";
      group_open = false;
      const std::string display = mime::decode_encoded_words(a.name);
      if (a.kind == K::kGroupStart) {
        out += display + ":";
        group_open = true;
        continue;
      }
      const std::string address = a.host.empty() ? a.mailbox : a.mailbox + "@" + a.host;
      out += display.empty() ? address : display + " <" + address + ">";
    }
  }
  return out;
}

std::string first_decoded(const std::vector<mime::FieldLines>& fields, std::string_view name) {
  const mime::FieldLines* f = mime::find_field(fields, name);
  return f == nullptr ? std::string() : mime::decode_header_value(f->value);
}

}  // namespace

mailbox::ImapData imap_data_of(std::string_view message) {
  const mime::MessageTree tree = mime::parse_message(message);
  mailbox::ImapData d;
  d.structure.envelope = mime::imap_envelope(message, tree.root, false);
  d.structure.body_structure = mime::imap_body_structure(message, tree.root, true, false);
  d.structure.body = mime::imap_body_structure(message, tree.root, false, false);
  const mime::HeaderSection header = mime::read_header_section(tree.root.header.of(message));
  mailbox::SearchSummary& m = d.summary;
  m.from = addresses_utf8(header.fields, "From");
  m.to = addresses_utf8(header.fields, "To");
  m.cc = addresses_utf8(header.fields, "Cc");
  m.bcc = addresses_utf8(header.fields, "Bcc");
  m.subject = first_decoded(header.fields, "Subject");
  m.message_id = first_decoded(header.fields, "Message-ID");
  if (const mime::FieldLines* date = mime::find_field(header.fields, "Date"))
    m.date_ms = parse_rfc5322_date(mime::unfold_value(date->value)).value_or(0);
  return d;
}

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int number(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// Words of a date: comments dropped, split at blanks and commas.
std::vector<std::string_view> date_tokens(std::string_view v, std::string& storage) {
  storage.clear();
  int depth = 0;
  for (char c : v) {
    if (c == '(') ++depth;
    if (depth == 0) storage += (c == ',' || c == '\t' || c == '\r' || c == '\n') ? ' ' : c;
    if (c == ')' && depth > 0) --depth;
  }
  std::vector<std::string_view> out;
  const std::string_view all(storage);
  for (size_t i = 0; i < all.size();) {
    const size_t start = all.find_first_not_of(' ', i);
    if (start == std::string_view::npos) break;
    const size_t end = std::min(all.find(' ', start), all.size());
    out.push_back(all.substr(start, end - start));
    i = end;
  }
  return out;
}

// Minutes east of UTC of a zone word, nullopt if it is none.
std::optional<int> zone_minutes(std::string_view t) {
  if (t.size() == 5 && (t[0] == '+' || t[0] == '-') && all_digits(t.substr(1))) {
    const int hh = number(t.substr(1, 2));
    const int mm = number(t.substr(3, 2));
    if (mm > 59) return std::nullopt;
    return (t[0] == '-' ? -1 : 1) * (hh * 60 + mm);
  }
  static constexpr std::pair<std::string_view, int> kNamed[] = {
      {"UT", 0},        {"UTC", 0},       {"GMT", 0},       {"Z", 0},
      {"EST", -5 * 60}, {"EDT", -4 * 60}, {"CST", -6 * 60}, {"CDT", -5 * 60},
      {"MST", -7 * 60}, {"MDT", -6 * 60}, {"PST", -8 * 60}, {"PDT", -7 * 60},
  };
  for (const auto& [name, minutes] : kNamed)
    if (core::iequals(t, name)) return minutes;
  // RFC 5322 §4.3: military zones were used with the wrong sign; take them as UTC.
  if (t.size() == 1 && std::isalpha(static_cast<unsigned char>(t[0])) && t != "j" && t != "J")
    return 0;
  return std::nullopt;
}

std::optional<unsigned> month_of(std::string_view t) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  if (t.size() < 3) return std::nullopt;
  for (unsigned i = 0; i < 12; ++i)
    if (core::iequals(t.substr(0, 3), kMonths[i]) && std::all_of(t.begin(), t.end(), [](char c) {
          return std::isalpha(static_cast<unsigned char>(c));
        }))
      return i + 1;
  return std::nullopt;
}

}  // namespace

std::optional<int64_t> parse_rfc5322_date(std::string_view value) {
  std::string storage;
  std::optional<int> day, year, zone;
  std::optional<unsigned> month;
  std::optional<int> hour, minute, second;
  for (std::string_view t : date_tokens(value, storage)) {
    if (t.find(':') != std::string_view::npos) {
      if (hour) return std::nullopt;
      std::vector<std::string_view> parts;
      for (size_t i = 0; i <= t.size();) {
        const size_t end = std::min(t.find(':', i), t.size());
        parts.push_back(t.substr(i, end - i));
        i = end + 1;
      }
      if (parts.size() < 2 || parts.size() > 3) return std::nullopt;
      for (std::string_view p : parts)
        if (!all_digits(p) || p.size() > 2) return std::nullopt;
      hour = number(parts[0]);
      minute = number(parts[1]);
      second = parts.size() == 3 ? number(parts[2]) : 0;
    } else if (all_digits(t)) {
      if (!day && t.size() <= 2) {
        day = number(t);
      } else if (!year && t.size() >= 2 && t.size() <= 4) {
        year = number(t);
        if (t.size() == 2) *year += *year < 50 ? 2000 : 1900;  // RFC 5322 §4.3
        if (t.size() == 3) *year += 1900;
      } else {
        return std::nullopt;
      }
    } else if (t[0] == '+' || t[0] == '-') {
      zone = zone_minutes(t);
      if (!zone) return std::nullopt;
    } else if (auto m = month_of(t); m && !month) {
      month = m;
    } else if (auto z = zone_minutes(t); z && !zone && hour) {
      zone = z;
    }
    // Anything else (a day of the week, a stray word) is passed over.
  }
  if (!day || !month || !year || !hour) return std::nullopt;
  if (*year < 1601 || *day < 1 || static_cast<unsigned>(*day) > days_in_month(*year, *month) ||
      *hour > 23 || *minute > 59 || *second > 60)
    return std::nullopt;
  const int64_t days = days_from_civil(*year, *month, static_cast<unsigned>(*day));
  const int64_t seconds = days * 86400 + *hour * 3600 + *minute * 60 + std::min(*second, 59) -
                          int64_t{zone.value_or(0)} * 60;
  return seconds * 1000;
}

}  // namespace mta
