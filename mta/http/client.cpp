#include "mta/http/client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace mta::http {
namespace {

struct CurlDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlList = std::unique_ptr<curl_slist, SlistDeleter>;

bool curl_ready() {
  static std::once_flag once;
  static CURLcode rc = CURLE_FAILED_INIT;
  std::call_once(once, [] { rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return rc == CURLE_OK;
}

bool append(CurlList& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  if (grown == nullptr) return false;
  list.release();
  list.reset(grown);
  return true;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Called once per header line, for every response curl reads (an interim 100 too): a new
// status line starts the fields afresh.
size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<Headers*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    *headers = Headers{};
  } else if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    headers->add(std::string(line.substr(0, colon)), std::string(value));
  }
  return size * n;
}

core::Status failure(CURLcode rc, const std::string& where, const char* detail) {
  std::string why = where + ": " + (detail[0] != '\0' ? detail : curl_easy_strerror(rc));
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
      return core::Status::temporary(std::move(why));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return core::Status::invalid(std::move(why));
    default:
      return core::Status::io(std::move(why));
  }
}

}  // namespace

core::Result<ClientResponse> http_request(const Endpoint& endpoint, std::string_view method,
                                          std::string_view path, std::string_view body,
                                          const Headers& headers, int timeout_ms) {
  const bool over_unix = !endpoint.unix_path.empty();
  std::string base = over_unix ? "http://localhost" : endpoint.base_url;
  while (base.ends_with('/')) base.pop_back();
  const std::string where = std::string(method) + " " + std::string(path) + " on " +
                            (over_unix ? endpoint.unix_path : base);
  if (base.empty()) return core::Status::invalid(where + ": no endpoint");
  if (!path.starts_with('/')) return core::Status::invalid(where + ": the path must start with /");
  if (method.empty()) return core::Status::invalid(where + ": no method");
  if (!curl_ready()) return core::Status::io(where + ": curl_global_init failed");

  CurlHandle curl(curl_easy_init());
  if (!curl) return core::Status::io(where + ": curl_easy_init failed");
  CURL* h = curl.get();
  const std::string url = base + std::string(path);
  const std::string method_text(method);
  char error[CURL_ERROR_SIZE] = {};
  ClientResponse response;

  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: safe in a threaded program
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  if (over_unix) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, endpoint.unix_path.c_str());
  if (!endpoint.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, endpoint.ca_file.c_str());
  if (!endpoint.verify_peer) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method_text.c_str());
  }
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    // Never null: curl would then read the body from stdin through its default callback.
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.empty() ? "" : body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }

  CurlList list;
  // "Expect:" stops curl waiting for a 100 Continue on larger bodies.
  bool listed = append(list, "Expect:");
  for (const Headers::Field& f : headers.fields())
    listed = listed && append(list, f.first + ": " + f.second);
  if (!listed) return core::Status::io(where + ": out of memory");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list.get());

  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);

  if (const CURLcode rc = curl_easy_perform(h); rc != CURLE_OK) return failure(rc, where, error);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace mta::http
