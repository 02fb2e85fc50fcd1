#pragma once
// Headers: the header fields of one HTTP message, in order, with case-insensitive lookup
// (RFC 9110 §5.1). Shared by requests (the parser fills it) and responses.
//
// Values are stored as received, without leading or trailing whitespace. A field that
// arrived on several lines stays several entries; get() returns the first, get_all() every
// one (callers combine lists as the field's definition says).
//
// Threading: a plain value. Limits: linear lookup -- messages here carry a few dozen fields.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mta::http {

// ASCII case-insensitive equality, for field names and tokens.
bool iequals(std::string_view a, std::string_view b);

class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  void add(std::string name, std::string value);
  // Replaces every field of that name by one.
  void set(std::string name, std::string value);
  void remove(std::string_view name);

  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string_view> get_all(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // True if the comma-separated list in every `name` field holds `token` (any case), as for
  // "Connection: keep-alive, close".
  bool has_token(std::string_view name, std::string_view token) const;

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// The comma-separated elements of a list field (RFC 9110 §5.6.1), trimmed, empty ones
// dropped.
std::vector<std::string_view> split_list(std::string_view value);

}  // namespace mta::http
