#include "mta/mime/charset.h"

#include <iconv.h>

#include <array>
#include <cerrno>
#include <memory>
#include <optional>
#include <vector>

#include "core/address.h"

namespace mta::mime {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr size_t kMaxCharsetName = 40;
constexpr size_t kCacheSize = 8;

enum class Kind { kUtf8, kIconv, kUnknown };

struct Resolved {
  Kind kind;
  std::string iconv_name;
};

// Names mail uses that glibc does not know, or knows as a smaller charset than mail means.
constexpr std::array<std::pair<std::string_view, std::string_view>, 16> kAliases{{
    {"iso-8859-1", "WINDOWS-1252"},
    {"iso8859-1", "WINDOWS-1252"},
    {"iso_8859-1", "WINDOWS-1252"},
    {"latin1", "WINDOWS-1252"},
    {"l1", "WINDOWS-1252"},
    {"gb2312", "GB18030"},
    {"gbk", "GB18030"},
    {"x-gbk", "GB18030"},
    {"ks_c_5601-1987", "CP949"},
    {"iso-8859-8-i", "ISO-8859-8"},
    {"x-sjis", "SHIFT_JIS"},
    {"shift-jis", "SHIFT_JIS"},
    {"x-mac-roman", "MACINTOSH"},
    {"unicode-1-1-utf-7", "UTF-7"},
    {"x-unknown", ""},
    {"unknown-8bit", ""},
}};

// Lower case, without quotes, white space or an RFC 2231 §5 "*language" suffix; nullopt for
// a name that cannot be a charset (it could otherwise carry iconv's "//IGNORE" flags).
std::optional<std::string> normalize(std::string_view charset) {
  while (!charset.empty() && (charset.front() == ' ' || charset.front() == '"'))
    charset.remove_prefix(1);
  while (!charset.empty() && (charset.back() == ' ' || charset.back() == '"'))
    charset.remove_suffix(1);
  const size_t star = charset.find('*');
  if (star != std::string_view::npos) charset = charset.substr(0, star);
  if (charset.empty() || charset.size() > kMaxCharsetName) return std::nullopt;
  for (char c : charset) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':' || c == '+';
    if (!ok) return std::nullopt;
  }
  return core::to_lower_ascii(charset);
}

Resolved resolve(std::string_view charset) {
  const auto name = normalize(charset);
  if (!name) return {Kind::kUnknown, {}};
  if (*name == "utf-8" || *name == "utf8" || *name == "us-ascii" || *name == "ascii" ||
      *name == "ansi_x3.4-1968" || *name == "iso-646-us")
    return {Kind::kUtf8, {}};
  for (const auto& [alias, target] : kAliases) {
    if (*name == alias) {
      if (target.empty()) return {Kind::kUnknown, {}};
      return {Kind::kIconv, std::string(target)};
    }
  }
  return {Kind::kIconv, *name};
}

struct IconvCloser {
  void operator()(void* cd) const { iconv_close(static_cast<iconv_t>(cd)); }
};
using IconvHandle = std::unique_ptr<void, IconvCloser>;

// A descriptor per charset, opened once per thread: iconv_open() loads a gconv module and
// costs far more than converting one header. A null handle remembers an unknown name.
iconv_t cached_iconv(const std::string& name) {
  struct Entry {
    std::string name;
    IconvHandle handle;
  };
  thread_local std::vector<Entry> cache;
  thread_local size_t next_victim = 0;
  for (auto& e : cache)
    if (e.name == name) return e.handle ? static_cast<iconv_t>(e.handle.get()) : iconv_t(-1);
  iconv_t cd = iconv_open("UTF-8", name.c_str());
  IconvHandle handle(cd == iconv_t(-1) ? nullptr : static_cast<void*>(cd));
  if (cache.size() < kCacheSize) {
    cache.push_back({name, std::move(handle)});
  } else {
    cache[next_victim] = {name, std::move(handle)};
    next_victim = (next_victim + 1) % kCacheSize;
  }
  return cd;
}

std::string convert(iconv_t cd, std::string_view bytes) {
  iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset shift state (ISO-2022-JP)
  std::string out;
  std::array<char, 4096> buf;
  auto* in = const_cast<char*>(bytes.data());
  size_t in_left = bytes.size();
  bool flushing = false;
  while (true) {
    char* o = buf.data();
    size_t o_left = buf.size();
    const size_t r =
        flushing ? iconv(cd, nullptr, nullptr, &o, &o_left) : iconv(cd, &in, &in_left, &o, &o_left);
    const int err = errno;
    out.append(buf.data(), buf.size() - o_left);
    if (r != size_t(-1)) {
      if (flushing) break;
      flushing = true;
      continue;
    }
    if (err == E2BIG) continue;
    if (flushing) break;
    // EILSEQ: a byte that cannot start a character here; EINVAL: a truncated one at the end.
    out += kReplacement;
    if (err == EINVAL || in_left == 0) {
      in_left = 0;
      flushing = true;
      continue;
    }
    ++in;
    --in_left;
  }
  // iconv's own output is UTF-8, but a gconv module is outside Porter's control: check.
  return sanitize_utf8(out);
}

}  // namespace

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t n = core::utf8_sequence_length(bytes.substr(i));
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  return out;
}

bool is_known_charset(std::string_view charset) {
  const Resolved r = resolve(charset);
  if (r.kind == Kind::kUtf8) return true;
  if (r.kind == Kind::kUnknown) return false;
  return cached_iconv(r.iconv_name) != iconv_t(-1);
}

std::string to_utf8(std::string_view bytes, std::string_view charset) {
  const Resolved r = resolve(charset);
  // Even ASCII-only input goes through iconv: UTF-16, UTF-7 and ISO-2022-* read it differently.
  if (r.kind != Kind::kIconv) return sanitize_utf8(bytes);
  const iconv_t cd = cached_iconv(r.iconv_name);
  if (cd == iconv_t(-1)) return sanitize_utf8(bytes);
  return convert(cd, bytes);
}

}  // namespace mta::mime
