#include "mta/mime/encoded_words.h"

#include <algorithm>
#include <charconv>

#include "core/address.h"
#include "mta/mime/charset.h"
#include "mta/mime/header_section.h"
#include "mta/mime/transfer_encoding.h"

namespace mta::mime {
namespace {

constexpr int kMaxSection = 999;

bool is_wsp(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

struct Word {
  std::string_view charset;
  char encoding;  // 'b' or 'q'
  std::string_view text;
  size_t end;  // just past "?="
};

// Finds encoded words (RFC 2047 §2) in one text. Each search for the next "?", "?=" or
// white space starts where the last one left it, so hostile input like "=?a?q?a=?a?q?a..."
// stays linear instead of rescanning the rest of the text at every "=?".
class WordFinder {
 public:
  explicit WordFinder(std::string_view s) : s_(s) {}

  std::optional<Word> at(size_t i) {
    if (s_.substr(i, 2) != "=?") return std::nullopt;
    const size_t cs_begin = i + 2;
    const size_t cs_end = next(question_, cs_begin, [&](size_t f) { return s_.find('?', f); });
    if (cs_end == std::string_view::npos || cs_end == cs_begin) return std::nullopt;
    if (cs_end + 2 >= s_.size() || s_[cs_end + 2] != '?') return std::nullopt;
    const char enc = s_[cs_end + 1];
    if (enc != 'b' && enc != 'B' && enc != 'q' && enc != 'Q') return std::nullopt;
    const size_t text_begin = cs_end + 3;
    const size_t text_end = next(closing_, text_begin, [&](size_t f) { return s_.find("?=", f); });
    if (text_end == std::string_view::npos) return std::nullopt;
    const size_t ws =
        next(space_, cs_begin, [&](size_t f) { return s_.find_first_of(" \t\r\n", f); });
    if (ws < text_end) return std::nullopt;
    return Word{s_.substr(cs_begin, cs_end - cs_begin), static_cast<char>(enc | 0x20),
                s_.substr(text_begin, text_end - text_begin), text_end + 2};
  }

 private:
  struct Cache {
    bool valid = false;
    size_t pos = 0;
  };
  template <typename Find>
  size_t next(Cache& c, size_t from, Find find) {
    if (!c.valid || c.pos < from) {
      c.pos = find(from);
      c.valid = true;
    }
    return c.pos;
  }
  std::string_view s_;
  Cache question_, closing_, space_;
};

std::string decode_q(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_') {
      out += ' ';  // RFC 2047 §4.2 (2)
    } else if (c == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

bool all_wsp(std::string_view s) {
  return std::all_of(s.begin(), s.end(), is_wsp);
}

// RFC 2231 §7 attribute-char: what may stand unencoded in an extended value.
bool is_attribute_char(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c <= 32 || c >= 127) return false;
  return std::string_view("*'%()<>@,;:\\\"/[]?=").find(ch) == std::string_view::npos;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    if (is_attribute_char(ch)) {
      out += ch;
    } else {
      const auto c = static_cast<unsigned char>(ch);
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// One raw parameter name in RFC 2231 terms.
struct NamePart {
  std::string base;
  int section = -1;  // -1: not a continuation
  bool encoded = false;
};

NamePart split_name(std::string_view name) {
  const size_t star = name.find('*');
  if (star == std::string_view::npos || star == 0) return {std::string(name)};
  const std::string_view base = name.substr(0, star);
  std::string_view rest = name.substr(star + 1);
  if (rest.empty()) return {std::string(base), -1, true};
  bool encoded = false;
  if (rest.back() == '*') {
    encoded = true;
    rest.remove_suffix(1);
  }
  int n = 0;
  const auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
  if (ec != std::errc() || p != rest.data() + rest.size() || rest.empty() || n < 0)
    return {std::string(name)};
  return {std::string(base), n, encoded};
}

}  // namespace

std::string decode_encoded_words(std::string_view s) {
  std::string out;
  std::string pending;  // decoded octets of adjacent words in one charset
  std::string pending_charset;
  bool have_pending = false;
  const auto flush = [&] {
    if (!have_pending) return;
    out += to_utf8(pending, pending_charset);
    pending.clear();
    have_pending = false;
  };
  WordFinder finder(s);
  bool after_word = false;
  size_t plain_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    const size_t at = s.find("=?", i);
    if (at == std::string_view::npos) break;
    const auto w = finder.at(at);
    if (!w) {
      i = at + 1;
      continue;
    }
    const std::string_view plain = s.substr(plain_start, at - plain_start);
    if (!(after_word && all_wsp(plain))) {  // RFC 2047 §6.2: drop space between words
      flush();
      out += sanitize_utf8(plain);
    }
    std::string bytes = w->encoding == 'b' ? decode_base64_lenient(w->text) : decode_q(w->text);
    if (have_pending && core::iequals(pending_charset, w->charset)) {
      pending += bytes;
    } else {
      flush();
      pending_charset = std::string(w->charset);
      pending = std::move(bytes);
      have_pending = true;
    }
    i = plain_start = w->end;
    after_word = true;
  }
  flush();
  out += sanitize_utf8(s.substr(plain_start));
  return out;
}

std::string decode_header_value(std::string_view raw_value) {
  return decode_encoded_words(unfold_value(raw_value));
}

Params merge_rfc2231(const Params& raw) {
  struct Section {
    int n;
    bool encoded;
    std::string_view value;
  };
  struct Base {
    std::string name;
    std::vector<Section> sections;
  };
  Params singles;
  // Output order follows the first appearance of each name; `order` holds, per output slot,
  // either a finished single parameter or the index of a base whose sections are joined.
  std::vector<std::pair<bool, size_t>> order;  // (is_base, index)
  std::vector<Base> bases;
  for (const auto& [name, value] : raw) {
    const NamePart np = split_name(name);
    if (np.section < 0) {
      singles.emplace_back(np.encoded ? np.base + "*" : np.base, value);
      order.emplace_back(false, singles.size() - 1);
      continue;
    }
    if (np.section > kMaxSection) continue;
    auto it =
        std::find_if(bases.begin(), bases.end(), [&](const Base& b) { return b.name == np.base; });
    if (it == bases.end()) {
      bases.push_back({np.base, {}});
      order.emplace_back(true, bases.size() - 1);
      it = bases.end() - 1;
    }
    it->sections.push_back({np.section, np.encoded, value});
  }
  Params out;
  const auto add = [&](std::string name, std::string value) {
    for (const auto& p : out)
      if (p.first == name) return;
    out.emplace_back(std::move(name), std::move(value));
  };
  for (const auto& [is_base, index] : order) {
    if (!is_base) {
      add(singles[index].first, singles[index].second);
      continue;
    }
    auto sections = bases[index].sections;
    std::stable_sort(sections.begin(), sections.end(),
                     [](const Section& a, const Section& b) { return a.n < b.n; });
    const bool extended = sections.front().encoded;
    std::string joined;
    int last = -1;
    for (const auto& sec : sections) {
      if (sec.n == last) continue;  // a repeated section: the first wins
      last = sec.n;
      if (extended)
        joined += sec.encoded ? std::string(sec.value) : percent_encode(sec.value);
      else
        joined += sec.encoded ? percent_decode(sec.value) : std::string(sec.value);
    }
    add(extended ? bases[index].name + "*" : bases[index].name, std::move(joined));
  }
  return out;
}

std::string decode_rfc2231_value(std::string_view value) {
  const size_t q1 = value.find('\'');
  const size_t q2 = q1 == std::string_view::npos ? q1 : value.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return sanitize_utf8(percent_decode(value));
  return to_utf8(percent_decode(value.substr(q2 + 1)), value.substr(0, q1));
}

std::optional<std::string> param_utf8(const Params& merged, std::string_view name) {
  for (const auto& [n, v] : merged)
    if (n.size() == name.size() + 1 && n.back() == '*' &&
        core::iequals(std::string_view(n).substr(0, name.size()), name))
      return decode_rfc2231_value(v);
  for (const auto& [n, v] : merged)
    if (core::iequals(n, name)) return decode_encoded_words(v);
  return std::nullopt;
}

}  // namespace mta::mime
