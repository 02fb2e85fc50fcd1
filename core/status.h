#pragma once
// Status and Result<T>: errors as values.
//
// A Status is either ok or carries a Kind from a small closed set plus a message a human
// can act on ("queue: disk full writing batch of 12 messages"). Result<T> holds a T or a
// non-ok Status. Neither throws; no exception crosses a module edge.
//
// Limits: no error chaining; wrap context into the message at the point where it is known.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace core {

class [[nodiscard]] Status {
 public:
  enum class Kind {
    kOk,
    kInvalid,      // bad input from a peer or a file
    kNotFound,     // the thing asked for does not exist
    kTemporary,    // try again later (4xx-class)
    kPermanent,    // will never work (5xx-class)
    kIo,           // the disk or the network failed
    kCorrupt,      // stored data is unreadable or of an unknown version
  };

  Status() = default;
  static Status ok() { return Status(); }
  static Status invalid(std::string m) { return Status(Kind::kInvalid, std::move(m)); }
  static Status not_found(std::string m) { return Status(Kind::kNotFound, std::move(m)); }
  static Status temporary(std::string m) { return Status(Kind::kTemporary, std::move(m)); }
  static Status permanent(std::string m) { return Status(Kind::kPermanent, std::move(m)); }
  static Status io(std::string m) { return Status(Kind::kIo, std::move(m)); }
  static Status corrupt(std::string m) { return Status(Kind::kCorrupt, std::move(m)); }

  bool is_ok() const { return kind_ == Kind::kOk; }
  explicit operator bool() const { return is_ok(); }
  Kind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // "kind: message", for logs.
  std::string to_string() const;

 private:
  Status(Kind k, std::string m) : kind_(k), message_(std::move(m)) {}
  Kind kind_ = Kind::kOk;
  std::string message_;
};

inline const char* kind_name(Status::Kind k) {
  switch (k) {
    case Status::Kind::kOk: return "ok";
    case Status::Kind::kInvalid: return "invalid";
    case Status::Kind::kNotFound: return "not found";
    case Status::Kind::kTemporary: return "temporary";
    case Status::Kind::kPermanent: return "permanent";
    case Status::Kind::kIo: return "io";
    case Status::Kind::kCorrupt: return "corrupt";
  }
  return "?";
}

inline std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(kind_name(kind_)) + ": " + message_;
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) { assert(!std::get<Status>(v_).is_ok()); }  // NOLINT

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace core
