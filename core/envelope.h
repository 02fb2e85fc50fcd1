#pragma once
// The envelope of one message: what MAIL and RCPT said, plus where it came from.
//
// This is the in-memory form shared by the SMTP session, policy and the queue; the queue
// owns its persistent encoding (queue/record.h). DSN parameters (RFC 3461) are kept as
// given so that delivery can honour them.

#include <cstdint>
#include <string>
#include <vector>

#include "core/address.h"

namespace core {

enum class BodyType : uint8_t { k7Bit = 0, k8BitMime = 1, kBinaryMime = 2 };
enum class DsnRet : uint8_t { kUnset = 0, kFull = 1, kHeaders = 2 };

// RFC 3461 §4.1 NOTIFY: NEVER, or any of SUCCESS, FAILURE, DELAY. 0 means not given.
enum DsnNotify : uint8_t {
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};

struct Recipient {
  Address address;
  uint8_t notify = 0;  // DsnNotify bits
  std::string orcpt;   // "rfc822;user@example.com" as given (xtext decoded), or empty
  bool operator==(const Recipient&) const = default;
};

struct Envelope {
  Address sender;  // empty: null reverse-path
  std::vector<Recipient> recipients;
  BodyType body = BodyType::k7Bit;
  bool smtputf8 = false;
  DsnRet ret = DsnRet::kUnset;
  std::string envid;        // RFC 3461 ENVID, xtext decoded
  uint64_t declared_size = 0;  // RFC 1870 SIZE= or 0

  // Provenance, for Received, logs and policy.
  std::string client_ip;
  std::string client_helo;
  std::string auth_user;  // empty when not authenticated
  std::string listener;   // "submission", "submissions" or "relay"
  bool tls = false;
  // DMARC asked for quarantine (p=quarantine): local delivery files it into Junk.
  bool quarantine = false;
  int64_t received_at_ms = 0;  // Unix time
  bool operator==(const Envelope&) const = default;
};

std::string body_type_name(BodyType t);

}  // namespace core
