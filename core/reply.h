#pragma once
// An SMTP reply: three-digit code, RFC 3463 enhanced status code and text.
//
// Every reply Porter sends carries an enhanced code (RFC 2034), so the type requires one;
// the wire form is produced by to_wire(), multi-line when the text has several lines.
//
// Limits: text is trusted to be ASCII without CR/LF other than the line separator '\n'.

#include <string>
#include <string_view>

namespace core {

struct Reply {
  int code = 250;
  std::string enhanced;  // "2.0.0"; empty only for the greeting and EHLO, per RFC 2034 §3
  std::string text;      // lines separated by '\n'

  bool positive() const { return code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // "250-a\r\n250 2.0.0 b\r\n"
  std::string to_wire() const;
};

}  // namespace core
