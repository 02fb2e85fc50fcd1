#include "mta/http/request_parser.h"

#include <algorithm>

namespace mta::http {
namespace {

// The request line beyond its target: method, two spaces, "HTTP/1.1", CRLF.
constexpr size_t kRequestLineSlack = 64;
// A chunk-size line with its extensions (RFC 9112 §7.1.1); extensions are ignored.
constexpr size_t kMaxChunkLine = 4096;
// Enough hex digits for any body under the limit; more is an overflow attempt.
constexpr size_t kMaxChunkSizeDigits = 15;

bool is_tchar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// field-vchar, SP and HTAB (RFC 9110 §5.5): no controls; obs-text is tolerated.
bool is_field_value(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

// Visible ASCII, no '#' (a fragment is never sent, RFC 9112 §3.2).
bool is_target_text(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f && c != '#';
  });
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// 1*DIGIT without overflow; nullopt otherwise.
std::optional<uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool split_query(std::string_view query, std::vector<std::pair<std::string, std::string>>* out) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      auto name = percent_decode(pair.substr(0, eq), true);
      auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
      if (!name || !value) return false;
      out->emplace_back(std::move(*name), std::move(*value));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return true;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string_view> Request::query_param(std::string_view name) const {
  for (const auto& [k, v] : query_params) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

RequestParser::RequestParser(Limits limits) : limits_(limits) {}

void RequestParser::feed(std::string_view bytes) {
  if (state_ == State::kFailed) return;
  // Drop what earlier requests consumed, but not on every feed: a pipelined burst would
  // otherwise be moved once per request.
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = scan_ = 0;
  } else if (pos_ > 4096 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
  }
  buf_.append(bytes);
}

ParseError RequestParser::fail(int status, std::string reason) {
  state_ = State::kFailed;
  error_ = ParseError{status, std::move(reason)};
  return error_;
}

RequestParser::Line RequestParser::take_line(size_t max_bytes, std::string_view* line) {
  const size_t lf = buf_.find('\n', scan_);
  if (lf == std::string::npos) {
    scan_ = buf_.size();
    return buf_.size() - pos_ >= max_bytes ? Line::kTooLong : Line::kNeedMore;
  }
  if (lf + 1 - pos_ > max_bytes) return Line::kTooLong;
  if (lf == pos_ || buf_[lf - 1] != '\r') return Line::kBad;
  const std::string_view text(buf_.data() + pos_, lf - 1 - pos_);
  if (text.find('\r') != std::string_view::npos) return Line::kBad;
  head_bytes_ += lf + 1 - pos_;
  pos_ = scan_ = lf + 1;
  *line = text;
  return Line::kOk;
}

ParseStep RequestParser::next() {
  std::string_view line;
  for (;;) {
    switch (state_) {
      case State::kFailed:
        return error_;

      case State::kStart:
        switch (take_line(limits_.max_target_bytes + kRequestLineSlack, &line)) {
          case Line::kNeedMore:
            return NeedMore{};
          case Line::kTooLong:
            return fail(414, "request line too long");
          case Line::kBad:
            return fail(400, "bare CR or LF in the request line");
          case Line::kOk:
            break;
        }
        if (line.empty()) continue;  // RFC 9112 §2.2: tolerate a CRLF before a request
        if (auto err = parse_request_line(line)) return *err;
        head_bytes_ = 0;
        state_ = State::kHeaders;
        continue;

      case State::kHeaders:
      case State::kTrailers: {
        const bool trailer = state_ == State::kTrailers;
        const size_t budget =
            limits_.max_header_bytes > head_bytes_ ? limits_.max_header_bytes - head_bytes_ : 0;
        switch (take_line(budget, &line)) {
          case Line::kNeedMore:
            return NeedMore{};
          case Line::kTooLong:
            return fail(431, trailer ? "trailer section too large" : "header section too large");
          case Line::kBad:
            return fail(400, "bare CR or LF in the header section");
          case Line::kOk:
            break;
        }
        if (!line.empty()) {
          if (auto err = parse_field(line, trailer)) return *err;
          continue;
        }
        if (trailer) return complete();
        if (auto err = finish_head()) return *err;
        if (state_ == State::kStart) return complete();
        if (expect_continue_ && buffered_bytes() == 0) {
          expect_continue_ = false;
          return SendContinue{};
        }
        continue;
      }

      case State::kBody:
      case State::kChunkData: {
        const size_t n = static_cast<size_t>(
            std::min<uint64_t>(remaining_, static_cast<uint64_t>(buffered_bytes())));
        cur_.body.append(buf_, pos_, n);
        pos_ += n;
        scan_ = pos_;
        remaining_ -= n;
        if (remaining_ > 0) return NeedMore{};
        if (state_ == State::kBody) return complete();
        state_ = State::kChunkEnd;
        continue;
      }

      case State::kChunkEnd:
        if (buffered_bytes() < 2) return NeedMore{};
        if (buf_.compare(pos_, 2, "\r\n") != 0) return fail(400, "chunk data not followed by CRLF");
        pos_ += 2;
        scan_ = pos_;
        state_ = State::kChunkSize;
        continue;

      case State::kChunkSize:
        switch (take_line(kMaxChunkLine, &line)) {
          case Line::kNeedMore:
            return NeedMore{};
          case Line::kTooLong:
            return fail(400, "chunk size line too long");
          case Line::kBad:
            return fail(400, "bare CR or LF in chunk framing");
          case Line::kOk:
            break;
        }
        if (auto err = parse_chunk_size(line)) return *err;
        continue;
    }
  }
}

std::optional<ParseError> RequestParser::parse_request_line(std::string_view line) {
  cur_ = Request{};
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed method");
  if (target.size() > limits_.max_target_bytes) return fail(414, "request target too long");
  if (target.empty() || !is_target_text(target)) return fail(400, "malformed request target");

  // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
      hex_value(version[5]) < 0 || hex_value(version[5]) > 9 || hex_value(version[7]) < 0 ||
      hex_value(version[7]) > 9)
    return fail(400, "malformed HTTP version");
  if (version[5] != '1') return fail(505, "HTTP version not supported");
  cur_.version_minor = version[7] == '0' ? 0 : 1;

  std::string_view path_query = target;
  if (target == "*") {
    if (method != "OPTIONS") return fail(400, "'*' target outside OPTIONS");
  } else if (target.front() != '/') {
    // absolute-form (RFC 9112 §3.2.2): keep path and query, ignore the authority.
    const size_t scheme_end = target.find("://");
    const std::string_view scheme = target.substr(0, scheme_end);
    if (scheme_end == std::string_view::npos ||
        !(iequals(scheme, "http") || iequals(scheme, "https")))
      return fail(400, "malformed request target");
    const size_t slash = target.find_first_of("/?", scheme_end + 3);
    path_query = slash == std::string_view::npos ? "/" : target.substr(slash);
    if (path_query.front() == '?') cur_.path = "/";
  }
  const size_t q = path_query.find('?');
  cur_.path += path_query.substr(0, q);
  if (q != std::string_view::npos) {
    cur_.query = path_query.substr(q + 1);
    if (!split_query(cur_.query, &cur_.query_params))
      return fail(400, "malformed percent-encoding in the query");
  }
  cur_.method = method;
  cur_.target = target;
  return std::nullopt;
}

std::optional<ParseError> RequestParser::parse_field(std::string_view line, bool trailer) {
  // obs-fold (RFC 9112 §5.2): refused rather than unfolded, as a proxy might not.
  if (line.front() == ' ' || line.front() == '\t') return fail(400, "obsolete line folding");
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail(400, "header field without a colon");
  const std::string_view name = line.substr(0, colon);
  // Whitespace before the colon is a token error here (RFC 9112 §5.1).
  if (!is_token(name)) return fail(400, "malformed header field name");
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (!is_field_value(value)) return fail(400, "control character in a header field");
  if (!trailer) cur_.headers.add(std::string(name), std::string(value));
  return std::nullopt;
}

std::optional<ParseError> RequestParser::finish_head() {
  const Headers& h = cur_.headers;
  const bool http11 = cur_.version_minor == 1;
  // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one before.
  const size_t hosts = h.get_all("Host").size();
  if (hosts > 1) return fail(400, "several Host header fields");
  if (http11 && hosts == 0) return fail(400, "no Host header field");

  const std::vector<std::string_view> te_fields = h.get_all("Transfer-Encoding");
  const std::vector<std::string_view> cl_fields = h.get_all("Content-Length");
  bool chunked = false;
  uint64_t length = 0;
  if (!te_fields.empty()) {
    if (!cl_fields.empty()) return fail(400, "both Transfer-Encoding and Content-Length");
    if (!http11) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    std::vector<std::string_view> codings;
    for (std::string_view f : te_fields) {
      for (std::string_view c : split_list(f)) codings.push_back(c);
    }
    // RFC 9112 §6.3: unless chunked is last, the body's end cannot be known.
    if (codings.empty() || !iequals(codings.back(), "chunked"))
      return fail(400, "Transfer-Encoding does not end with chunked");
    for (size_t i = 0; i + 1 < codings.size(); ++i) {
      if (iequals(codings[i], "chunked")) return fail(400, "chunked applied twice");
      return fail(501, "unsupported transfer coding " + std::string(codings[i]));
    }
    chunked = true;
  } else if (!cl_fields.empty()) {
    // RFC 9110 §8.6: repeated identical values may be taken as one; differing ones never.
    std::optional<uint64_t> seen;
    for (std::string_view f : cl_fields) {
      const std::vector<std::string_view> items = split_list(f);
      if (items.empty()) return fail(400, "malformed Content-Length");
      for (std::string_view item : items) {
        const auto v = parse_decimal(item);
        if (!v) return fail(400, "malformed Content-Length");
        if (seen && *seen != *v) return fail(400, "differing Content-Length values");
        seen = v;
      }
    }
    length = *seen;
    if (length > limits_.max_body_bytes) return fail(413, "body larger than the limit");
  }

  if (const auto expect = h.get("Expect")) {
    if (!iequals(*expect, "100-continue") || h.get_all("Expect").size() > 1)
      return fail(417, "unsupported expectation");
    // RFC 9110 §10.1.1: ignored in an HTTP/1.0 request.
    expect_continue_ = http11 && (chunked || length > 0);
  }
  cur_.keep_alive =
      http11 ? !h.has_token("Connection", "close") : h.has_token("Connection", "keep-alive");

  if (chunked) {
    state_ = State::kChunkSize;
  } else if (length > 0) {
    cur_.body.reserve(static_cast<size_t>(length));
    remaining_ = length;
    state_ = State::kBody;
  } else {
    state_ = State::kStart;
  }
  return std::nullopt;
}

std::optional<ParseError> RequestParser::parse_chunk_size(std::string_view line) {
  size_t digits = 0;
  uint64_t size = 0;
  while (digits < line.size() && hex_value(line[digits]) >= 0) {
    if (digits == kMaxChunkSizeDigits) return fail(400, "chunk size too long");
    size = size * 16 + static_cast<uint64_t>(hex_value(line[digits]));
    ++digits;
  }
  if (digits == 0) return fail(400, "malformed chunk size");
  // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ): checked for controls only.
  const std::string_view ext = trim_ows(line.substr(digits));
  if (!ext.empty() && (ext.front() != ';' || !is_field_value(ext)))
    return fail(400, "malformed chunk extension");
  if (size == 0) {
    head_bytes_ = 0;
    state_ = State::kTrailers;
    return std::nullopt;
  }
  if (size > limits_.max_body_bytes - cur_.body.size())
    return fail(413, "body larger than the limit");
  remaining_ = size;
  state_ = State::kChunkData;
  return std::nullopt;
}

Request RequestParser::complete() {
  state_ = State::kStart;
  head_bytes_ = 0;
  remaining_ = 0;
  expect_continue_ = false;
  return std::move(cur_);
}

}  // namespace mta::http
