#include "mta/mime/address_list.h"

#include <optional>

namespace mta::mime {
namespace {

struct Token {
  enum class Kind { kAtom, kQuoted, kLiteral, kComment, kSpecial };
  Kind kind;
  std::string text;  // unquoted for kQuoted and kComment; the character for kSpecial
  bool space_before = false;

  bool is(char c) const { return kind == Kind::kSpecial && text[0] == c; }
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

constexpr std::string_view kSpecials = "<>@,;:";

// RFC 5322 §3.2: atoms (with "." so that dot-atoms and obs-phrase stay whole), quoted
// strings, domain literals, comments and the specials that structure an address list.
std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  bool space = false;
  size_t i = 0;
  // Text up to the unescaped `close`, quoted-pairs resolved, CR and LF (folding) dropped;
  // for comments, nested parentheses count.
  const auto delimited = [&](char open, char close, bool nest) {
    std::string text;
    int depth = 1;
    for (++i; i < s.size(); ++i) {
      const char c = s[i];
      if (c == '\\' && i + 1 < s.size()) {
        text += s[++i];
        continue;
      }
      if (nest && c == open) ++depth;
      if (c == close && --depth == 0) {
        ++i;
        return text;
      }
      if (c != '\r' && c != '\n') text += c;
    }
    return text;
  };
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c)) {
      space = true;
      ++i;
    } else if (c == '(') {
      out.push_back({Token::Kind::kComment, delimited('(', ')', true), space});
      space = true;
    } else if (c == '"') {
      out.push_back({Token::Kind::kQuoted, delimited('"', '"', false), space});
      space = false;
    } else if (c == '[') {
      const size_t close = s.find(']', i);
      const size_t end = close == std::string_view::npos ? s.size() : close + 1;
      out.push_back({Token::Kind::kLiteral, std::string(s.substr(i, end - i)), space});
      i = end;
      space = false;
    } else if (kSpecials.find(c) != std::string_view::npos) {
      out.push_back({Token::Kind::kSpecial, std::string(1, c), space});
      ++i;
      space = false;
    } else {
      const size_t start = i;
      while (i < s.size() && !is_space(s[i]) && s[i] != '(' && s[i] != '"' && s[i] != '[' &&
             kSpecials.find(s[i]) == std::string_view::npos)
        ++i;
      out.push_back({Token::Kind::kAtom, std::string(s.substr(start, i - start)), space});
      space = false;
    }
  }
  return out;
}

class ListParser {
 public:
  explicit ListParser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  std::vector<MailAddress> run() {
    list(false);
    return std::move(out_);
  }

 private:
  // Members up to the end, or for a group up to its ";". Stray ";" outside a group separate
  // members, as some programs write them.
  void list(bool in_group) {
    while (i_ < t_.size()) {
      if (t_[i_].is(',') || (!in_group && t_[i_].is(';'))) {
        ++i_;
        continue;
      }
      if (in_group && t_[i_].is(';')) {
        ++i_;
        return;
      }
      member(in_group);
    }
  }

  // Index of the first token at or after i_ that is one of `stops`, or t_.size().
  size_t find_first(std::string_view stops) const {
    for (size_t k = i_; k < t_.size(); ++k)
      if (t_[k].kind == Token::Kind::kSpecial &&
          stops.find(t_[k].text[0]) != std::string_view::npos)
        return k;
    return t_.size();
  }

  void member(bool in_group) {
    const size_t first = find_first(":<,;");
    if (first < t_.size() && t_[first].is(':')) {
      const std::string name = join(i_, first, true);
      i_ = first + 1;
      if (in_group) return;  // a group inside a group: only its members are kept
      out_.push_back({MailAddress::Kind::kGroupStart, name, "", "", ""});
      list(true);
      out_.push_back({MailAddress::Kind::kGroupEnd, "", "", "", ""});
      return;
    }
    if (first < t_.size() && t_[first].is('<')) {
      angle_addr(join(i_, first, true), first + 1);
      return;
    }
    addr_spec(first);
  }

  // [route ":"] local "@" domain ">" after the "<" at `open`.
  void angle_addr(std::string name, size_t open) {
    i_ = open;
    const size_t close = find_first(">");
    MailAddress a{MailAddress::Kind::kMailbox, std::move(name), "", "", ""};
    size_t k = i_;
    if (k < close && t_[k].is('@')) {
      size_t colon = k;
      while (colon < close && !t_[colon].is(':')) ++colon;
      if (colon < close) {
        a.route = join(k, colon, false);
        k = colon + 1;
      }
    }
    size_t at = k;
    while (at < close && !t_[at].is('@')) ++at;
    a.mailbox = join(k, at, false);
    if (at < close) a.host = join(at + 1, close, false);
    i_ = close;
    // Whatever follows the ">" up to the next member is dropped.
    while (i_ < t_.size() && !t_[i_].is(',') && !t_[i_].is(';')) ++i_;
    emit(std::move(a));
  }

  void addr_spec(size_t end) {
    size_t at = i_;
    while (at < end && !t_[at].is('@')) ++at;
    MailAddress a;
    if (at < end) {
      a.mailbox = join(i_, at, false);
      a.host = join(at + 1, end, false);
    } else {
      a.mailbox = join(i_, end, true);
    }
    // RFC 822 practice: "user@host (Real Name)" names the mailbox in a comment.
    for (size_t k = i_; k < end; ++k)
      if (t_[k].kind == Token::Kind::kComment) a.name = t_[k].text;
    i_ = end;
    emit(std::move(a));
  }

  // A member of only comments or an empty "<>" names no mailbox.
  void emit(MailAddress a) {
    if (a.mailbox.empty() && a.host.empty()) return;
    out_.push_back(std::move(a));
  }

  // The text of tokens [b, e) without comments: with single spaces where the source had
  // white space (a phrase), or run together (a local part, a domain, a route).
  std::string join(size_t b, size_t e, bool spaced) const {
    std::string s;
    for (size_t k = b; k < e; ++k) {
      const Token& tok = t_[k];
      if (tok.kind == Token::Kind::kComment) continue;
      if (spaced && tok.space_before && !s.empty()) s += ' ';
      s += tok.text;
    }
    return s;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  std::vector<MailAddress> out_;
};

}  // namespace

std::vector<MailAddress> parse_address_list(std::string_view value) {
  return ListParser(tokenize(value)).run();
}

}  // namespace mta::mime
