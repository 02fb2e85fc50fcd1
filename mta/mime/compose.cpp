#include "mta/mime/compose.h"

#include <algorithm>
#include <initializer_list>

#include "core/base64.h"
#include "core/date.h"
#include "mta/mime/header_fold.h"
#include "mta/mime/multipart.h"
#include "mta/mime/quoted_printable.h"

namespace mta::mime {
namespace {

constexpr size_t kMaxEncodedWord = 75;  // RFC 2047 §2
constexpr std::string_view kWordStartB = "=?utf-8?B?";
constexpr std::string_view kWordStartQ = "=?utf-8?Q?";
constexpr size_t kWordOverhead = 12;  // "=?utf-8?X?" and "?="
// An encoded word holding at least one character of up to 4 octets (Q: 4 x "=XX").
constexpr size_t kMinEncodedWord = kWordOverhead + 12;
// A literal word of the subject longer than this is encoded, so that it can be split and
// every line of the field stays within kFoldWidth.
constexpr size_t kMaxLiteralWord = 70;
constexpr size_t kMaxBodyLine = 76;  // RFC 2045 §6.7 (5) and §6.8, for the 7bit choice too
constexpr size_t kBoundaryRandom = 24;
constexpr char kHex[] = "0123456789ABCDEF";

std::string path_of(std::string_view list, size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

core::Status invalid(std::string_view path, std::string_view what) {
  return core::Status::invalid(std::string(path) + ": " + std::string(what));
}

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

size_t char_length(std::string_view s) {
  return std::max<size_t>(1, core::utf8_sequence_length(s));
}

// What is wrong with text meant for one header line, or "" when nothing is.
std::string_view line_problem(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r' || c == '\n') return "has a line break";
    if (c == 0) return "has a NUL byte";
    if ((c < 0x20 && c != '\t') || c == 0x7F) return "has a control character";
  }
  if (!core::is_valid_utf8(s)) return "is not UTF-8";
  return "";
}

// A word of text with the run of white space before it. White space at the end of the text
// belongs to no word, so splitting also trims.
struct Word {
  std::string_view space;
  std::string_view text;
};

std::vector<Word> split_words(std::string_view s) {
  std::vector<Word> words;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    while (i < s.size() && is_wsp(s[i])) ++i;
    const size_t word = i;
    while (i < s.size() && !is_wsp(s[i])) ++i;
    if (i > word) words.push_back({s.substr(start, word - start), s.substr(word, i - word)});
  }
  return words;
}

// One header field being written: words are added with the white space before them, and a
// fold (CRLF) goes in front of that white space when the line would pass kFoldWidth
// (RFC 5322 §2.2.3), so unfolding gives back exactly the text that was added.
class FieldWriter {
 public:
  explicit FieldWriter(std::string_view name) : out_(name) {
    out_ += ':';
    column_ = out_.size();
  }

  // Octets left on the current line after `space`.
  size_t room(size_t space) const {
    return kFoldWidth > column_ + space ? kFoldWidth - column_ - space : 0;
  }

  void add(std::string_view space, std::string_view word, bool fold_first = false) {
    if (!space.empty() && has_word_ && (fold_first || room(space.size()) < word.size())) {
      out_ += "\r\n";
      column_ = 0;
    }
    out_ += space;
    out_ += word;
    column_ += space.size() + word.size();
    has_word_ = true;
  }

  std::string finish() && {
    out_ += "\r\n";
    return std::move(out_);
  }

 private:
  std::string out_;
  size_t column_ = 0;
  bool has_word_ = false;
};

// RFC 2047 §5 (3): what may stand for itself in a "Q" word, even inside a phrase.
bool is_q_literal(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' ||
         c == '*' || c == '+' || c == '-' || c == '/' || c == ' ';
}

size_t q_length(std::string_view bytes) {
  size_t n = 0;
  for (char c : bytes) n += is_q_literal(static_cast<unsigned char>(c)) ? 1 : 3;
  return n;
}

size_t b_length(size_t octets) { return (octets + 2) / 3 * 4; }

void append_q(std::string_view bytes, std::string& out) {
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ') {
      out += '_';  // RFC 2047 §4.2 (2)
    } else if (is_q_literal(c)) {
      out += ch;
    } else {
      out += '=';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

// `text` as encoded words (RFC 2047), the first after `space`, each sized to the room left
// on its line and split only between characters (§5: each word holds whole characters).
// Decoders drop the white space between adjacent encoded words (§6.2), so `text` comes back
// exactly, white space inside it included.
void add_encoded(FieldWriter& w, std::string_view space, std::string_view text) {
  const bool use_b = b_length(text.size()) < q_length(text);
  while (!text.empty()) {
    size_t limit = std::min(kMaxEncodedWord, w.room(space.size()));
    const bool fold = limit < kMinEncodedWord;
    if (fold) limit = kMaxEncodedWord;
    size_t take = 0;
    size_t encoded = 0;
    while (take < text.size()) {
      const size_t n = char_length(text.substr(take));
      const size_t next = use_b ? b_length(take + n) : encoded + q_length(text.substr(take, n));
      if (kWordOverhead + next > limit) break;
      take += n;
      encoded = next;
    }
    std::string word(use_b ? kWordStartB : kWordStartQ);
    if (use_b) {
      word += core::encode_base64(text.substr(0, take));
    } else {
      append_q(text.substr(0, take), word);
    }
    word += "?=";
    w.add(space, word, fold);
    text.remove_prefix(take);
    space = " ";
  }
}

// Unstructured text (RFC 5322 §3.2.5, RFC 2047 §5 (1)): words that are not ASCII, that could
// be read as an encoded word, or that are too long to fold are encoded; a run of such words
// becomes one encoded text, so the white space between them survives.
void add_unstructured(FieldWriter& w, std::string_view text) {
  const auto needs_encoding = [](std::string_view word) {
    return !is_ascii(word) || word.find("=?") != std::string_view::npos ||
           word.size() > kMaxLiteralWord;
  };
  const std::vector<Word> words = split_words(text);
  for (size_t i = 0; i < words.size();) {
    const std::string_view space = i == 0 ? " " : words[i].space;
    if (!needs_encoding(words[i].text)) {
      w.add(space, words[i].text);
      ++i;
      continue;
    }
    const char* begin = words[i].text.data();
    const char* end = begin + words[i].text.size();
    for (++i; i < words.size() && needs_encoding(words[i].text); ++i)
      end = words[i].text.data() + words[i].text.size();
    add_encoded(w, space, std::string_view(begin, end - begin));
  }
}

bool is_atext(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
             std::string_view::npos;
}

// A display name (RFC 5322 §3.2.5 phrase): atoms as they are, other ASCII as one quoted
// string (folded at its spaces, §3.2.4 allows FWS inside), and anything that is not ASCII,
// could be read as an encoded word or cannot be folded as RFC 2047 encoded words.
void add_phrase(FieldWriter& w, std::string_view name) {
  const std::vector<Word> words = split_words(name);
  bool encode = false;
  bool atoms = true;
  for (const Word& word : words) {
    encode = encode || !is_ascii(word.text) || word.text.find("=?") != std::string_view::npos ||
             word.text.size() > kMaxLiteralWord;
    atoms = atoms && word.space.size() <= 1 &&
            std::all_of(word.text.begin(), word.text.end(),
                        [](char c) { return is_atext(static_cast<unsigned char>(c)); });
  }
  if (encode) {
    add_encoded(w, " ", name);
    return;
  }
  if (atoms && !is_wsp(name.front()) && !is_wsp(name.back())) {
    for (const Word& word : words) w.add(" ", word.text);
    return;
  }
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') quoted += '\\';
    quoted += c;
  }
  quoted += '"';
  const std::vector<Word> pieces = split_words(quoted);
  for (size_t i = 0; i < pieces.size(); ++i) w.add(i == 0 ? " " : pieces[i].space, pieces[i].text);
}

std::string address_field(std::string_view field, const std::vector<Mailbox>& list) {
  FieldWriter w(field);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string separator = i + 1 < list.size() ? "," : "";
    if (list[i].name.empty()) {
      w.add(" ", list[i].address.str() + separator);
      continue;
    }
    add_phrase(w, list[i].name);
    w.add(" ", "<" + list[i].address.str() + ">" + separator);
  }
  return std::move(w).finish();
}

bool is_token_char(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c > 32 && c < 127 && std::string_view("()<>@,;:\\\"/[]?=").find(ch) == std::string::npos;
}

// A MIME parameter (RFC 2045 §5.1) as one or more "name=value" items: a token, a quoted
// string, or for text that is not ASCII the RFC 2231 form "name*=utf-8''%E2%82%AC", split
// into sections "name*0*=", "name*1*=" ... when it would not fit on one line.
void append_param(std::vector<std::string>& items, std::string_view name, std::string_view value) {
  if (is_ascii(value)) {
    if (!value.empty() && std::all_of(value.begin(), value.end(), is_token_char)) {
      items.push_back(std::string(name) + "=" + std::string(value));
      return;
    }
    std::string item = std::string(name) + "=\"";
    for (char c : value) {
      if (c == '"' || c == '\\') item += '\\';
      item += c;
    }
    items.push_back(item + "\"");
    return;
  }
  // RFC 2231 §7 attribute-char stays, every other octet is %XX; characters are not split.
  std::vector<std::string> chars;
  for (size_t i = 0; i < value.size();) {
    const size_t n = char_length(value.substr(i));
    std::string piece;
    for (char ch : value.substr(i, n)) {
      const auto c = static_cast<unsigned char>(ch);
      if (is_token_char(ch) && ch != '*' && ch != '\'' && ch != '%') {
        piece += ch;
      } else {
        piece += '%';
        piece += kHex[c >> 4];
        piece += kHex[c & 15];
      }
    }
    chars.push_back(std::move(piece));
    i += n;
  }
  const std::string single = std::string(name) + "*=utf-8''";
  size_t total = single.size();
  for (const auto& c : chars) total += c.size();
  if (total + 2 <= kFoldWidth) {  // " " before and ";" after
    std::string item = single;
    for (const auto& c : chars) item += c;
    items.push_back(std::move(item));
    return;
  }
  size_t section = 0;
  std::string item = std::string(name) + "*0*=utf-8''";
  for (const auto& c : chars) {
    if (item.size() + c.size() + 2 > kFoldWidth) {
      items.push_back(std::move(item));
      item = std::string(name) + "*" + std::to_string(++section) + "*=";
    }
    item += c;
  }
  items.push_back(std::move(item));
}

// "Name: item1; item2; ..." folded between items.
std::string params_field(std::string_view field, const std::vector<std::string>& items) {
  FieldWriter w(field);
  for (size_t i = 0; i < items.size(); ++i)
    w.add(" ", i + 1 < items.size() ? items[i] + ";" : items[i]);
  return std::move(w).finish();
}

// A body part or the message's own content: its MIME header fields (each ending in CRLF)
// and its body.
struct Node {
  std::string headers;
  std::string body;
};

// CRLF for every bare CR and bare LF (RFC 5322 §2.3: CR and LF only together).
std::string crlf_lines(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out += "\r\n";
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else if (text[i] == '\n') {
      out += "\r\n";
    } else {
      out += text[i];
    }
  }
  return out;
}

// 7bit (RFC 2045 §2.7) when the text is ASCII without NUL or other controls but TAB and has
// lines of at most kMaxBodyLine octets; quoted-printable otherwise.
bool fits_7bit(std::string_view crlf_text) {
  size_t line = 0;
  for (size_t i = 0; i < crlf_text.size(); ++i) {
    const auto c = static_cast<unsigned char>(crlf_text[i]);
    if (c == '\r') {  // always followed by '\n' after crlf_lines()
      line = 0;
      ++i;
      continue;
    }
    if (c >= 0x80 || (c < 0x20 && c != '\t') || c == 0x7F || ++line > kMaxBodyLine) return false;
  }
  return true;
}

Node text_node(std::string_view subtype, std::string_view text) {
  std::string lines = crlf_lines(text);
  const bool seven_bit = fits_7bit(lines);
  Node n;
  n.headers = "Content-Type: text/" + std::string(subtype) + "; charset=utf-8\r\n" +
              "Content-Transfer-Encoding: " + (seven_bit ? "7bit" : "quoted-printable") + "\r\n";
  n.body = seven_bit ? std::move(lines) : encode_quoted_printable(lines);
  return n;
}

std::string base64_lines(std::string_view bytes) {
  const std::string flat = core::encode_base64(bytes);
  std::string out;
  out.reserve(flat.size() + flat.size() / kMaxBodyLine * 2);
  for (size_t i = 0; i < flat.size(); i += kMaxBodyLine) {
    if (i > 0) out += "\r\n";
    out += flat.substr(i, kMaxBodyLine);
  }
  return out;
}

std::string bracketed(std::string_view id) {
  if (!id.empty() && id.front() == '<') return std::string(id);
  return "<" + std::string(id) + ">";
}

Node attachment_node(const Attachment& a) {
  const std::optional<ContentType> declared =
      parse_content_type(a.content_type.empty() ? "application/octet-stream" : a.content_type);
  std::vector<std::string> type{declared->type + "/" + declared->subtype};
  for (const auto& [name, value] : declared->params)
    if (name != "name" && name.rfind("name*", 0) != 0) append_param(type, name, value);
  append_param(type, "name", a.filename);
  std::vector<std::string> disposition{a.content_id ? "inline" : "attachment"};
  append_param(disposition, "filename", a.filename);
  Node n;
  n.headers = params_field("Content-Type", type) +
              params_field("Content-Disposition", disposition) +
              "Content-Transfer-Encoding: base64\r\n";
  if (a.content_id) n.headers += fold_field("Content-ID", bracketed(*a.content_id));
  n.body = base64_lines(a.bytes);
  return n;
}

// splitmix64: a boundary needs to be unguessable by whoever wrote the content only when the
// seed is; any fixed mixing of it will do.
class BoundaryRng {
 public:
  explicit BoundaryRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// RFC 2046 §5.1.1. "=_" cannot occur in quoted-printable or base64 output, and the random
// tail is checked against everything the multipart holds, so no part can contain it.
Node multipart_node(std::string_view subtype, std::vector<std::string> params,
                    const std::vector<Node>& parts, BoundaryRng& rng) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string boundary;
  const auto occurs = [&](const std::string& b) {
    return std::any_of(parts.begin(), parts.end(), [&](const Node& p) {
      return p.headers.find(b) != std::string::npos || p.body.find(b) != std::string::npos;
    });
  };
  do {
    boundary = "=_porter_";
    for (size_t i = 0; i < kBoundaryRandom; ++i)
      boundary += kAlphabet[rng.next() % kAlphabet.size()];
  } while (occurs(boundary));
  params.insert(params.begin(), "multipart/" + std::string(subtype));
  params.push_back("boundary=\"" + boundary + "\"");
  Node n;
  n.headers = params_field("Content-Type", params);
  for (const Node& p : parts) {
    n.body += "--" + boundary + "\r\n";
    n.body += p.headers;
    n.body += "\r\n";
    n.body += p.body;
    n.body += "\r\n";
  }
  n.body += "--" + boundary + "--\r\n";
  return n;
}

Node content_node(const Composition& c, BoundaryRng& rng) {
  Node body;
  if (c.text && c.html) {
    body = multipart_node("alternative", {},
                          {text_node("plain", *c.text), text_node("html", *c.html)}, rng);
  } else {
    body = c.text ? text_node("plain", *c.text) : text_node("html", *c.html);
  }
  std::vector<Node> inline_parts{};
  std::vector<Node> attached{};
  for (const Attachment& a : c.attachments)
    (a.content_id ? inline_parts : attached).push_back(attachment_node(a));
  if (!inline_parts.empty()) {
    const std::string root_type = c.text && c.html ? "multipart/alternative"
                                  : c.text         ? "text/plain"
                                                   : "text/html";
    inline_parts.insert(inline_parts.begin(), std::move(body));
    body = multipart_node("related", {"type=\"" + root_type + "\""}, inline_parts, rng);
  }
  if (!attached.empty()) {
    attached.insert(attached.begin(), std::move(body));
    body = multipart_node("mixed", {}, attached, rng);
  }
  return body;
}

core::Status check_address(std::string_view path, const core::Address& a, bool smtputf8) {
  if (a.empty()) return invalid(path, "not an address (empty)");
  if (a.needs_utf8() && !smtputf8) return invalid(path, "a non-ASCII address needs SMTPUTF8");
  if (auto parsed = core::parse_mailbox(a.str(), smtputf8); !parsed)
    return invalid(path, "not an address (" + parsed.status().message() + ")");
  return core::Status::ok();
}

core::Status check_name(std::string_view path, std::string_view name) {
  if (const std::string_view problem = line_problem(name); !problem.empty())
    return invalid(path, "display name " + std::string(problem));
  if (name.size() > kMaxDisplayName)
    return invalid(path, "display name longer than " + std::to_string(kMaxDisplayName) + " octets");
  return core::Status::ok();
}

core::Status check_list(std::string_view field, const std::vector<Mailbox>& list, bool smtputf8) {
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = path_of(field, i);
    if (auto s = check_address(path, list[i].address, smtputf8); !s) return s;
    if (auto s = check_name(path, list[i].name); !s) return s;
  }
  return core::Status::ok();
}

bool is_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 32 && c < 127 && c != ':';  // RFC 5322 §3.6.8 ftext
  });
}

core::Status check_header(const std::string& name, std::string_view value) {
  const std::string path = "headers." + name;
  if (!is_field_name(name)) return invalid(path, "not a valid header field name");
  if (name.size() > kMaxFieldName)
    return invalid(path, "name longer than " + std::to_string(kMaxFieldName) + " octets");
  if (is_reserved_field(name)) return invalid(path, "is set by Porter and cannot be given");
  if (const std::string_view problem = line_problem(value); !problem.empty())
    return invalid(path, "value " + std::string(problem));
  if (is_ascii(value)) {
    for (const Word& w : split_words(value))
      if (w.text.size() > kMaxHeaderWord)
        return invalid(path, "value has more than " + std::to_string(kMaxHeaderWord) +
                                 " octets without white space");
  }
  return core::Status::ok();
}

// RFC 5322 §3.6.4 msg-id without the brackets: dot-atom-text "@" (dot-atom-text or a domain
// literal). A Content-ID (RFC 2045 §7) is read the same way without requiring the "@",
// because "cid:logo" is what HTML mail commonly uses.
bool is_msg_id(std::string_view id, bool need_at) {
  if (id.size() >= 2 && id.front() == '<' && id.back() == '>') id = id.substr(1, id.size() - 2);
  if (id.empty() || id.size() > kMaxHeaderWord) return false;
  const size_t at = id.find('@');
  if (at == std::string_view::npos)
    return !need_at && std::all_of(id.begin(), id.end(), [](char c) {
      return is_atext(static_cast<unsigned char>(c)) || c == '.';
    });
  const std::string_view left = id.substr(0, at);
  const std::string_view right = id.substr(at + 1);
  const auto dot_atom = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return is_atext(static_cast<unsigned char>(c)) || c == '.';
    });
  };
  const bool literal = right.size() >= 2 && right.front() == '[' && right.back() == ']' &&
                       std::all_of(right.begin() + 1, right.end() - 1, [](char c) {
                         return c > 32 && c < 127 && c != '[' && c != ']' && c != '\\';
                       });
  return dot_atom(left) && (dot_atom(right) || literal);
}

core::Status check_attachment(size_t i, const Attachment& a) {
  const std::string path = path_of("attachments", i);
  if (a.filename.empty()) return invalid(path + ".filename", "empty");
  if (const std::string_view problem = line_problem(a.filename); !problem.empty())
    return invalid(path + ".filename", problem);
  if (a.filename.size() > kMaxFilename)
    return invalid(path + ".filename", "longer than " + std::to_string(kMaxFilename) + " octets");
  if (!a.content_type.empty()) {
    const std::optional<ContentType> type = parse_content_type(a.content_type);
    if (!type || !is_ascii(a.content_type) ||
        a.content_type.find_first_of("\r\n") != std::string::npos)
      return invalid(path + ".content_type", "not a MIME type (type/subtype)");
    if (type->type == "multipart" || type->type == "message")
      return invalid(path + ".content_type", "multipart and message types cannot be attached");
  }
  if (a.content_id && !is_msg_id(*a.content_id, false))
    return invalid(path + ".content_id", "not a valid Content-ID");
  return core::Status::ok();
}

}  // namespace

bool is_reserved_field(std::string_view name) {
  static constexpr std::string_view kReserved[] = {
      "From",         "To",      "Cc",       "Bcc",      "Date",        "Message-ID",
      "MIME-Version", "Subject", "Reply-To", "Received", "Return-Path", "DKIM-Signature"};
  if (name.size() >= 8 && core::iequals(name.substr(0, 8), "Content-")) return true;
  return std::any_of(std::begin(kReserved), std::end(kReserved),
                     [&](std::string_view r) { return core::iequals(r, name); });
}

core::Status validate(const Composition& c) {
  if (auto s = check_address("from", c.from, c.smtputf8); !s) return s;
  if (auto s = check_name("from", c.from_name); !s) return s;
  if (auto s = check_list("to", c.to, c.smtputf8); !s) return s;
  if (auto s = check_list("cc", c.cc, c.smtputf8); !s) return s;
  if (auto s = check_list("reply_to", c.reply_to, c.smtputf8); !s) return s;
  if (const std::string_view problem = line_problem(c.subject); !problem.empty())
    return invalid("subject", problem);
  if (c.subject.size() > kMaxSubject)
    return invalid("subject", "longer than " + std::to_string(kMaxSubject) + " octets");
  if (!c.text && !c.html) return core::Status::invalid("text or html is required");
  if (c.text && !core::is_valid_utf8(*c.text)) return invalid("text", "is not UTF-8");
  if (c.html && !core::is_valid_utf8(*c.html)) return invalid("html", "is not UTF-8");
  for (const auto& [name, value] : c.headers)
    if (auto s = check_header(name, value); !s) return s;
  for (size_t i = 0; i < c.attachments.size(); ++i)
    if (auto s = check_attachment(i, c.attachments[i]); !s) return s;
  return core::Status::ok();
}

core::Result<std::string> compose(const Composition& c, uint64_t boundary_seed) {
  if (auto s = validate(c); !s) return s;
  if (!is_msg_id(c.message_id, true)) return invalid("message_id", "not a msg-id <left@right>");

  std::string out = address_field("From", {{c.from_name, c.from}});
  // RFC 5322 §3.6.3 allows no To:, but filters hold it against a message; a group with no
  // members says plainly that the recipients are not shown.
  out += c.to.empty() && c.cc.empty() ? "To: undisclosed-recipients:;\r\n" : "";
  if (!c.to.empty()) out += address_field("To", c.to);
  if (!c.cc.empty()) out += address_field("Cc", c.cc);
  if (!c.reply_to.empty()) out += address_field("Reply-To", c.reply_to);
  if (!split_words(c.subject).empty()) {
    FieldWriter w("Subject");
    add_unstructured(w, c.subject);
    out += std::move(w).finish();
  }
  out += "Date: " + core::rfc5322_date(c.date_ms) + "\r\n";
  out += "Message-ID: " + bracketed(c.message_id) + "\r\n";
  for (const auto& [name, value] : c.headers) {
    FieldWriter w(name);
    if (is_ascii(value)) {
      const std::vector<Word> words = split_words(value);
      for (size_t i = 0; i < words.size(); ++i) w.add(i == 0 ? " " : words[i].space, words[i].text);
    } else {
      add_unstructured(w, value);
    }
    out += std::move(w).finish();
  }
  out += "MIME-Version: 1.0\r\n";

  BoundaryRng rng(boundary_seed);
  Node content = content_node(c, rng);
  out += content.headers;
  out += "\r\n";
  out += content.body;
  // A single text part may end without a line break; the message must not (RFC 5321 §4.1.1.4).
  if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  return out;
}

}  // namespace mta::mime
