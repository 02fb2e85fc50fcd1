#include "mta/smtp/body_decoder.h"

#include <algorithm>

namespace mta::smtp {

BodyDecoder::BodyDecoder(Mode mode, BareLfPolicy bare_lf, size_t max_size, size_t max_line)
    : mode_(mode), bare_lf_(bare_lf), max_size_(max_size), max_line_(max_line) {}

void BodyDecoder::emit(std::string_view s) {
  size_ += s.size();
  if (size_ > max_size_) {
    problems_ |= kTooBig;
    chunks_.clear();  // nothing of an over-size message is kept
    return;
  }
  while (!s.empty()) {
    if (chunks_.empty() || chunks_.back().size() >= kChunkSize) {
      chunks_.emplace_back();
      chunks_.back().reserve(std::min(kChunkSize, std::max<size_t>(s.size(), 4096)));
    }
    std::string& c = chunks_.back();
    const size_t n = std::min(s.size(), kChunkSize - c.size());
    c.append(s.data(), n);
    s.remove_prefix(n);
  }
}

void BodyDecoder::end_line() {
  emit("\r\n");
  line_len_ = 0;
}

// A byte inside a line (or a line's first byte that is not a dot).
void BodyDecoder::mid_byte(char c) {
  if (c == '\r') {
    state_ = State::kCr;
  } else if (c == '\n') {
    // Bare LF: a line end for the content, but never one after which DATA can end.
    if (bare_lf_ == BareLfPolicy::kRefuse) problems_ |= kBareLf;
    end_line();
    state_ = State::kSoftLineStart;
  } else {
    if (++line_len_ > max_line_) problems_ |= kLineTooLong;
    emit(std::string_view(&c, 1));
    state_ = State::kMid;
  }
}

size_t BodyDecoder::feed(std::string_view in) {
  size_t i = 0;
  while (i < in.size() && !finished_) {
    const char c = in[i];
    switch (state_) {
      case State::kMid: {
        // Fast path: copy the run up to the next CR or LF in one go.
        size_t j = i;
        while (j < in.size() && in[j] != '\r' && in[j] != '\n') ++j;
        if (j > i) {
          line_len_ += j - i;
          if (line_len_ > max_line_) problems_ |= kLineTooLong;
          emit(in.substr(i, j - i));
          i = j;
          continue;
        }
        mid_byte(c);
        break;
      }
      case State::kLineStart:
        if (c == '.' && mode_ == Mode::kDotStuffed) {
          state_ = State::kDot;
        } else {
          mid_byte(c);
        }
        break;
      case State::kSoftLineStart:
        // Unstuff a leading dot as the client meant it, but this can never terminate.
        if (c == '.' && mode_ == Mode::kDotStuffed) {
          state_ = State::kMid;
        } else {
          mid_byte(c);
        }
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
        } else {
          mid_byte(c);  // the dot was stuffing: drop it, keep the byte
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          finished_ = true;  // <CRLF>.<CRLF>
        } else {
          problems_ |= kBareCr;  // "<CRLF>.<CR>x"
          mid_byte(c);
        }
        break;
      case State::kCr:
        if (c == '\n') {
          end_line();
          state_ = State::kLineStart;
        } else {
          problems_ |= kBareCr;
          mid_byte(c);
        }
        break;
    }
    ++i;
  }
  return i;
}

void BodyDecoder::finish_raw() {
  if (state_ == State::kCr) problems_ |= kBareCr;
  finished_ = true;
}

std::vector<std::string> BodyDecoder::take_chunks() { return std::move(chunks_); }

}  // namespace mta::smtp
