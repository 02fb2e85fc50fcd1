#include "mta/access/imap_parser.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/address.h"

namespace mta::access {
namespace {

// Literal bytes are kept apart from the command text; the text holds a marker where each
// literal was: NUL, its index in decimal, NUL. NUL cannot occur in a command line itself
// (lines with one are refused), so the marker is unambiguous.
constexpr char kMark = '\0';

bool is_tag_char(unsigned char c) {
  // ASTRING-CHAR minus "+" (RFC 9051 §9 tag): no controls, space, ( ) { % * " \ or +.
  return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '%' && c != '*' &&
         c != '"' && c != '\\' && c != '+';
}

bool is_atom_char(unsigned char c) {
  // ATOM-CHAR plus the list wildcards and ']' that astrings and list-mailbox allow;
  // 8-bit bytes are let through for UTF-8 mailbox names (RFC 9051 §5.1).
  return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '{' && c != '"' &&
         c != '\\' && c != '[';
}

// The literal announced at the end of `line`: "{12}", "{12+}", "~{12}"; nullopt if none.
struct Announcement {
  size_t start = 0;  // where "{" or "~{" begins
  uint64_t size = 0;
  bool sync = true;
  bool binary = false;
};
std::optional<Announcement> literal_at_end(std::string_view line) {
  if (line.empty() || line.back() != '}') return std::nullopt;
  const size_t open = line.rfind('{');
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view digits = line.substr(open + 1, line.size() - open - 2);
  Announcement a;
  if (!digits.empty() && (digits.back() == '+' || digits.back() == '-')) {
    a.sync = false;  // '-' is LITERAL- (RFC 7888 §5), also non-synchronising
    digits.remove_suffix(1);
  }
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), a.size);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  a.start = open;
  if (open > 0 && line[open - 1] == '~') {
    a.binary = true;
    a.start = open - 1;
  }
  return a;
}

}  // namespace

bool ImapValue::is_atom(std::string_view upper) const {
  return (kind == Kind::kAtom || kind == Kind::kNil) && core::iequals(text, upper);
}

void ImapReader::reset() {
  text_.clear();
  literals_.clear();
  literal8_.clear();
  literal_left_ = 0;
  in_literal_ = false;
  skipping_ = false;
  skip_tag_.clear();
  skip_reason_.clear();
  values_ = 0;
}

std::optional<std::string> ImapReader::next_line() {
  const size_t eol = buf_.find('\n');
  if (eol == std::string::npos) return std::nullopt;
  std::string line = buf_.substr(0, eol);
  buf_.erase(0, eol + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

ImapReader::Event ImapReader::next() {
  for (;;) {
    if (in_literal_) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(literal_left_, buf_.size()));
      if (!skipping_) literals_.back().append(buf_, 0, take);
      buf_.erase(0, take);
      literal_left_ -= take;
      if (literal_left_ > 0) return {};
      in_literal_ = false;
    }
    Event e = read_line();
    // Nothing to report and no literal begun: the rest of the line has not arrived.
    if (e.kind != Event::Kind::kNone || !in_literal_) return e;
  }
}

ImapReader::Event ImapReader::read_line() {
  const size_t eol = buf_.find('\n');
  if (eol == std::string::npos) {
    if (buf_.size() > limits_.max_line && !skipping_) {
      // Too long to ever be a command: drop it up to its end.
      skip_tag_ = "*";
      skip_reason_ = "Command line too long";
      skipping_ = true;
      buf_.clear();
    } else if (skipping_) {
      buf_.clear();
    }
    return {};
  }
  std::string line = buf_.substr(0, eol);
  buf_.erase(0, eol + 1);
  if (!line.empty() && line.back() == '\r') line.pop_back();

  const auto announced = literal_at_end(line);
  if (skipping_) {
    if (announced) {
      in_literal_ = true;
      literal_left_ = announced->size;
      return {};
    }
    Event e;
    e.kind = Event::Kind::kError;
    e.error = {skip_tag_, skip_reason_};
    reset();
    return e;
  }
  auto fail = [&](std::string reason) {
    Event e;
    e.kind = Event::Kind::kError;
    std::string_view whole = text_.empty() ? std::string_view(line) : std::string_view(text_);
    size_t n = 0;
    while (n < whole.size() && is_tag_char(static_cast<unsigned char>(whole[n]))) ++n;
    e.error = {n > 0 && n < whole.size() && whole[n] == ' ' ? std::string(whole.substr(0, n)) : "*",
               std::move(reason)};
    return e;
  };
  if (line.size() > limits_.max_line || text_.size() + line.size() > limits_.max_line * 4) {
    Event e = fail("Command line too long");
    if (announced) {  // its literal follows regardless (RFC 7888 §4), or is never sent
      skip_tag_ = e.error.tag;
      skip_reason_ = e.error.reason;
      skipping_ = true;
      in_literal_ = !announced->sync;
      literal_left_ = announced->size;
      if (announced->sync) reset();
      return in_literal_ ? Event{} : e;
    }
    reset();
    return e;
  }
  if (line.find(kMark) != std::string::npos) {
    Event e = fail("NUL in command line");
    reset();
    return e;
  }
  if (announced) {
    text_.append(line, 0, announced->start);
    if (announced->size > limits_.max_literal) {
      Event e = fail("Literal too big (at most " + std::to_string(limits_.max_literal) + " octets)");
      if (announced->sync) {
        reset();  // the client waits for "+" and never sends the bytes
        return e;
      }
      skip_tag_ = e.error.tag;
      skip_reason_ = e.error.reason;
      skipping_ = true;
      in_literal_ = true;
      literal_left_ = announced->size;
      return {};
    }
    text_ += kMark;
    text_ += std::to_string(literals_.size());
    text_ += kMark;
    literals_.emplace_back();
    literal8_.push_back(announced->binary);
    in_literal_ = true;
    literal_left_ = announced->size;
    if (announced->sync) {
      Event e;
      e.kind = Event::Kind::kContinue;
      return e;
    }
    return {};
  }
  text_ += line;

  // A whole command: tag SP name [SP args].
  Event e;
  std::string_view t = text_;
  size_t pos = 0;
  while (pos < t.size() && is_tag_char(static_cast<unsigned char>(t[pos]))) ++pos;
  if (pos == 0 || pos >= t.size() || t[pos] != ' ') {
    e = fail(t.empty() ? "Empty command line" : "Missing or invalid tag");
    reset();
    return e;
  }
  e.command.tag = std::string(t.substr(0, pos));
  ++pos;
  auto read_name = [&]() {
    size_t start = pos;
    while (pos < t.size() && std::isalnum(static_cast<unsigned char>(t[pos]))) ++pos;
    return core::to_lower_ascii(t.substr(start, pos - start));
  };
  std::string name = read_name();
  if (name.empty() || (pos < t.size() && t[pos] != ' ')) {
    e = fail("Missing or invalid command name");
    reset();
    return e;
  }
  if (name == "uid" && pos < t.size()) {
    ++pos;
    std::string sub = read_name();
    if (sub.empty() || (pos < t.size() && t[pos] != ' ')) {
      e = fail("UID needs a command");
      reset();
      return e;
    }
    name += " " + sub;
  }
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  e.command.name = std::move(name);
  while (pos < t.size()) {
    if (t[pos] != ' ') {
      e = fail(t[pos] == ')' ? "Unbalanced parenthesis" : "Expected a space between arguments");
      reset();
      return e;
    }
    ++pos;
    ImapValue v;
    if (!parse(t, pos, v, 0)) {
      e = fail(skip_reason_.empty() ? "Cannot parse arguments" : skip_reason_);
      reset();
      return e;
    }
    e.command.args.push_back(std::move(v));
  }
  e.kind = Event::Kind::kCommand;
  reset();
  return e;
}

bool ImapReader::parse(std::string_view t, size_t& pos, ImapValue& v, size_t depth) {
  auto bad = [&](const char* reason) {
    skip_reason_ = reason;
    return false;
  };
  if (++values_ > limits_.max_values) return bad("Too many arguments");
  if (pos >= t.size()) return bad("Missing argument");
  const char c = t[pos];
  if (c == '(') {
    if (depth >= limits_.max_depth) return bad("Lists nested too deeply");
    v.kind = ImapValue::Kind::kList;
    ++pos;
    bool first = true;
    while (pos < t.size() && t[pos] != ')') {
      if (!first) {
        if (t[pos] != ' ') return bad("Expected a space in a list");
        ++pos;
      }
      first = false;
      ImapValue item;
      if (!parse(t, pos, item, depth + 1)) return false;
      v.items.push_back(std::move(item));
    }
    if (pos >= t.size()) return bad("Unbalanced parenthesis");
    ++pos;
    return true;
  }
  if (c == '"') {
    v.kind = ImapValue::Kind::kString;
    for (++pos; pos < t.size(); ++pos) {
      char ch = t[pos];
      if (ch == '"') {
        ++pos;
        return true;
      }
      if (ch == '\\') {
        if (++pos >= t.size() || (t[pos] != '"' && t[pos] != '\\'))
          return bad("Bad escape in quoted string");
        ch = t[pos];
      }
      v.text += ch;
    }
    return bad("Unterminated quoted string");
  }
  if (c == kMark) {
    const size_t end = t.find(kMark, pos + 1);
    size_t index = 0;
    std::from_chars(t.data() + pos + 1, t.data() + end, index);
    v.kind = ImapValue::Kind::kString;
    v.literal = true;
    v.binary = literal8_[index];
    v.text = std::move(literals_[index]);
    pos = end + 1;
    return true;
  }
  const size_t start = pos;
  while (pos < t.size()) {
    const auto ch = static_cast<unsigned char>(t[pos]);
    if (ch == '[') {
      // One bracketed part, spaces and parentheses allowed: BODY[HEADER.FIELDS (A B)].
      const size_t close = t.find(']', pos);
      if (close == std::string_view::npos) return bad("Unbalanced bracket");
      pos = close + 1;
      continue;
    }
    // A flag (\Seen) is an atom that begins with a backslash.
    const bool flag_start = pos == start && ch == '\\';
    if (ch == kMark || (!is_atom_char(ch) && !flag_start)) break;
    ++pos;
  }
  if (pos == start) return bad("Unexpected character");
  v.text = std::string(t.substr(start, pos - start));
  v.kind = core::iequals(v.text, "NIL") ? ImapValue::Kind::kNil : ImapValue::Kind::kAtom;
  return true;
}

bool SequenceSet::contains(uint32_t n, uint32_t star) const {
  for (const auto& r : ranges) {
    uint32_t a = r.first == 0 ? star : r.first;
    uint32_t b = r.last == 0 ? star : r.last;
    if (a > b) std::swap(a, b);
    if (n >= a && n <= b) return true;
  }
  return false;
}

std::optional<SequenceSet> parse_sequence_set(std::string_view text) {
  SequenceSet set;
  if (text == "$") {
    set.saved = true;
    return set;
  }
  auto number = [](std::string_view s) -> std::optional<uint32_t> {
    if (s == "*") return 0u;
    uint32_t v = 0;
    if (s.empty() || s[0] == '0') return std::nullopt;  // nz-number
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view part = text.substr(pos, comma - pos);
    const size_t colon = part.find(':');
    auto a = number(part.substr(0, colon));
    auto b = colon == std::string_view::npos ? a : number(part.substr(colon + 1));
    if (!a || !b) return std::nullopt;
    set.ranges.push_back({*a, *b});
    pos = comma + 1;
    if (comma == text.size()) break;
  }
  return set;
}

}  // namespace mta::access
