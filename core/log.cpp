#include "core/log.h"


#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>

#include "core/address.h"

namespace core {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kKeyValue)};
std::atomic<int> g_fd{2};

// The log file: its descriptor number never changes once opened (reopening dup2()s the new
// file onto it), so a thread in the middle of write(2) never sees it closed or reused.
std::mutex g_file_mu;
int g_file_fd = -1;       // guarded by g_file_mu
std::string g_file_path;  // guarded by g_file_mu

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  return false;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  while (!s.empty()) {
    const unsigned char c = static_cast<unsigned char>(s[0]);
    size_t n = 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\u%04x", c);
      out += hex;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else if ((n = utf8_sequence_length(s)) > 0) {
      out.append(s.data(), n);
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for a byte that starts no valid sequence
      n = 1;
    }
    s.remove_prefix(n);
  }
  out += '"';
}

Result<int> open_log_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Status::io("log: opening " + path + ": " + std::strerror(errno));
  return fd;
}

// Points the log at `path`: the first time a new descriptor, afterwards the same number.
Status switch_log_file(const std::string& path) {
  Result<int> fd = open_log_file(path);
  if (!fd) return fd.status();
  std::lock_guard lock(g_file_mu);
  if (g_file_fd < 0) {
    g_file_fd = *fd;
  } else {
    const bool ok = ::dup2(*fd, g_file_fd) >= 0;
    const int err = errno;
    ::close(*fd);
    if (!ok) return Status::io("log: switching to " + path + ": " + std::strerror(err));
  }
  g_file_path = path;
  g_fd = g_file_fd;
  return Status::ok();
}

}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
void set_log_format(LogFormat format) { g_format = static_cast<int>(format); }
void set_log_fd(int fd) { g_fd = fd; }
bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

Status set_log_file(const std::string& path) { return switch_log_file(path); }

Status reopen_log_file() {
  std::string path;
  {
    std::lock_guard lock(g_file_mu);
    path = g_file_path;
  }
  if (path.empty()) return Status::ok();
  return switch_log_file(path);
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  if (iequals(name, "debug")) return LogLevel::kDebug;
  if (iequals(name, "info")) return LogLevel::kInfo;
  if (iequals(name, "warn") || iequals(name, "warning")) return LogLevel::kWarn;
  if (iequals(name, "error")) return LogLevel::kError;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (iequals(name, "kv") || iequals(name, "key-value") || iequals(name, "keyvalue"))
    return LogFormat::kKeyValue;
  if (iequals(name, "json")) return LogFormat::kJson;
  return std::nullopt;
}

LogLine::LogLine(LogLevel level, std::string_view event)
    : on_(log_enabled(level)), json_(g_format.load() == static_cast<int>(LogFormat::kJson)) {
  if (!on_) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  if (json_) {
    line_ = "{\"ts\":\"";
    line_ += ts;
    line_ += "\",\"level\":\"";
    line_ += level_name(level);
    line_ += "\",\"event\":";
    append_json_string(line_, event);
    return;
  }
  line_ = ts;
  line_ += ' ';
  line_ += level_name(level);
  line_ += ' ';
  line_ += event;
}

LogLine& LogLine::kv(std::string_view key, std::string_view value) {
  if (!on_) return *this;
  if (json_) {
    line_ += ',';
    append_json_string(line_, key);
    line_ += ':';
    append_json_string(line_, value);
    return *this;
  }
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
  if (on_ && json_) {
    line_ += ',';
    append_json_string(line_, key);
    line_ += ':';
    line_ += std::to_string(value);
    return *this;
  }
  return kv(key, std::string_view(std::to_string(value)));
}

LogLine& LogLine::remark(std::string_view text) {
  if (!on_) return *this;
  if (json_) {
    line_ += ",\"remark\":";
    append_json_string(line_, text);
    return *this;
  }
  line_ += " (";
  for (char c : text) line_ += static_cast<unsigned char>(c) < 0x20 ? ' ' : c;
  line_ += ')';
  return *this;
}

void LogLine::emit() {
  if (!on_) return;
  if (json_) line_ += '}';
  line_ += '\n';
  const char* p = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    const ssize_t n = ::write(g_fd.load(), p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // logging must never take the daemon down
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace core
