#include "mta/mime/imap_structure.h"

#include <algorithm>
#include <vector>

#include "core/address.h"
#include "mta/mime/address_list.h"
#include "mta/mime/header_section.h"

namespace mta::mime {
namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

bool quotable(std::string_view s, bool utf8) {
  bool eight_bit = false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r' || c == '\n') return false;
    if (c >= 0x80) eight_bit = true;
  }
  return !eight_bit || (utf8 && core::is_valid_utf8(s));
}

void append_address_list(std::string& out, const std::vector<MailAddress>& list, bool utf8) {
  if (list.empty()) {
    out += "NIL";
    return;
  }
  out += '(';
  for (const MailAddress& a : list) {
    switch (a.kind) {
      case MailAddress::Kind::kGroupStart:
        out += "(NIL NIL ";
        append_imap_string(out, a.name, utf8);
        out += " NIL)";
        break;
      case MailAddress::Kind::kGroupEnd:
        out += "(NIL NIL NIL NIL)";
        break;
      case MailAddress::Kind::kMailbox:
        out += '(';
        append_imap_nstring(out, a.name.empty() ? std::nullopt : std::optional(a.name), utf8);
        out += ' ';
        append_imap_nstring(out, a.route.empty() ? std::nullopt : std::optional(a.route), utf8);
        out += ' ';
        append_imap_string(out, a.mailbox.empty() ? "MISSING_MAILBOX" : a.mailbox, utf8);
        out += ' ';
        append_imap_string(out, a.host.empty() ? "MISSING_DOMAIN" : a.host, utf8);
        out += ')';
        break;
    }
  }
  out += ')';
}

void append_params(std::string& out, const Params& params, bool add_charset, bool utf8) {
  if (params.empty() && !add_charset) {
    out += "NIL";
    return;
  }
  out += '(';
  bool first = true;
  for (const auto& [name, value] : params) {
    if (!first) out += ' ';
    first = false;
    append_imap_string(out, upper(name), utf8);
    out += ' ';
    append_imap_string(out, value, utf8);
  }
  if (add_charset) out += first ? "\"CHARSET\" \"us-ascii\"" : " \"CHARSET\" \"us-ascii\"";
  out += ')';
}

// body-fld-dsp SP body-fld-lang SP body-fld-loc, shared by both kinds of body.
void append_dsp_lang_loc(std::string& out, const Part& p, bool utf8) {
  if (p.disposition) {
    out += '(';
    append_imap_string(out, upper(p.disposition->type), utf8);
    out += ' ';
    append_params(out, p.disposition->params, false, utf8);
    out += ')';
  } else {
    out += "NIL";
  }
  out += ' ';
  if (p.languages.empty()) {
    out += "NIL";
  } else if (p.languages.size() == 1) {
    append_imap_string(out, p.languages[0], utf8);
  } else {
    out += '(';
    for (size_t i = 0; i < p.languages.size(); ++i) {
      if (i) out += ' ';
      append_imap_string(out, p.languages[i], utf8);
    }
    out += ')';
  }
  out += ' ';
  append_imap_nstring(out, p.location, utf8);
}

class BodyWriter {
 public:
  BodyWriter(std::string_view msg, bool extended, bool utf8)
      : msg_(msg), extended_(extended), utf8_(utf8) {}

  void body(const Part& p, std::string& out) const {
    out += '(';
    if (p.kind == PartKind::kMultipart) {
      for (const Part& c : p.children) body(c, out);
      out += ' ';
      append_imap_string(out, upper(p.type.subtype), utf8_);
      if (extended_) {
        out += ' ';
        append_params(out, p.type.params, false, utf8_);
        out += ' ';
        append_dsp_lang_loc(out, p, utf8_);
      }
    } else {
      one_part(p, out);
    }
    out += ')';
  }

 private:
  void one_part(const Part& p, std::string& out) const {
    const bool contained_leaf =
        p.kind == PartKind::kLeaf &&
        (p.type.type == "multipart" ||
         (p.type.type == "message" && (p.type.subtype == "rfc822" || p.type.subtype == "global")));
    const bool text = p.type.type == "text";
    append_imap_string(out, contained_leaf ? "APPLICATION" : upper(p.type.type), utf8_);
    out += ' ';
    append_imap_string(out, contained_leaf ? "OCTET-STREAM" : upper(p.type.subtype), utf8_);
    out += ' ';
    append_params(out, p.type.params, text && !p.type.param("charset"), utf8_);
    out += ' ';
    append_imap_nstring(out, p.id, utf8_);
    out += ' ';
    append_imap_nstring(out, p.description, utf8_);
    out += ' ';
    append_imap_string(out, upper(p.encoding), utf8_);
    out += ' ';
    out += std::to_string(p.body.size());
    if (p.kind == PartKind::kMessage) {
      const Part& inner = p.children.front();
      out += ' ';
      out += imap_envelope(msg_, inner, utf8_);
      out += ' ';
      body(inner, out);
      out += ' ';
      out += std::to_string(p.lines);
    } else if (text) {
      out += ' ';
      out += std::to_string(p.lines);
    }
    if (extended_) {
      out += ' ';
      append_imap_nstring(out, p.md5, utf8_);
      out += ' ';
      append_dsp_lang_loc(out, p, utf8_);
    }
  }

  std::string_view msg_;
  bool extended_;
  bool utf8_;
};

}  // namespace

void append_imap_string(std::string& out, std::string_view s, bool utf8) {
  std::string clean;
  if (s.find('\0') != std::string_view::npos) {
    clean.assign(s);
    clean.erase(std::remove(clean.begin(), clean.end(), '\0'), clean.end());
    s = clean;
  }
  if (quotable(s, utf8)) {
    out += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
    return;
  }
  out += '{';
  out += std::to_string(s.size());
  out += "}\r\n";
  out += s;
}

void append_imap_nstring(std::string& out, const std::optional<std::string>& s, bool utf8) {
  if (s)
    append_imap_string(out, *s, utf8);
  else
    out += "NIL";
}

std::string imap_envelope(std::string_view message, const Part& message_part, bool utf8) {
  const HeaderSection hs = read_header_section(message_part.header.of(message));
  const auto raw = [&](std::string_view name) -> std::optional<std::string> {
    const FieldLines* f = find_field(hs.fields, name);
    if (!f) return std::nullopt;
    return unfold_value(f->value);
  };
  const auto addresses = [&](std::string_view name) {
    const FieldLines* f = find_field(hs.fields, name);
    return f ? parse_address_list(f->value) : std::vector<MailAddress>{};
  };
  const auto from = addresses("From");
  const auto sender = addresses("Sender");
  const auto reply_to = addresses("Reply-To");

  std::string out = "(";
  append_imap_nstring(out, raw("Date"), utf8);
  out += ' ';
  append_imap_nstring(out, raw("Subject"), utf8);
  // RFC 9051 §7.5.2: Sender and Reply-To default to From.
  for (const auto* list :
       {&from, sender.empty() ? &from : &sender, reply_to.empty() ? &from : &reply_to}) {
    out += ' ';
    append_address_list(out, *list, utf8);
  }
  for (std::string_view name : {"To", "Cc", "Bcc"}) {
    out += ' ';
    append_address_list(out, addresses(name), utf8);
  }
  out += ' ';
  append_imap_nstring(out, raw("In-Reply-To"), utf8);
  out += ' ';
  append_imap_nstring(out, raw("Message-ID"), utf8);
  out += ')';
  return out;
}

std::string imap_body_structure(std::string_view message, const Part& part, bool extended,
                                bool utf8) {
  std::string out;
  BodyWriter(message, extended, utf8).body(part, out);
  return out;
}

}  // namespace mta::mime
