#include "core/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/porter-log-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

// What `fn` logs, in `format`; the process-wide settings are put back afterwards.
std::string capture(core::LogFormat format, const std::function<void()>& fn) {
  TempDir dir;
  const fs::path file = dir.path / "out.log";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  REQUIRE(fd >= 0);
  core::set_log_fd(fd);
  core::set_log_format(format);
  fn();
  core::set_log_fd(2);
  core::set_log_format(core::LogFormat::kKeyValue);
  core::set_log_level(core::LogLevel::kInfo);
  ::close(fd);
  return read_file(file);
}

const std::regex kTimestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

TEST_CASE("unit: log JSON lines parse back with every value intact", "[core][unit]") {
  const std::string value = GENERATE(as<std::string>{}, "plain", "", "with space", "quote \" here",
                                     "back\\slash", "line\nbreak\r\ttab", std::string("nul\0x", 5),
                                     "\x01\x1f\x7f", "Grüße ✉ 😀 日本", "a=b (c)");
  const std::string text = capture(core::LogFormat::kJson, [&] {
    core::LogLine(core::LogLevel::kWarn, "queued")
        .kv("id", "0QK3ABC")
        .kv("value", value)
        .kv("size", int64_t{-4096})
        .remark(value)
        .emit();
  });
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 1);
  CHECK(text.back() == '\n');
  const nlohmann::json j = nlohmann::json::parse(lines[0]);  // throws if not valid JSON
  CHECK(std::regex_match(j.at("ts").get<std::string>(), kTimestamp));
  CHECK(j.at("level") == "warn");
  CHECK(j.at("event") == "queued");
  CHECK(j.at("id") == "0QK3ABC");
  CHECK(j.at("value").get<std::string>() == value);
  CHECK(j.at("size").is_number_integer());
  CHECK(j.at("size").get<int64_t>() == -4096);
  CHECK(j.at("remark").get<std::string>() == value);
  // Members keep the order they were logged in.
  CHECK(lines[0].rfind("{\"ts\":", 0) == 0);
  CHECK(lines[0].find("\"event\":\"queued\",\"id\":") != std::string::npos);
}

TEST_CASE("unit: log JSON replaces bytes that are not UTF-8", "[core][unit]") {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case c = GENERATE(values<Case>({
      {"\xff", "\xEF\xBF\xBD"},
      {"a\xc3(", "a\xEF\xBF\xBD("},                              // truncated 2-byte sequence
      {"\xc0\xaf", "\xEF\xBF\xBD\xEF\xBF\xBD"},                  // overlong '/'
      {"\xed\xa0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // a UTF-16 surrogate
      {"\xf4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // > U+10FFFF
      {"ok \xe2\x9c\x89", "ok \xe2\x9c\x89"},                          // valid 3-byte stays
      {"end\xf0\x9f\x98", "end\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // cut 4-byte at the end
  }));
  const std::string text = capture(core::LogFormat::kJson, [&] {
    core::LogLine(core::LogLevel::kInfo, "helo").kv("name", c.in).emit();
  });
  const nlohmann::json j = nlohmann::json::parse(lines_of(text).at(0));
  CHECK(j.at("name").get<std::string>() == c.out);
}

TEST_CASE("unit: log key=value format is unchanged", "[core][unit]") {
  const std::string text = capture(core::LogFormat::kKeyValue, [] {
    core::LogLine(core::LogLevel::kInfo, "sent")
        .kv("id", "0QK3ABC")
        .kv("to", "<a@b.example>")
        .kv("delay", int64_t{12})
        .kv("note", "two words")
        .kv("q", "say \"hi\"\\")
        .kv("ctl", "a\x01")
        .kv("empty", "")
        .remark("250 2.0.0 Ok\r\n")
        .emit();
  });
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 1);
  REQUIRE(lines[0].size() > 25);
  CHECK(std::regex_match(lines[0].substr(0, 24), kTimestamp));
  CHECK(lines[0].substr(24) ==
        " info sent id=0QK3ABC to=<a@b.example> delay=12 note=\"two words\" "
        "q=\"say \\\"hi\\\"\\\\\" ctl=\"a\\x01\" empty=\"\" (250 2.0.0 Ok  )");
}

TEST_CASE("unit: log lines below the level are not written", "[core][unit]") {
  const auto format = GENERATE(core::LogFormat::kKeyValue, core::LogFormat::kJson);
  const std::string text = capture(format, [] {
    core::set_log_level(core::LogLevel::kWarn);
    core::LogLine(core::LogLevel::kInfo, "quiet").kv("a", "b").emit();
    core::LogLine(core::LogLevel::kError, "loud").emit();
  });
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("loud") != std::string::npos);
}

TEST_CASE("unit: log level and format names parse", "[core][unit]") {
  using L = core::LogLevel;
  struct Case {
    const char* name;
    std::optional<L> level;
  };
  const Case c = GENERATE(values<Case>({{"debug", L::kDebug},
                                        {"INFO", L::kInfo},
                                        {"warn", L::kWarn},
                                        {"Warning", L::kWarn},
                                        {"error", L::kError},
                                        {"", std::nullopt},
                                        {"err", std::nullopt},
                                        {"info ", std::nullopt}}));
  CHECK(core::parse_log_level(c.name) == c.level);

  CHECK(core::parse_log_format("json") == core::LogFormat::kJson);
  CHECK(core::parse_log_format("JSON") == core::LogFormat::kJson);
  CHECK(core::parse_log_format("kv") == core::LogFormat::kKeyValue);
  CHECK(core::parse_log_format("key-value") == core::LogFormat::kKeyValue);
  CHECK(core::parse_log_format("xml") == std::nullopt);
}

TEST_CASE("unit: log file is reopened after rotation", "[core][unit]") {
  TempDir dir;
  const fs::path live = dir.path / "porter.log";
  const fs::path rotated = dir.path / "porter.log.1";
  REQUIRE(core::set_log_file(live.string()).is_ok());
  core::LogLine(core::LogLevel::kInfo, "before").emit();
  fs::rename(live, rotated);
  core::LogLine(core::LogLevel::kInfo, "still-old").emit();  // the open file follows the rename
  REQUIRE(core::reopen_log_file().is_ok());
  core::LogLine(core::LogLevel::kInfo, "after").emit();

  SECTION("a file that cannot be opened is refused and logging stays where it was") {
    const core::Status s = core::set_log_file((dir.path / "no-such-dir" / "x.log").string());
    CHECK(s.kind() == core::Status::Kind::kIo);
    CHECK(s.message().find("no-such-dir") != std::string::npos);
    core::LogLine(core::LogLevel::kInfo, "after-refusal").emit();
  }
  core::set_log_fd(2);

  const auto old_lines = lines_of(read_file(rotated));
  REQUIRE(old_lines.size() == 2);
  CHECK(old_lines[0].find(" info before") != std::string::npos);
  CHECK(old_lines[1].find(" info still-old") != std::string::npos);
  const std::string fresh = read_file(live);
  CHECK(fresh.find(" info after") != std::string::npos);
  CHECK(fresh.find("before") == std::string::npos);
  CHECK((fs::status(live).permissions() & fs::perms::others_all) == fs::perms::none);
}

TEST_CASE("unit: log lines from several threads never interleave", "[core][unit]") {
  constexpr int kThreads = 4;
  constexpr int kLines = 200;
  const std::string filler(3000, 'x');  // several pipe-buffer-sized lines in flight at once
  const std::string text = capture(core::LogFormat::kJson, [&] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kLines; ++i)
          core::LogLine(core::LogLevel::kInfo, "line")
              .kv("thread", int64_t{t})
              .kv("i", int64_t{i})
              .kv("filler", filler)
              .emit();
      });
    }
    for (auto& th : threads) th.join();
  });
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == kThreads * kLines);
  std::vector<int> next(kThreads, 0);
  for (const auto& line : lines) {
    const nlohmann::json j = nlohmann::json::parse(line);
    const int t = j.at("thread").get<int>();
    CHECK(j.at("i").get<int>() == next.at(t)++);  // each thread's lines in its own order
    CHECK(j.at("filler") == filler);
  }
}

}  // namespace
