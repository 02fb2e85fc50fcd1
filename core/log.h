#pragma once
// One line per event, to stderr or a file (DESIGN.md "Logs"), as key=value (default) or as
// JSON lines for log shippers.
//
//   LogLine(Level::kInfo, "queued").kv("id", id).kv("from", "<" + s + ">").emit();
//   2026-11-23T12:00:00.123Z info queued id=0QK3... from=<a@b> size=4096
//   {"ts":"2026-11-23T12:00:00.123Z","level":"info","event":"queued","id":"0QK3...",
//    "from":"<a@b>","size":4096}                                           (one line)
//
// key=value: a value with a space, '"', '=' or a control character is written in double
// quotes with '"' and '\' escaped and control characters as \xNN, except that a trailing
// "(...)" remark is kept Postfix-style via LogLine::remark().
// JSON: one object per line; integers are numbers, the remark is the "remark" member, strings
// are escaped per RFC 8259 (control characters as \u00XX) and bytes that are not UTF-8 become
// U+FFFD, so every line parses.
//
// Thread safety: emit() writes the whole line with one write(2); lines never interleave.
// The level and format are process-wide, set at start-up before threads exist. The log file
// may be reopened at any time (log rotation) while other threads log: the file descriptor
// number stays the same and is switched to the new file atomically (dup2).
//
// Limits: a line is built in memory whatever its length; a failed write is dropped silently
// (logging must never take the daemon down).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kKeyValue, kJson };

// Process-wide settings; set once at start-up before threads exist.
void set_log_level(LogLevel level);
void set_log_format(LogFormat format);
// Log to this file descriptor (default 2, stderr). The caller keeps owning `fd`.
void set_log_fd(int fd);
bool log_enabled(LogLevel level);

// Appends to `path` (created 0640 if missing) from now on. Called again, it switches files
// (also from another thread while logging goes on). kIo when the file cannot be opened; the
// previous destination stays in use then.
Status set_log_file(const std::string& path);
// Opens the path of set_log_file() again, so that a rotated-away file is let go (SIGHUP from
// logrotate). Not async-signal-safe: call it from a loop that watches the signal. Ok and a
// no-op when no log file is set.
Status reopen_log_file();

// "debug", "info", "warn" (or "warning"), "error", any case.
std::optional<LogLevel> parse_log_level(std::string_view name);
// "kv" (or "key-value", "keyvalue"), "json", any case.
std::optional<LogFormat> parse_log_format(std::string_view name);

class LogLine {
 public:
  LogLine(LogLevel level, std::string_view event);
  LogLine& kv(std::string_view key, std::string_view value);
  LogLine& kv(std::string_view key, int64_t value);
  // Free text at the end of the line, in parentheses: "(250 2.0.0 Ok)"; "remark" in JSON.
  LogLine& remark(std::string_view text);
  void emit();

 private:
  bool on_;
  bool json_;
  std::string line_;
};

}  // namespace core
