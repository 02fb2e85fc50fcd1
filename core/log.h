#pragma once
// One line per event, key=value, to stderr or a file (DESIGN.md "Logs").
//
//   LogLine(Level::kInfo, "queued").kv("id", id).kv("from", "<" + s + ">").emit();
//   2026-11-23T12:00:00.123Z info queued id=0QK3... from=<a@b> size=4096
//
// A value with a space, '"' or '=' is written in double quotes with '"' and '\' escaped,
// except that a trailing "(...)" remark is kept Postfix-style via LogLine::remark().
// Thread safety: emit() writes the whole line with one write(2); lines never interleave.

#include <cstdint>
#include <string>
#include <string_view>

namespace core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Process-wide settings; set once at start-up before threads exist.
void set_log_level(LogLevel level);
// Log to this file descriptor (default 2, stderr).
void set_log_fd(int fd);
bool log_enabled(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view event);
  LogLine& kv(std::string_view key, std::string_view value);
  LogLine& kv(std::string_view key, int64_t value);
  // Free text at the end of the line, in parentheses: "(250 2.0.0 Ok)".
  LogLine& remark(std::string_view text);
  void emit();

 private:
  bool on_;
  std::string line_;
};

}  // namespace core
