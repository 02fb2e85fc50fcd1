#include "mta/access/imap_search.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "core/address.h"
#include "mta/mime/charset.h"
#include "mta/mime/encoded_words.h"
#include "mta/mime/header_section.h"
#include "mta/mime/mime_tree.h"
#include "mta/mime/search_text.h"

namespace mta::access {
namespace {



constexpr int64_t kMsPerDay = 86400000;
constexpr uint64_t kMaxNumber64 = (uint64_t{1} << 63) - 1;  // RFC 9051 number64

// ---- Case folding (see the header for the ranges covered) ----

constexpr std::array<unsigned char, 128> make_ascii_fold() {
  std::array<unsigned char, 128> t{};
  for (int i = 0; i < 128; ++i)
    t[i] = static_cast<unsigned char>(i >= 'A' && i <= 'Z' ? i + 32 : i);
  return t;
}
constexpr auto kAsciiFold = make_ascii_fold();

// Upper and lower case alternate in these blocks, the upper one on even (or odd) code points.
bool alternating(char32_t c, char32_t from, char32_t to, bool upper_even) {
  return c >= from && c <= to && ((c % 2 == 0) == upper_even);
}

char32_t fold(char32_t c) {
  if (c < 0x80) return kAsciiFold[c];
  if (c < 0x100) {
    if (c == 0xB5) return 0x3BC;  // micro sign -> mu
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
    return c;
  }
  if (c < 0x180) {
    if (c == 0x130) return 'i';  // dotted capital I: its lower case is "i" plus a combining dot
    if (c == 0x178) return 0xFF;
    if (c == 0x17F) return 's';
    if (alternating(c, 0x100, 0x137, true) || alternating(c, 0x139, 0x148, false) ||
        alternating(c, 0x14A, 0x177, true) || alternating(c, 0x179, 0x17E, false))
      return c + 1;
    return c;
  }
  if (c >= 0x370 && c < 0x530) {
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) return c + 32;
    if (c == 0x3C2) return 0x3C3;  // final sigma
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c == 0x4C0) return 0x4CF;
    if (alternating(c, 0x460, 0x481, true) || alternating(c, 0x48A, 0x4BF, true) ||
        alternating(c, 0x4C1, 0x4CE, false) || alternating(c, 0x4D0, 0x52F, true))
      return c + 1;
    return c;
  }
  if (c >= 0x531 && c <= 0x556) return c + 48;  // Armenian
  if (c >= 0x1E00 && c <= 0x1EFF) {
    if (c == 0x1E9E) return 0xDF;  // capital sharp s
    if (alternating(c, 0x1E00, 0x1E95, true) || alternating(c, 0x1EA0, 0x1EFF, true)) return c + 1;
    return c;
  }
  if (c == 0x2126) return 0x3C9;                  // ohm sign
  if (c == 0x212A) return 'k';                    // Kelvin sign
  if (c == 0x212B) return 0xE5;                   // Angstrom sign
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;  // full-width Latin
  return c;
}

// The code point at `i`, advancing `i`; a byte that starts no well-formed sequence is U+FFFD
// and advances by one, so any input is safe (summary fields come from the caller).
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  size_t len = 0;
  char32_t c = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2, c = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3, c = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4, c = b0 & 0x07, min = 0x10000;
  }
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    c = (c << 6) | (b & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return c;
}

std::u32string fold_text(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out.push_back(fold(next_code_point(s, i)));
  return out;
}

bool match_at(std::string_view hay, size_t i, const std::u32string& needle) {
  for (const char32_t want : needle) {
    if (i >= hay.size()) return false;
    const auto b = static_cast<unsigned char>(hay[i]);
    char32_t got;
    if (b < 0x80) {
      got = kAsciiFold[b];
      ++i;
    } else {
      got = fold(next_code_point(hay, i));
    }
    if (got != want) return false;
  }
  return true;
}

// Whether folded `needle` occurs in `hay`, folded code point by code point. Candidates are the
// ASCII bytes equal to the first needle character and every lead byte (a non-ASCII character
// may fold to ASCII, e.g. the Kelvin sign); continuation bytes never start a match.
bool contains_folded(std::string_view hay, const std::u32string& needle) {
  if (needle.empty()) return true;
  const char32_t first = needle.front();
  for (size_t i = 0; i < hay.size(); ++i) {
    const auto b = static_cast<unsigned char>(hay[i]);
    if (b < 0x80 ? kAsciiFold[b] != first : b < 0xC0) continue;
    if (match_at(hay, i, needle)) return true;
  }
  return false;
}

int64_t floor_day(int64_t ms) {
  return ms >= 0 ? ms / kMsPerDay : -((-ms + kMsPerDay - 1) / kMsPerDay);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// RFC 9051 date: date-day "-" date-month "-" date-year, day of one or two digits.
std::optional<int64_t> parse_date(std::string_view s) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
  const size_t dash1 = s.find('-');
  if (dash1 != 1 && dash1 != 2) return std::nullopt;
  if (s.size() != dash1 + 1 + 3 + 1 + 4 || s[dash1 + 4] != '-') return std::nullopt;
  auto digits = [](std::string_view t) -> std::optional<unsigned> {
    unsigned v = 0;
    for (char ch : t) {
      if (ch < '0' || ch > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(ch - '0');
    }
    return v;
  };
  const auto day = digits(s.substr(0, dash1));
  const auto year = digits(s.substr(dash1 + 5));
  const std::string_view month_name = s.substr(dash1 + 1, 3);
  unsigned month = 0;
  for (unsigned i = 0; i < kMonths.size(); ++i)
    if (core::iequals(month_name, kMonths[i])) month = i + 1;
  if (!day || !year || month == 0 || *day == 0) return std::nullopt;
  static constexpr std::array<unsigned, 12> kDays = {31, 29, 31, 30, 31, 30,
                                                     31, 31, 30, 31, 30, 31};
  const bool leap = (*year % 4 == 0 && *year % 100 != 0) || *year % 400 == 0;
  if (*day > kDays[month - 1] || (month == 2 && *day == 29 && !leap)) return std::nullopt;
  return days_from_civil(*year, month, *day);
}

std::optional<uint64_t> parse_number(std::string_view s, bool zero_ok) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > kMaxNumber64) return std::nullopt;
  if (v == 0 && !zero_ok) return std::nullopt;
  return v;
}

// ---- Parsing ----

enum class Arg { kNone, kString, kDate, kNumber, kSet, kKeyword, kHeader, kNot, kOr, kModseq };

struct KeyDef {
  std::string_view name;
  SearchOp op;
  Arg arg;
  uint8_t flags;
};

constexpr KeyDef kKeys[] = {
    {"ALL", SearchOp::kAll, Arg::kNone, 0},
    {"ANSWERED", SearchOp::kFlagsSet, Arg::kNone, kSearchAnswered},
    {"BCC", SearchOp::kBcc, Arg::kString, 0},
    {"BEFORE", SearchOp::kBefore, Arg::kDate, 0},
    {"BODY", SearchOp::kBody, Arg::kString, 0},
    {"CC", SearchOp::kCc, Arg::kString, 0},
    {"DELETED", SearchOp::kFlagsSet, Arg::kNone, kSearchDeleted},
    {"DRAFT", SearchOp::kFlagsSet, Arg::kNone, kSearchDraft},
    {"FLAGGED", SearchOp::kFlagsSet, Arg::kNone, kSearchFlagged},
    {"FROM", SearchOp::kFrom, Arg::kString, 0},
    {"HEADER", SearchOp::kHeader, Arg::kHeader, 0},
    {"KEYWORD", SearchOp::kKeyword, Arg::kKeyword, 0},
    {"LARGER", SearchOp::kLarger, Arg::kNumber, 0},
    {"MODSEQ", SearchOp::kModseq, Arg::kModseq, 0},
    {"NEW", SearchOp::kNew, Arg::kNone, 0},
    {"NOT", SearchOp::kNot, Arg::kNot, 0},
    {"OLD", SearchOp::kOld, Arg::kNone, 0},
    {"ON", SearchOp::kOn, Arg::kDate, 0},
    {"OR", SearchOp::kOr, Arg::kOr, 0},
    {"RECENT", SearchOp::kRecent, Arg::kNone, 0},
    {"SEEN", SearchOp::kFlagsSet, Arg::kNone, kSearchSeen},
    {"SENTBEFORE", SearchOp::kSentBefore, Arg::kDate, 0},
    {"SENTON", SearchOp::kSentOn, Arg::kDate, 0},
    {"SENTSINCE", SearchOp::kSentSince, Arg::kDate, 0},
    {"SINCE", SearchOp::kSince, Arg::kDate, 0},
    {"SMALLER", SearchOp::kSmaller, Arg::kNumber, 0},
    {"SUBJECT", SearchOp::kSubject, Arg::kString, 0},
    {"TEXT", SearchOp::kText, Arg::kString, 0},
    {"TO", SearchOp::kTo, Arg::kString, 0},
    {"UID", SearchOp::kUid, Arg::kSet, 0},
    {"UNANSWERED", SearchOp::kFlagsClear, Arg::kNone, kSearchAnswered},
    {"UNDELETED", SearchOp::kFlagsClear, Arg::kNone, kSearchDeleted},
    {"UNDRAFT", SearchOp::kFlagsClear, Arg::kNone, kSearchDraft},
    {"UNFLAGGED", SearchOp::kFlagsClear, Arg::kNone, kSearchFlagged},
    {"UNKEYWORD", SearchOp::kUnkeyword, Arg::kKeyword, 0},
    {"UNSEEN", SearchOp::kFlagsClear, Arg::kNone, kSearchSeen},
};

// HEADER fields SearchMessage carries decoded, with the key that reads each.
struct SummaryField {
  std::string_view name;
  SearchOp op;
};
constexpr SummaryField kSummaryFields[] = {
    {"From", SearchOp::kFrom},       {"To", SearchOp::kTo},
    {"Cc", SearchOp::kCc},           {"Bcc", SearchOp::kBcc},
    {"Subject", SearchOp::kSubject}, {"Message-ID", SearchOp::kMessageId},
};

// Evaluation order inside AND and OR: what costs nothing first, loaders last.
int cost(const SearchKey& k) {
  switch (k.op) {
    case SearchOp::kFrom:
    case SearchOp::kTo:
    case SearchOp::kCc:
    case SearchOp::kBcc:
    case SearchOp::kSubject:
    case SearchOp::kMessageId:
      return 1;
    case SearchOp::kHeader:
      return 2;
    case SearchOp::kBody:
    case SearchOp::kText:
      return 3;
    case SearchOp::kAnd:
    case SearchOp::kOr:
    case SearchOp::kNot: {
      int c = 0;
      for (const SearchKey& child : k.children) c = std::max(c, cost(child));
      return c;
    }
    default:
      return 0;
  }
}

// A short, printable echo of what the client sent, for error texts.
std::string echo(std::string_view s) {
  std::string out;
  for (char ch : s.substr(0, 32)) out += (ch > 0x20 && ch < 0x7f) ? ch : '?';
  return s.size() > 32 ? out + "..." : out;
}

struct Cursor {
  const std::vector<ImapValue>& items;
  size_t pos;
  bool more() const { return pos < items.size(); }
  const ImapValue& peek() const { return items[pos]; }
  const ImapValue& take() { return items[pos++]; }
};

class Parser {
 public:
  core::Status program(Cursor& c, SearchProgram& p) {
    if (c.more() && c.peek().is_atom("RETURN")) {
      c.take();
      if (auto s = return_options(c, p); !s) return s;
    }
    p.returns = p.returns == 0 ? kReturnAll : p.returns;
    if (c.more() && c.peek().is_atom("CHARSET")) {
      c.take();
      if (!c.more() || !c.peek().is_astring()) return core::Status::invalid("Missing charset");
      const std::string& cs = c.take().text;
      if (!core::iequals(cs, "UTF-8") && !core::iequals(cs, "US-ASCII"))
        return core::Status::permanent("[BADCHARSET (UTF-8)] Unsupported charset " + echo(cs));
    }
    if (!c.more()) return core::Status::invalid("Missing search key");
    p.root.op = SearchOp::kAnd;
    while (c.more()) {
      SearchKey k;
      if (auto s = key(c, k, 0); !s) return s;
      add(p.root, std::move(k));
    }
    order(p.root);
    p.uses_modseq = uses_modseq_;
    p.needs_header = needs_header_;
    p.needs_body = needs_body_;
    p.needs_summary = reads_message_data(p.root, false);
    return core::Status::ok();
  }

 private:
  core::Status return_options(Cursor& c, SearchProgram& p) {
    if (!c.more() || c.peek().kind != ImapValue::Kind::kList)
      return core::Status::invalid("RETURN needs a list of options");
    p.esearch = true;
    for (const ImapValue& v : c.take().items) {
      static constexpr std::pair<std::string_view, uint8_t> kOptions[] = {{"MIN", kReturnMin},
                                                                          {"MAX", kReturnMax},
                                                                          {"ALL", kReturnAll},
                                                                          {"COUNT", kReturnCount},
                                                                          {"SAVE", kReturnSave}};
      uint8_t bit = 0;
      for (const auto& [name, b] : kOptions)
        if (v.is_atom(name)) bit = b;
      if (bit == 0) return core::Status::invalid("Unknown RETURN option " + echo(v.text));
      p.returns |= bit;
    }
    return core::Status::ok();
  }

  // AND inside AND is one AND.
  static void add(SearchKey& and_key, SearchKey&& k) {
    if (k.op == SearchOp::kAnd) {
      for (SearchKey& child : k.children) and_key.children.push_back(std::move(child));
    } else {
      and_key.children.push_back(std::move(k));
    }
  }

  static void order(SearchKey& k) {
    for (SearchKey& child : k.children) order(child);
    if (k.op == SearchOp::kAnd || k.op == SearchOp::kOr)
      std::stable_sort(k.children.begin(), k.children.end(),
                       [](const SearchKey& a, const SearchKey& b) { return cost(a) < cost(b); });
  }

  core::Status counted() {
    if (++keys_ > kMaxSearchKeys) return core::Status::invalid("Too many search keys");
    return core::Status::ok();
  }

  core::Status key(Cursor& c, SearchKey& out, size_t depth) {
    if (depth > kMaxSearchDepth) return core::Status::invalid("Search keys nested too deep");
    if (auto s = counted(); !s) return s;
    const ImapValue& v = c.take();
    if (v.kind == ImapValue::Kind::kList) return list(v, out, depth);
    if (v.kind == ImapValue::Kind::kAtom && !v.text.empty() &&
        (std::isdigit(static_cast<unsigned char>(v.text[0])) || v.text[0] == '*' ||
         v.text[0] == '$')) {
      out.op = SearchOp::kSequence;
      return sequence_set(v, out, "sequence set");
    }
    const KeyDef* def = nullptr;
    if (v.kind != ImapValue::Kind::kString)
      for (const KeyDef& d : kKeys)
        if (core::iequals(v.text, d.name)) def = &d;
    if (def == nullptr) return core::Status::invalid("Unknown search key " + echo(v.text));
    out.op = def->op;
    out.flags = def->flags;
    const std::string name(def->name);
    auto missing = [&] { return core::Status::invalid("Missing argument to " + name); };
    if (def->arg != Arg::kNone && def->arg != Arg::kOr && def->arg != Arg::kNot && !c.more())
      return missing();
    switch (def->arg) {
      case Arg::kNone:
        return core::Status::ok();
      case Arg::kString: {
        const ImapValue& a = c.take();
        if (!a.is_astring()) return core::Status::invalid(name + " needs a string");
        out.folded = fold_text(mime::sanitize_utf8(a.text));
        if (out.op == SearchOp::kBody || out.op == SearchOp::kText) needs_body_ = true;
        return core::Status::ok();
      }
      case Arg::kDate: {
        const ImapValue& a = c.take();
        const auto day = a.is_astring() ? parse_date(a.text) : std::nullopt;
        if (!day) return core::Status::invalid(name + " needs a date (d-Mon-yyyy)");
        out.day = *day;
        return core::Status::ok();
      }
      case Arg::kNumber: {
        const ImapValue& a = c.take();
        const auto n = a.kind == ImapValue::Kind::kAtom ? parse_number(a.text, true) : std::nullopt;
        if (!n) return core::Status::invalid(name + " needs a number");
        out.number = *n;
        return core::Status::ok();
      }
      case Arg::kSet:
        return sequence_set(c.take(), out, "UID set");
      case Arg::kKeyword:
        return keyword(c.take(), out, name);
      case Arg::kHeader:
        return header(c, out);
      case Arg::kModseq:
        return modseq(c, out);
      case Arg::kNot: {
        if (!c.more()) return missing();
        out.children.emplace_back();
        return key(c, out.children.back(), depth + 1);
      }
      case Arg::kOr:
        return or_chain(c, out, depth);
    }
    return core::Status::ok();
  }

  core::Status list(const ImapValue& v, SearchKey& out, size_t depth) {
    if (v.items.empty()) return core::Status::invalid("Empty parenthesised search key list");
    Cursor inner{v.items, 0};
    SearchKey and_key;
    and_key.op = SearchOp::kAnd;
    while (inner.more()) {
      SearchKey k;
      if (auto s = key(inner, k, depth + 1); !s) return s;
      add(and_key, std::move(k));
    }
    out = and_key.children.size() == 1 ? std::move(and_key.children.front()) : std::move(and_key);
    return core::Status::ok();
  }

  // OR is associative, so "OR OR a b c" and "OR a OR b c" read into one node of three
  // operands: each OR met where an operand is due asks for one operand more. A chain of ORs
  // therefore costs one level of depth, however long.
  core::Status or_chain(Cursor& c, SearchKey& out, size_t depth) {
    size_t due = 2;
    while (due > 0) {
      if (!c.more()) return core::Status::invalid("Missing argument to OR");
      if (c.peek().is_atom("OR")) {
        c.take();
        if (auto s = counted(); !s) return s;
        ++due;
        continue;
      }
      SearchKey k;
      if (auto s = key(c, k, depth + 1); !s) return s;
      if (k.op == SearchOp::kOr) {
        for (SearchKey& child : k.children) out.children.push_back(std::move(child));
      } else {
        out.children.push_back(std::move(k));
      }
      --due;
    }
    return core::Status::ok();
  }

  static core::Status sequence_set(const ImapValue& v, SearchKey& out, std::string_view what) {
    auto set = v.kind == ImapValue::Kind::kAtom ? parse_sequence_set(v.text) : std::nullopt;
    if (!set) return core::Status::invalid("Invalid " + std::string(what) + " " + echo(v.text));
    out.set = std::move(*set);
    return core::Status::ok();
  }

  // flag-keyword is an atom; a system flag given as a keyword ("KEYWORD \Seen") is read as
  // that flag, since clients do send it.
  static core::Status keyword(const ImapValue& v, SearchKey& out, const std::string& name) {
    if (v.kind != ImapValue::Kind::kAtom || v.text.empty())
      return core::Status::invalid(name + " needs a flag keyword");
    static constexpr std::pair<std::string_view, uint8_t> kSystem[] = {
        {"\\SEEN", kSearchSeen},
        {"\\ANSWERED", kSearchAnswered},
        {"\\FLAGGED", kSearchFlagged},
        {"\\DELETED", kSearchDeleted},
        {"\\DRAFT", kSearchDraft}};
    for (const auto& [flag, bit] : kSystem) {
      if (core::iequals(v.text, flag)) {
        out.op = out.op == SearchOp::kKeyword ? SearchOp::kFlagsSet : SearchOp::kFlagsClear;
        out.flags = bit;
        return core::Status::ok();
      }
    }
    out.text = v.text;
    return core::Status::ok();
  }

  core::Status header(Cursor& c, SearchKey& out) {
    const ImapValue& field = c.take();
    if (!field.is_astring() || field.text.empty() || !c.more() || !c.peek().is_astring())
      return core::Status::invalid("HEADER needs a field name and a string");
    out.text = field.text;
    out.folded = fold_text(mime::sanitize_utf8(c.take().text));
    if (!out.folded.empty()) {
      for (const SummaryField& f : kSummaryFields) {
        if (core::iequals(field.text, f.name)) {
          out.op = f.op;
          return core::Status::ok();
        }
      }
    }
    needs_header_ = true;
    return core::Status::ok();
  }

  // RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer. The entry name
  // is a quoted "/flags/..." and the type priv, shared or all.
  core::Status modseq(Cursor& c, SearchKey& out) {
    if (c.peek().kind == ImapValue::Kind::kString) {
      c.take();
      if (!c.more() ||
          !(c.peek().is_atom("PRIV") || c.peek().is_atom("SHARED") || c.peek().is_atom("ALL")))
        return core::Status::invalid("MODSEQ entry type must be priv, shared or all");
      c.take();
      if (!c.more()) return core::Status::invalid("Missing argument to MODSEQ");
    }
    const ImapValue& a = c.take();
    const auto n = a.kind == ImapValue::Kind::kAtom ? parse_number(a.text, true) : std::nullopt;
    if (!n) return core::Status::invalid("MODSEQ needs a number");
    out.number = *n;
    uses_modseq_ = true;
    return core::Status::ok();
  }

  size_t keys_ = 0;
  bool uses_modseq_ = false;
  bool needs_header_ = false;
  bool needs_body_ = false;
};

// ---- Evaluation ----

class Evaluator {
 public:
  Evaluator(const SearchMessage& m, const SearchContext& c) : m_(m), c_(c) {}

  bool eval(const SearchKey& k) {
    switch (k.op) {
      case SearchOp::kAll:
        return true;
      case SearchOp::kAnd:
        for (const SearchKey& child : k.children)
          if (!eval(child)) return false;
        return true;
      case SearchOp::kOr:
        for (const SearchKey& child : k.children)
          if (eval(child)) return true;
        return false;
      case SearchOp::kNot:
        return !eval(k.children.front());
      case SearchOp::kSequence:
        return k.set.saved ? saved() : k.set.contains(m_.seq, c_.max_seq);
      case SearchOp::kUid:
        return k.set.saved ? saved() : k.set.contains(m_.uid, c_.max_uid);
      case SearchOp::kFlagsSet:
        return (m_.flags & k.flags) == k.flags;
      case SearchOp::kFlagsClear:
        return (m_.flags & k.flags) == 0;
      case SearchOp::kKeyword:
        return has_keyword(k.text);
      case SearchOp::kUnkeyword:
        return !has_keyword(k.text);
      case SearchOp::kRecent:
        return m_.recent;
      case SearchOp::kNew:
        return m_.recent && (m_.flags & kSearchSeen) == 0;
      case SearchOp::kOld:
        return !m_.recent;
      case SearchOp::kLarger:
        return m_.size > k.number;
      case SearchOp::kSmaller:
        return m_.size < k.number;
      case SearchOp::kBefore:
        return floor_day(m_.internal_date_ms) < k.day;
      case SearchOp::kOn:
        return floor_day(m_.internal_date_ms) == k.day;
      case SearchOp::kSince:
        return floor_day(m_.internal_date_ms) >= k.day;
      case SearchOp::kSentBefore:
        return sent_day() < k.day;
      case SearchOp::kSentOn:
        return sent_day() == k.day;
      case SearchOp::kSentSince:
        return sent_day() >= k.day;
      case SearchOp::kModseq:
        return m_.modseq >= k.number;
      case SearchOp::kFrom:
        return contains_folded(m_.from, k.folded);
      case SearchOp::kTo:
        return contains_folded(m_.to, k.folded);
      case SearchOp::kCc:
        return contains_folded(m_.cc, k.folded);
      case SearchOp::kBcc:
        return contains_folded(m_.bcc, k.folded);
      case SearchOp::kSubject:
        return contains_folded(m_.subject, k.folded);
      case SearchOp::kMessageId:
        return contains_folded(m_.message_id, k.folded);
      case SearchOp::kHeader:
        return header_field(k);
      case SearchOp::kBody:
        return k.folded.empty() || contains_folded(body_text(), k.folded);
      case SearchOp::kText:
        if (k.folded.empty()) return true;
        whole();  // one load serves both halves
        return contains_folded(header_text(), k.folded) || contains_folded(body_text(), k.folded);
    }
    return false;
  }

 private:
  bool saved() const {
    return std::binary_search(c_.saved_uids.begin(), c_.saved_uids.end(), m_.uid);
  }

  bool has_keyword(const std::string& kw) const {
    return std::any_of(m_.keywords.begin(), m_.keywords.end(),
                       [&](const std::string& k) { return core::iequals(k, kw); });
  }

  int64_t sent_day() const {
    return floor_day(m_.sent_date_ms != 0 ? m_.sent_date_ms : m_.internal_date_ms);
  }

  std::string_view whole() {
    if (!whole_) whole_ = m_.whole_message ? m_.whole_message() : std::string();
    return *whole_;
  }

  std::string_view header() {
    if (!header_) {
      if (whole_ || !m_.header_section) {
        const std::string_view w = whole();
        header_ = std::string(w.substr(0, mime::read_header_section(w).body_start));
      } else {
        header_ = m_.header_section();
      }
    }
    return *header_;
  }

  bool header_field(const SearchKey& k) {
    if (!fields_) fields_ = mime::read_header_section(header());
    for (const mime::FieldLines& f : fields_->fields) {
      if (!core::iequals(f.name, k.text)) continue;
      if (k.folded.empty() || contains_folded(mime::decode_header_value(f.value), k.folded))
        return true;
    }
    return false;
  }

  const std::string& header_text() {
    if (!header_text_) header_text_ = mime::header_text_utf8(header());
    return *header_text_;
  }

  const std::string& body_text() {
    if (!body_text_) {
      const std::string_view w = whole();
      body_text_ = mime::body_text_utf8(w, mime::parse_message(w), kMaxSearchText);
    }
    return *body_text_;
  }

  const SearchMessage& m_;
  const SearchContext& c_;
  std::optional<std::string> whole_;
  std::optional<std::string> header_;
  std::optional<mime::HeaderSection> fields_;  // views into *header_
  std::optional<std::string> header_text_;
  std::optional<std::string> body_text_;
};

std::vector<uint32_t> sorted_unique(std::span<const uint32_t> numbers) {
  std::vector<uint32_t> v(numbers.begin(), numbers.end());
  if (!std::is_sorted(v.begin(), v.end())) std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

std::string compact(const std::vector<uint32_t>& v) {
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(v[i]);
    if (j > i) out += ':' + std::to_string(v[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace

core::Result<SearchProgram> parse_search(const std::vector<ImapValue>& args, size_t first) {
  SearchProgram p;
  Cursor c{args, std::min(first, args.size())};
  Parser parser;
  if (auto s = parser.program(c, p); !s) return s;
  return p;
}

bool reads_message_data(const SearchKey& k, bool with_text) {
  switch (k.op) {
    case SearchOp::kFrom: case SearchOp::kTo: case SearchOp::kCc: case SearchOp::kBcc:
    case SearchOp::kSubject: case SearchOp::kMessageId: case SearchOp::kSentBefore:
    case SearchOp::kSentOn: case SearchOp::kSentSince:
      return true;
    case SearchOp::kHeader: case SearchOp::kBody: case SearchOp::kText:
      if (with_text) return true;
      break;
    default:
      break;
  }
  for (const SearchKey& c : k.children)
    if (reads_message_data(c, with_text)) return true;
  return false;
}

bool matches(const SearchProgram& program, const SearchMessage& message,
             const SearchContext& context) {
  Evaluator e(message, context);
  return e.eval(program.root);
}

std::string compact_sequence_set(std::span<const uint32_t> numbers) {
  return compact(sorted_unique(numbers));
}

std::string search_response(const SearchProgram& program, std::string_view tag, bool uid,
                            bool imap4rev2, std::span<const uint32_t> matched,
                            std::optional<uint64_t> modseq) {
  const std::vector<uint32_t> v = sorted_unique(matched);
  const bool with_modseq = modseq && !v.empty();
  if (!program.esearch && !imap4rev2) {
    std::string out = "* SEARCH";
    for (uint32_t n : v) out += ' ' + std::to_string(n);
    if (with_modseq) out += " (MODSEQ " + std::to_string(*modseq) + ')';
    return out + "\r\n";
  }
  const uint8_t r = program.returns == 0 ? kReturnAll : program.returns;
  if (r == kReturnSave) return "";  // RFC 5182 §2.4: SAVE alone answers nothing
  std::string out = "* ESEARCH (TAG \"";
  for (char ch : tag) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  out += "\")";
  if (uid) out += " UID";
  if (!v.empty() && (r & kReturnMin)) out += " MIN " + std::to_string(v.front());
  if (!v.empty() && (r & kReturnMax)) out += " MAX " + std::to_string(v.back());
  if (r & kReturnCount) out += " COUNT " + std::to_string(v.size());
  if (!v.empty() && (r & kReturnAll)) out += " ALL " + compact(v);
  if (with_modseq) out += " MODSEQ " + std::to_string(*modseq);
  return out + "\r\n";
}

std::vector<uint32_t> result_to_save(const SearchProgram& program,
                                     std::span<const uint32_t> matched_uids) {
  std::vector<uint32_t> v = sorted_unique(matched_uids);
  const uint8_t r = program.returns;
  const bool min_max_only =
      (r & (kReturnMin | kReturnMax)) != 0 && (r & (kReturnAll | kReturnCount)) == 0;
  if (!min_max_only || v.empty()) return v;
  std::vector<uint32_t> out;
  if (r & kReturnMin) out.push_back(v.front());
  if ((r & kReturnMax) && (out.empty() || out.back() != v.back())) out.push_back(v.back());
  return out;
}

}  // namespace mta::access
