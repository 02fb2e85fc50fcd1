#pragma once
// Who may send mail where: the relay decision for one RCPT TO.
//
//   role         client                         recipient domain   decision
//   submission*  not authenticated              any                530 5.7.0 Authentication
//   required submission*  authenticated                  any                accept relay (25)
//   authenticated or trusted net   any                accept relay (25)   anyone else local accept
//   relay (25)   anyone else                    not local          554 5.7.1 Relay access denied
//
// (*) submission and submissions alike. Trusted networks do not waive AUTH on the
// submission ports (RFC 6409 §4.3 ties submission to authentication); they are for port
// 25, where applications and internal hosts send without logging in. A recipient without a
// domain (RFC 5321 §4.5.1 "<Postmaster>") is local. Every accepted recipient says whether
// it is local, so the caller need not ask twice.
//
// Pure functions of their arguments; RelayConfig is read-only and may be shared by threads.
//
// Limits: local domains match exactly (no wildcard subdomains); no per-recipient lookup
// here: whether a local mailbox exists is the caller's question.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.h"
#include "core/cidr.h"
#include "core/reply.h"

namespace policy {

enum class ListenerRole { kSubmission, kSubmissions, kRelay };

// "submission", "submissions", "relay": the names in the config and in Envelope::listener.
std::string_view role_name(ListenerRole role);
std::optional<ListenerRole> parse_role(std::string_view name);

struct RelayConfig {
  std::vector<core::Cidr> trusted_networks;
  std::vector<std::string> local_domains;
};

struct RcptDecision {
  bool accepted = false;
  bool local = false;  // when accepted: the recipient's domain is one of ours
  core::Reply reply;   // when refused: the reply to send

  static RcptDecision accept(bool local) { return {true, local, {}}; }
  static RcptDecision refuse(core::Reply reply) { return {false, false, std::move(reply)}; }
};

bool is_local_domain(const RelayConfig& config, std::string_view domain);
bool is_trusted(const RelayConfig& config, const core::IpAddress& client);

RcptDecision decide_rcpt(const RelayConfig& config, ListenerRole role,
                         const core::IpAddress& client, bool authenticated,
                         const core::Address& rcpt);

}  // namespace policy
