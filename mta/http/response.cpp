#include "mta/http/response.h"

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace mta::http {
namespace {

bool framing_field(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Connection") || iequals(name, "Date") ||
         iequals(name, "Transfer-Encoding");
}

bool safe_field(const Headers::Field& f) {
  const std::string_view kTchar = "!#$%&'*+-.^_`|~";
  if (f.first.empty()) return false;
  for (char c : f.first) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kTchar.find(c) == std::string_view::npos) return false;
  }
  return f.second.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

}  // namespace

Response json(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.headers.add("Content-Type", "application/json");
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

Response text(int status, std::string body, std::string_view content_type) {
  Response r;
  r.status = status;
  r.headers.add("Content-Type", std::string(content_type));
  r.body = std::move(body);
  return r;
}

std::string serialize(const Response& response, const WireOptions& options) {
  const int status = response.status;
  const bool bodiless = (status >= 100 && status < 200) || status == 204 || status == 304;
  std::string out;
  out.reserve(256 + (options.head || bodiless ? 0 : response.body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nDate: ";
  out += http_date(options.now_ms);
  out += "\r\n";
  for (const Headers::Field& f : response.headers.fields()) {
    if (framing_field(f.first) || !safe_field(f)) continue;
    out += f.first;
    out += ": ";
    out += f.second;
    out += "\r\n";
  }
  if (!bodiless) {
    out += "Content-Length: ";
    out += std::to_string(response.body.size());
    out += "\r\n";
  }
  if (options.close) {
    out += "Connection: close\r\n";
  } else if (options.keep_alive_10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!bodiless && !options.head) out += response.body;
  return out;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string http_date(int64_t unix_ms) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const sys_seconds t = floor<seconds>(sys_time<milliseconds>(milliseconds(unix_ms)));
  const sys_days day = floor<days>(t);
  const year_month_day ymd(day);
  const hh_mm_ss hms(t - day);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                kDays[weekday(day).c_encoding()], static_cast<unsigned>(ymd.day()),
                kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

}  // namespace mta::http
