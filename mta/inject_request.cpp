#include "mta/inject_request.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/base64.h"
#include "mta/mime/encoded_words.h"

namespace mta {
namespace {

using nlohmann::json;

constexpr std::string_view kFields[] = {"from",     "to",          "cc",   "bcc",
                                        "reply_to", "subject",     "text", "html",
                                        "headers",  "attachments", "tags", "idempotency_key"};
constexpr std::string_view kAttachmentFields[] = {"filename", "content_type", "content",
                                                  "content_id"};
constexpr std::string_view kMailboxFields[] = {"name", "email"};

core::Status invalid(const std::string& path, std::string_view what) {
  return core::Status::invalid(path + ": " + std::string(what));
}

std::string index_path(std::string_view field, size_t i) {
  return std::string(field) + "[" + std::to_string(i) + "]";
}

template <size_t N>
core::Status check_keys(const json& object, const std::string& prefix,
                        const std::string_view (&known)[N]) {
  for (const auto& item : object.items())
    if (std::find(std::begin(known), std::end(known), item.key()) == std::end(known))
      return invalid(prefix + item.key(), "unknown field");
  return core::Status::ok();
}

// A field that must be a string when present; null and absent both give nullopt.
core::Result<std::optional<std::string>> optional_string(const json& object, const char* key,
                                                         const std::string& path) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return invalid(path, "must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

core::Result<core::Address> parse_addr_spec(const std::string& path, const std::string& spec,
                                            bool allow_utf8) {
  auto a = core::parse_mailbox(spec, allow_utf8);
  if (!a) return invalid(path, "not an address (" + a.status().message() + ")");
  return std::move(*a);
}

std::string_view trim(std::string_view s) {
  const size_t first = s.find_first_not_of(" \t");
  return first == std::string_view::npos ? ""
                                         : s.substr(first, s.find_last_not_of(" \t") + 1 - first);
}

// "a@b", "<a@b>" or "Name <a@b>" with the name optionally a quoted string. Read strictly
// (unlike mime::parse_address_list, which reads stored mail and would take "Bob b@x.org" as
// "Bobb@x.org"): what a program sends us either means one address or is refused.
core::Result<mime::Mailbox> mailbox_from_string(const std::string& path, std::string_view text,
                                                bool allow_utf8) {
  text = trim(text);
  if (text.empty()) return invalid(path, "not an address (empty)");
  std::string_view spec = text;
  std::string name;
  if (text.back() == '>') {
    const size_t open = text.rfind('<');
    if (open == std::string_view::npos) return invalid(path, "not an address (no '<')");
    spec = text.substr(open + 1, text.size() - open - 2);
    const std::string_view phrase = trim(text.substr(0, open));
    if (phrase.size() >= 2 && phrase.front() == '"' && phrase.back() == '"') {
      for (size_t i = 1; i + 1 < phrase.size(); ++i) {
        if (phrase[i] == '\\' && i + 2 < phrase.size()) ++i;
        name += phrase[i];
      }
    } else {
      name = mime::decode_encoded_words(phrase);  // header syntax: RFC 2047 applies
    }
  }
  if (spec.find(',') != std::string_view::npos && spec.find('"') == std::string_view::npos)
    return invalid(path, "one address per string (use an array for more)");
  auto address = parse_addr_spec(path, std::string(spec), allow_utf8);
  if (!address) return address.status();
  return mime::Mailbox{std::move(name), std::move(*address)};
}

core::Result<mime::Mailbox> mailbox_from_json(const std::string& path, const json& v,
                                              bool allow_utf8) {
  if (v.is_string()) return mailbox_from_string(path, v.get<std::string>(), allow_utf8);
  if (!v.is_object())
    return invalid(path, "must be an address string or an object {\"name\", \"email\"}");
  if (auto s = check_keys(v, path + ".", kMailboxFields); !s) return s;
  auto name = optional_string(v, "name", path + ".name");
  if (!name) return name.status();
  auto email = optional_string(v, "email", path + ".email");
  if (!email) return email.status();
  if (!email->has_value()) return invalid(path + ".email", "required");
  auto address = parse_addr_spec(path + ".email", **email, allow_utf8);
  if (!address) return address.status();
  return mime::Mailbox{name->value_or(""), std::move(*address)};
}

class Parser {
 public:
  explicit Parser(const InjectLimits& limits) : limits_(limits) {}

  core::Result<InjectRequest> parse(const json& body) {
    if (!body.is_object()) return invalid("body", "must be a JSON object");
    if (auto s = check_keys(body, "", kFields); !s) return s;
    mime::Composition& c = out_.composition;

    const auto from = body.find("from");
    if (from == body.end() || from->is_null()) return invalid("from", "required");
    if (from->is_array()) return invalid("from", "one address, not an array");
    auto sender = mailbox_from_json("from", *from, limits_.allow_smtputf8);
    if (!sender) return sender.status();
    c.from = std::move(sender->address);
    c.from_name = std::move(sender->name);

    if (auto s = mailboxes(body, "to", &c.to); !s) return s;
    if (auto s = mailboxes(body, "cc", &c.cc); !s) return s;
    std::vector<mime::Mailbox> bcc;
    if (auto s = mailboxes(body, "bcc", &bcc); !s) return s;
    if (auto s = mailboxes(body, "reply_to", &c.reply_to); !s) return s;
    if (out_.recipients.empty())
      return invalid("to", "at least one recipient is required in to, cc or bcc");

    if (auto s = string_field(body, "subject", &c.subject); !s) return s;
    if (auto s = body_field(body, "text", &c.text); !s) return s;
    if (auto s = body_field(body, "html", &c.html); !s) return s;
    if (auto s = headers(body); !s) return s;
    if (auto s = attachments(body); !s) return s;
    if (auto s = tags(body); !s) return s;
    if (auto s = idempotency_key(body); !s) return s;

    c.smtputf8 = c.from.needs_utf8() ||
                 std::any_of(out_.recipients.begin(), out_.recipients.end(),
                             [](const core::Address& a) { return a.needs_utf8(); }) ||
                 std::any_of(c.reply_to.begin(), c.reply_to.end(),
                             [](const mime::Mailbox& m) { return m.address.needs_utf8(); });
    if (auto s = mime::validate(c); !s) return s;
    return std::move(out_);
  }

 private:
  // to, cc, bcc or reply_to: one address (string or object) or an array of them. Each of to,
  // cc and bcc also adds its addresses to the envelope.
  core::Status mailboxes(const json& body, const char* key, std::vector<mime::Mailbox>* list) {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null()) return core::Status::ok();
    const bool envelope = std::string_view(key) != "reply_to";
    const auto add = [&](const std::string& path, const json& v) -> core::Status {
      if (envelope && ++recipient_count_ > limits_.max_recipients)
        return invalid(path, "more than " + std::to_string(limits_.max_recipients) +
                                 " recipients in to, cc and bcc");
      auto m = mailbox_from_json(path, v, limits_.allow_smtputf8);
      if (!m) return m.status();
      if (envelope && std::find(out_.recipients.begin(), out_.recipients.end(), m->address) ==
                          out_.recipients.end())
        out_.recipients.push_back(m->address);
      list->push_back(std::move(*m));
      return core::Status::ok();
    };
    if (!it->is_array()) return add(key, *it);
    for (size_t i = 0; i < it->size(); ++i)
      if (auto s = add(index_path(key, i), (*it)[i]); !s) return s;
    return core::Status::ok();
  }

  static core::Status string_field(const json& body, const char* key, std::string* out) {
    auto v = optional_string(body, key, key);
    if (!v) return v.status();
    if (v->has_value()) *out = std::move(**v);
    return core::Status::ok();
  }

  core::Status body_field(const json& body, const char* key, std::optional<std::string>* out) {
    auto v = optional_string(body, key, key);
    if (!v) return v.status();
    *out = std::move(*v);
    if (*out) return count_decoded(key, (*out)->size());
    return core::Status::ok();
  }

  core::Status count_decoded(const std::string& path, size_t octets) {
    decoded_ += octets;
    if (decoded_ > limits_.max_decoded_bytes)
      return invalid(path, "the message is too large: text, html and attachments exceed " +
                               std::to_string(limits_.max_decoded_bytes) + " octets decoded");
    return core::Status::ok();
  }

  core::Status headers(const json& body) {
    const auto it = body.find("headers");
    if (it == body.end() || it->is_null()) return core::Status::ok();
    if (!it->is_object()) return invalid("headers", "must be an object {\"Name\": \"value\"}");
    for (const auto& item : it->items()) {
      if (!item.value().is_string()) return invalid("headers." + item.key(), "must be a string");
      out_.composition.headers.emplace_back(item.key(), item.value().get<std::string>());
    }
    return core::Status::ok();
  }

  core::Status attachments(const json& body) {
    const auto it = body.find("attachments");
    if (it == body.end() || it->is_null()) return core::Status::ok();
    if (!it->is_array()) return invalid("attachments", "must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string path = index_path("attachments", i);
      const json& a = (*it)[i];
      if (!a.is_object()) return invalid(path, "must be an object");
      if (auto s = check_keys(a, path + ".", kAttachmentFields); !s) return s;
      mime::Attachment att;
      auto filename = optional_string(a, "filename", path + ".filename");
      if (!filename) return filename.status();
      if (!filename->has_value()) return invalid(path + ".filename", "required");
      att.filename = std::move(**filename);
      auto type = optional_string(a, "content_type", path + ".content_type");
      if (!type) return type.status();
      att.content_type = type->value_or("");
      auto id = optional_string(a, "content_id", path + ".content_id");
      if (!id) return id.status();
      att.content_id = std::move(*id);
      auto content = optional_string(a, "content", path + ".content");
      if (!content) return content.status();
      if (!content->has_value()) return invalid(path + ".content", "required");
      // Line breaks are what a base64 encoder commonly adds; anything else is refused.
      std::string text = std::move(**content);
      std::erase_if(text, [](char c) { return c == '\r' || c == '\n' || c == ' ' || c == '\t'; });
      std::optional<std::string> bytes = core::decode_base64(text);
      if (!bytes) return invalid(path + ".content", "not base64");
      if (auto s = count_decoded(path + ".content", bytes->size()); !s) return s;
      att.bytes = std::move(*bytes);
      out_.composition.attachments.push_back(std::move(att));
    }
    return core::Status::ok();
  }

  core::Status tags(const json& body) {
    const auto it = body.find("tags");
    if (it == body.end() || it->is_null()) return core::Status::ok();
    if (!it->is_array()) return invalid("tags", "must be an array of strings");
    if (it->size() > limits_.max_tags)
      return invalid("tags", "more than " + std::to_string(limits_.max_tags) + " tags");
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string path = index_path("tags", i);
      if (!(*it)[i].is_string()) return invalid(path, "must be a string");
      std::string tag = (*it)[i].get<std::string>();
      if (tag.empty()) return invalid(path, "empty");
      if (tag.size() > limits_.max_tag_octets)
        return invalid(path, "longer than " + std::to_string(limits_.max_tag_octets) + " octets");
      if (std::any_of(tag.begin(), tag.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }))
        return invalid(path, "has a control character");
      out_.tags.push_back(std::move(tag));
    }
    return core::Status::ok();
  }

  core::Status idempotency_key(const json& body) {
    auto key = optional_string(body, "idempotency_key", "idempotency_key");
    if (!key) return key.status();
    if (!key->has_value()) return core::Status::ok();
    const std::string& k = **key;
    if (k.empty() || k.size() > limits_.max_idempotency_key ||
        !std::all_of(k.begin(), k.end(), [](char c) { return c >= 0x20 && c <= 0x7E; }))
      return invalid("idempotency_key", "must be 1 to " +
                                            std::to_string(limits_.max_idempotency_key) +
                                            " printable ASCII characters");
    out_.idempotency_key = k;
    return core::Status::ok();
  }

  const InjectLimits& limits_;
  InjectRequest out_;
  size_t recipient_count_ = 0;
  size_t decoded_ = 0;
};

}  // namespace

core::Result<InjectRequest> parse_inject_request(std::string_view json_body,
                                                 const InjectLimits& limits) {
  try {
    const json body = json::parse(json_body);
    return Parser(limits).parse(body);
  } catch (const json::parse_error& e) {
    return core::Status::invalid(std::string("body: not valid JSON (") + e.what() + ")");
  } catch (const json::exception& e) {
    return core::Status::invalid(std::string("body: ") + e.what());
  }
}

}  // namespace mta
