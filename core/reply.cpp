#include "core/reply.h"

namespace core {

std::string Reply::to_wire() const {
  std::string out;
  std::string_view rest = text;
  const std::string code_s = std::to_string(code);
  while (true) {
    const size_t nl = rest.find('\n');
    const bool last = nl == std::string_view::npos;
    out += code_s;
    out += last ? ' ' : '-';
    if (!enhanced.empty()) {
      out += enhanced;
      out += ' ';
    }
    out += last ? rest : rest.substr(0, nl);
    out += "\r\n";
    if (last) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace core
