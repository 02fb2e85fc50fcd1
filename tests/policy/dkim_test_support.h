#pragma once
// Shared by the DKIM tests: the dkimpy test vectors in ../shared/testdata/dkim/dkimpy-data
// (PORTER_TESTDATA_DIR), read as files.

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace dkim_test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A file of dkim/dkimpy-data, as stored (LF line ends).
inline std::string dkimpy_file(std::string_view name) {
  return read_file(std::string(PORTER_TESTDATA_DIR) + "/dkim/dkimpy-data/" + std::string(name));
}

// The same text with CRLF line ends, as a message travels (and as it is queued).
inline std::string with_crlf(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// The test file's content without its final line end, for DNS record text.
inline std::string dkimpy_record(std::string_view name) {
  std::string text = dkimpy_file(name);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// A short message in the shape Porter queues: CRLF, a few signed fields and an unsigned one.
inline const std::string kMessage =
    "Received: from client.example.org ([192.0.2.7]) by mail.example.com\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: Bob <bob@example.net>\r\n"
    "Subject: Quarterly figures\r\n"
    "Date: Tue, 02 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <q1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "\r\n"
    "the figures are attached.\r\n";

}  // namespace dkim_test
