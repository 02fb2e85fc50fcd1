#include "mta/smtp/reply_parser.h"

#include <utility>

namespace mta::smtp {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Length of an RFC 3463 status code "c.sss.ddd" at the start of `text` whose class digit is
// the reply's, when one is followed by a space or the end of the line; else 0.
size_t enhanced_length(std::string_view text, int code) {
  const char klass = static_cast<char>('0' + code / 100);
  if (klass != '2' && klass != '4' && klass != '5') return 0;
  if (text.size() < 5 || text[0] != klass || text[1] != '.') return 0;
  size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    const size_t start = i;
    while (i < text.size() && i - start < 4 && is_digit(text[i])) ++i;
    const size_t digits = i - start;
    if (digits == 0 || digits > 3) return 0;
    if (part == 0) {
      if (i >= text.size() || text[i] != '.') return 0;
      ++i;
    }
  }
  return (i == text.size() || text[i] == ' ') ? i : 0;
}

}  // namespace

ReplyParser::ReplyParser(size_t max_line, size_t max_lines)
    : max_line_(max_line), max_lines_(max_lines) {}

void ReplyParser::feed(std::string_view bytes) {
  if (error_.is_ok()) in_.append(bytes);
}

void ReplyParser::clear() {
  in_.clear();
  lines_ = 0;
  partial_ = core::Reply{};
}

core::Status ReplyParser::fail(std::string message) {
  error_ = core::Status::invalid(std::move(message));
  in_.clear();
  return error_;
}

core::Result<std::optional<core::Reply>> ReplyParser::next() {
  if (!error_.is_ok()) return error_;
  size_t pos = 0;
  while (true) {
    const size_t lf = in_.find('\n', pos);
    if (lf == std::string::npos) {
      // +1: the CR of a line end may already be here while its LF is not.
      if (in_.size() - pos > max_line_ + 1)
        return fail("reply line longer than " + std::to_string(max_line_) + " octets");
      in_.erase(0, pos);
      return std::optional<core::Reply>();
    }
    std::string_view line(in_.data() + pos, lf - pos);
    pos = lf + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line_)
      return fail("reply line longer than " + std::to_string(max_line_) + " octets");
    if (++lines_ > max_lines_)
      return fail("reply longer than " + std::to_string(max_lines_) + " lines");
    if (line.size() < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) ||
        !is_digit(line[2]) || (line.size() > 3 && line[3] != ' ' && line[3] != '-'))
      return fail("malformed reply line \"" + std::string(line.substr(0, 64)) + "\"");
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    const bool last = line.size() == 3 || line[3] == ' ';
    std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
    if (lines_ == 1) {
      partial_ = core::Reply{code, "", ""};
      if (const size_t n = enhanced_length(text, code)) {
        partial_.enhanced = std::string(text.substr(0, n));
        text.remove_prefix(n < text.size() ? n + 1 : n);
      }
    } else {
      if (code != partial_.code)
        return fail("reply lines with different codes (" + std::to_string(partial_.code) + " and " +
                    std::to_string(code) + ")");
      partial_.text += '\n';
      const std::string_view enh = partial_.enhanced;
      if (!enh.empty() && text.substr(0, enh.size()) == enh &&
          (text.size() == enh.size() || text[enh.size()] == ' '))
        text.remove_prefix(text.size() == enh.size() ? enh.size() : enh.size() + 1);
    }
    partial_.text += text;
    if (last) {
      in_.erase(0, pos);
      lines_ = 0;
      return std::optional<core::Reply>(std::exchange(partial_, core::Reply{}));
    }
  }
}

}  // namespace mta::smtp
