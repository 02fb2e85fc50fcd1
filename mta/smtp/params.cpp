#include "mta/smtp/params.h"

#include <charconv>
#include <vector>

namespace mta::smtp {
namespace {

core::Reply reply(int code, const char* enh, std::string text) {
  return core::Reply{code, enh, std::move(text)};
}

// Splits "FROM:<path> K=V K2" into the path and the parameter words. Accepts the common
// (not strictly RFC) space after the colon.
bool split_args(std::string_view args, std::string_view keyword, std::string_view& path,
                std::vector<std::string_view>& params) {
  if (args.size() < keyword.size() || !core::iequals(args.substr(0, keyword.size()), keyword))
    return false;
  args.remove_prefix(keyword.size());
  while (!args.empty() && args.front() == ' ') args.remove_prefix(1);
  if (args.empty() || args.front() != '<') return false;
  // The path ends at the first '>' outside a quoted local part.
  bool quoted = false;
  size_t end = std::string_view::npos;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == '\\' && quoted) {
      ++i;
    } else if (args[i] == '"') {
      quoted = !quoted;
    } else if (args[i] == '>' && !quoted) {
      end = i;
      break;
    }
  }
  if (end == std::string_view::npos) return false;
  path = args.substr(0, end + 1);
  args.remove_prefix(end + 1);
  while (!args.empty()) {
    if (args.front() != ' ') return false;
    while (!args.empty() && args.front() == ' ') args.remove_prefix(1);
    if (args.empty()) break;
    const size_t sp = args.find(' ');
    params.push_back(args.substr(0, sp));
    args.remove_prefix(sp == std::string_view::npos ? args.size() : sp);
  }
  return true;
}

void split_param(std::string_view p, std::string_view& key, std::optional<std::string_view>& value) {
  const size_t eq = p.find('=');
  key = p.substr(0, eq);
  if (eq != std::string_view::npos) value = p.substr(eq + 1);
}

}  // namespace

std::optional<std::string> decode_xtext(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 33 || c > 126 || c == '=') return std::nullopt;
    if (c != '+') {
      out += static_cast<char>(c);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

std::string encode_xtext(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 33 || c > 126 || c == '+' || c == '=') {
      out += '+';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string format_notify(uint8_t notify) {
  if (notify & core::kNotifyNever) return "NEVER";
  std::string out;
  for (auto [bit, name] : {std::pair{core::kNotifySuccess, "SUCCESS"},
                           std::pair{core::kNotifyFailure, "FAILURE"},
                           std::pair{core::kNotifyDelay, "DELAY"}}) {
    if (!(notify & bit)) continue;
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

std::variant<MailCommand, core::Reply> parse_mail(std::string_view args) {
  std::string_view path;
  std::vector<std::string_view> params;
  if (!split_args(args, "FROM:", path, params))
    return reply(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]");
  MailCommand m;
  bool seen_size = false, seen_body = false, seen_ret = false, seen_envid = false;
  for (std::string_view p : params) {
    std::string_view key;
    std::optional<std::string_view> value;
    split_param(p, key, value);
    if (core::iequals(key, "SIZE") && value && !seen_size) {
      seen_size = true;
      auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), m.size);
      if (ec != std::errc() || end != value->data() + value->size())
        return reply(501, "5.5.4", "Bad SIZE parameter");
    } else if (core::iequals(key, "BODY") && value && !seen_body) {
      seen_body = true;
      if (core::iequals(*value, "7BIT")) {
        m.body = core::BodyType::k7Bit;
      } else if (core::iequals(*value, "8BITMIME")) {
        m.body = core::BodyType::k8BitMime;
      } else {
        return reply(501, "5.5.4", "Unsupported BODY type (7BIT and 8BITMIME are supported)");
      }
    } else if (core::iequals(key, "SMTPUTF8") && !value && !m.smtputf8) {
      m.smtputf8 = true;
    } else if (core::iequals(key, "RET") && value && !seen_ret) {
      seen_ret = true;
      if (core::iequals(*value, "FULL")) {
        m.ret = core::DsnRet::kFull;
      } else if (core::iequals(*value, "HDRS")) {
        m.ret = core::DsnRet::kHeaders;
      } else {
        return reply(501, "5.5.4", "Bad RET parameter (FULL or HDRS)");
      }
    } else if (core::iequals(key, "ENVID") && value && !seen_envid) {
      seen_envid = true;
      auto d = decode_xtext(*value);
      if (!d || value->size() > 100) return reply(501, "5.5.4", "Bad ENVID parameter");
      m.envid = *d;
    } else if (core::iequals(key, "AUTH") && value) {
      // RFC 4954 §5: accepted and not trusted.
    } else {
      return reply(555, "5.5.4", "Unsupported or repeated MAIL parameter: " +
                                     std::string(key.substr(0, 32)));
    }
  }
  auto sender = core::parse_path(path, m.smtputf8, /*allow_null=*/true);
  if (!sender) {
    const bool non_ascii = core::parse_path(path, true, true).is_ok();
    if (non_ascii && !m.smtputf8)
      return reply(553, "5.6.7", "Non-ASCII sender address requires the SMTPUTF8 parameter");
    return reply(501, "5.1.7", "Bad sender address syntax: " + sender.status().message());
  }
  m.sender = std::move(sender).value();
  return m;
}

std::variant<RcptCommand, core::Reply> parse_rcpt(std::string_view args, bool smtputf8) {
  std::string_view path;
  std::vector<std::string_view> params;
  if (!split_args(args, "TO:", path, params))
    return reply(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]");
  RcptCommand r;
  bool seen_notify = false, seen_orcpt = false;
  for (std::string_view p : params) {
    std::string_view key;
    std::optional<std::string_view> value;
    split_param(p, key, value);
    if (core::iequals(key, "NOTIFY") && value && !seen_notify) {
      seen_notify = true;
      std::string_view v = *value;
      while (true) {
        const size_t comma = v.find(',');
        std::string_view word = v.substr(0, comma);
        if (core::iequals(word, "NEVER")) {
          r.recipient.notify |= core::kNotifyNever;
        } else if (core::iequals(word, "SUCCESS")) {
          r.recipient.notify |= core::kNotifySuccess;
        } else if (core::iequals(word, "FAILURE")) {
          r.recipient.notify |= core::kNotifyFailure;
        } else if (core::iequals(word, "DELAY")) {
          r.recipient.notify |= core::kNotifyDelay;
        } else {
          return reply(501, "5.5.4", "Bad NOTIFY parameter");
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
      // NEVER excludes the others (RFC 3461 §4.1).
      if ((r.recipient.notify & core::kNotifyNever) && r.recipient.notify != core::kNotifyNever)
        return reply(501, "5.5.4", "NOTIFY=NEVER cannot be combined with other values");
    } else if (core::iequals(key, "ORCPT") && value && !seen_orcpt) {
      seen_orcpt = true;
      const size_t semi = value->find(';');
      auto d = decode_xtext(value->substr(semi == std::string_view::npos ? 0 : semi + 1));
      if (semi == std::string_view::npos || semi == 0 || !d || value->size() > 500)
        return reply(501, "5.5.4", "Bad ORCPT parameter (addr-type;xtext)");
      r.recipient.orcpt = std::string(value->substr(0, semi)) + ";" + *d;
    } else {
      return reply(555, "5.5.4", "Unsupported or repeated RCPT parameter: " +
                                     std::string(key.substr(0, 32)));
    }
  }
  auto rcpt = core::parse_path(path, smtputf8, /*allow_null=*/false);
  if (!rcpt) {
    const bool non_ascii = core::parse_path(path, true, false).is_ok();
    if (non_ascii && !smtputf8)
      return reply(553, "5.6.7", "Non-ASCII recipient address requires SMTPUTF8 at MAIL");
    return reply(501, "5.1.3", "Bad recipient address syntax: " + rcpt.status().message());
  }
  r.recipient.address = std::move(rcpt).value();
  return r;
}

}  // namespace mta::smtp
