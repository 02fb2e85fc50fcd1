#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace core {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_fd{2};

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
void set_log_fd(int fd) { g_fd = fd; }
bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

LogLine::LogLine(LogLevel level, std::string_view event) : on_(log_enabled(level)) {
  if (!on_) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  line_ = buf;
  line_ += level_name(level);
  line_ += ' ';
  line_ += event;
}

LogLine& LogLine::kv(std::string_view key, std::string_view value) {
  if (!on_) return *this;
  line_ += ' ';
  line_ += key;
  line_ += '=';
  if (!needs_quotes(value)) {
    line_ += value;
    return *this;
  }
  line_ += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') line_ += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      line_ += hex;
      continue;
    }
    line_ += c;
  }
  line_ += '"';
  return *this;
}

LogLine& LogLine::kv(std::string_view key, int64_t value) {
  return kv(key, std::string_view(std::to_string(value)));
}

LogLine& LogLine::remark(std::string_view text) {
  if (!on_) return *this;
  line_ += " (";
  for (char c : text) line_ += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  line_ += ')';
  return *this;
}

void LogLine::emit() {
  if (!on_) return;
  line_ += '\n';
  const char* p = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    const ssize_t n = ::write(g_fd.load(), p, left);
    if (n <= 0) return;  // logging must never take the daemon down
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace core
