#pragma once
// Decodes message content as it arrives after DATA (dot-stuffed, ends at CRLF.CRLF) or
// inside BDAT chunks (raw, counted), into the bytes that are queued.
//
// Anti-smuggling (the reason this is its own unit): only <CR><LF>.<CR><LF> ends DATA.
// A line start that follows a bare LF is never a place where the message can end, so
// <LF>.<LF>, <LF>.<CR><LF> and <CR>.<CR> are content (or errors), never terminators.
// Bare LF is normalised to CRLF, or flagged when the policy refuses it; bare CR is always
// flagged. Flagged problems do not stop decoding: SMTP has no way to reply mid-DATA, so the
// decoder keeps consuming to the real end and the session answers then.
//
// Output goes into chunks of at most kChunkSize bytes so that a large message is queued
// without one giant allocation; once the size limit is passed, output is discarded.
//
// Limits: a line longer than the line limit is flagged, not split.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mta::smtp {

enum class BareLfPolicy { kNormalize, kRefuse };

class BodyDecoder {
 public:
  static constexpr size_t kChunkSize = 1 << 20;

  enum class Mode { kDotStuffed, kRaw };
  enum Problem : unsigned {
    kNone = 0,
    kTooBig = 1,
    kBareCr = 2,
    kBareLf = 4,        // only under BareLfPolicy::kRefuse
    kLineTooLong = 8,
  };

  BodyDecoder(Mode mode, BareLfPolicy bare_lf, size_t max_size, size_t max_line);

  // Consumes bytes; returns how many were used. Less than `in.size()` only when the DATA
  // terminator was found (the rest belongs to the next command).
  size_t feed(std::string_view in);
  bool finished() const { return finished_; }
  // For BDAT: call at the end of the LAST chunk. A trailing CR is then a bare CR.
  void finish_raw();

  unsigned problems() const { return problems_; }
  size_t size() const { return size_; }
  std::vector<std::string> take_chunks();

 private:
  enum class State { kLineStart, kSoftLineStart, kMid, kCr, kDot, kDotCr };
  void emit(std::string_view s);
  void end_line();
  void mid_byte(char c);

  Mode mode_;
  BareLfPolicy bare_lf_;
  size_t max_size_;
  size_t max_line_;
  State state_ = State::kLineStart;
  size_t line_len_ = 0;
  size_t size_ = 0;
  unsigned problems_ = kNone;
  bool finished_ = false;
  std::vector<std::string> chunks_;
};

}  // namespace mta::smtp
