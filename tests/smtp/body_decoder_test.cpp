#include "mta/smtp/body_decoder.h"

#include <catch2/catch.hpp>

using mta::smtp::BareLfPolicy;
using mta::smtp::BodyDecoder;

namespace {
struct Decoded {
  std::string body;
  bool finished;
  unsigned problems;
  size_t used;
};

Decoded decode(std::string_view in, BareLfPolicy p = BareLfPolicy::kNormalize,
               size_t max_size = 1 << 20, size_t max_line = 998, size_t step = 0) {
  BodyDecoder d(BodyDecoder::Mode::kDotStuffed, p, max_size, max_line);
  size_t used = 0;
  if (step == 0) step = in.size();
  while (used < in.size() && !d.finished()) used += d.feed(in.substr(used, step));
  std::string out;
  for (auto& c : d.take_chunks()) out += c;
  return {out, d.finished(), d.problems(), used};
}
}  // namespace

TEST_CASE("body_decoder: only CRLF.CRLF ends DATA", "[smtp][unit]") {
  auto [input, ends] = GENERATE(table<std::string, bool>({
      {"Subject: x\r\n\r\nhello\r\n.\r\n", true},
      {"hello\n.\nmore\r\n", false},          // <LF>.<LF>
      {"hello\n.\r\nmore\r\n", false},        // <LF>.<CR><LF>
      {"hello\r.\rmore\r\n", false},          // <CR>.<CR>
      {"hello\r\n.\nmore\r\n", false},        // <CRLF>.<LF>
      {"hello\r\n..\r\nmore\r\n", false},     // a stuffed dot
      {".\r\n", true},                         // empty message
  }));
  CAPTURE(input);
  for (size_t step : {size_t(0), size_t(1), size_t(3)}) {
    auto d = decode(input, BareLfPolicy::kNormalize, 1 << 20, 998, step);
    CHECK(d.finished == ends);
  }
}

TEST_CASE("body_decoder: unstuffing and normalisation", "[smtp][unit]") {
  auto d = decode("a\r\n..b\r\n...\r\nc\nd\r\n.\r\nNEXT");
  CHECK(d.finished);
  CHECK(d.body == "a\r\n.b\r\n..\r\nc\r\nd\r\n");
  CHECK(d.problems == BodyDecoder::kNone);
  CHECK(d.used == std::string("a\r\n..b\r\n...\r\nc\nd\r\n.\r\n").size());
}

TEST_CASE("body_decoder: smuggling payload stays inside one message", "[smtp][unit]") {
  const std::string smuggle =
      "Subject: a\r\n\r\nbody\n.\nMAIL FROM:<evil@x>\nRCPT TO:<v@y>\nDATA\nevil\n.\r\n"
      "tail\r\n.\r\n";
  auto d = decode(smuggle);
  REQUIRE(d.finished);
  CHECK(d.used == smuggle.size());
  CHECK(d.body.find("MAIL FROM:<evil@x>\r\n") != std::string::npos);
}

TEST_CASE("body_decoder: problems are flagged and decoding continues", "[smtp][unit]") {
  SECTION("bare CR") {
    auto d = decode("a\rb\r\n.\r\n");
    CHECK(d.finished);
    CHECK(d.problems & BodyDecoder::kBareCr);
  }
  SECTION("bare LF refused by policy") {
    auto d = decode("a\nb\r\n.\r\n", BareLfPolicy::kRefuse);
    CHECK(d.finished);
    CHECK(d.problems & BodyDecoder::kBareLf);
  }
  SECTION("too big") {
    auto d = decode(std::string(5000, 'x') + "\r\n.\r\n", BareLfPolicy::kNormalize, 100, 100000);
    CHECK(d.finished);
    CHECK(d.problems & BodyDecoder::kTooBig);
    CHECK(d.body.empty());
  }
  SECTION("line too long") {
    auto d = decode(std::string(10000, 'x') + "\r\n.\r\n");
    CHECK(d.finished);
    CHECK(d.problems & BodyDecoder::kLineTooLong);
  }
  SECTION("998 octets is fine") {
    auto d = decode(std::string(998, 'x') + "\r\n.\r\n");
    CHECK(d.problems == BodyDecoder::kNone);
  }
}

TEST_CASE("body_decoder: chunks hold at most kChunkSize", "[smtp][unit]") {
  BodyDecoder d(BodyDecoder::Mode::kRaw, BareLfPolicy::kNormalize, 10 << 20, 1 << 30);
  std::string big(3 * BodyDecoder::kChunkSize + 17, 'y');
  CHECK(d.feed(big) == big.size());
  d.finish_raw();
  auto chunks = d.take_chunks();
  REQUIRE(chunks.size() == 4);
  for (auto& c : chunks) CHECK(c.size() <= BodyDecoder::kChunkSize);
  CHECK(d.size() == big.size());
}

TEST_CASE("body_decoder: raw mode keeps dots and flags a trailing CR", "[smtp][unit]") {
  BodyDecoder d(BodyDecoder::Mode::kRaw, BareLfPolicy::kNormalize, 1 << 20, 998);
  CHECK(d.feed(".\r\n.\r\nx\r") == 8);
  CHECK_FALSE(d.finished());
  d.finish_raw();
  CHECK(d.problems() & BodyDecoder::kBareCr);
  std::string out;
  for (auto& c : d.take_chunks()) out += c;
  CHECK(out == ".\r\n.\r\nx");
}
