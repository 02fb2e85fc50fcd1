#pragma once
// Decoding of DNS reply messages (RFC 1035 §4) into the answers of dns/resolver.h.
//
// c-ares 1.18's ares_parse_mx_reply and ares_parse_txt_reply_ext drop the TTLs the cache
// needs, so CaresResolver hands the raw reply to these functions instead. They are pure
// functions over bytes, safe on hostile input: every length is bounds-checked and a
// compression pointer must point before itself (RFC 1035 §4.1.4 "a prior occurrence"),
// which rules out pointer loops.
//
// The reply's RCODE decides the outcome as listed in dns/resolver.h. The records returned
// are those of the asked type owned by qname, or by the end of a CNAME chain that starts at
// qname inside the same message; the TTL is the smallest along the way (RFC 2181 §5.2).
// NODATA takes its TTL from the SOA in the authority section, min(SOA TTL, SOA MINIMUM)
// (RFC 2308 §5), else kDefaultNegativeTtl.
//
// Limits: class IN only; a CNAME chain is followed for at most 8 links and never by a new
// query; the negative TTL of an NXDOMAIN is not reported (a Status carries no TTL). Label
// bytes outside printable ASCII, '.' and '\' are escaped as in master files ("\046").

#include <cstdint>
#include <span>
#include <string_view>

#include "core/status.h"
#include "dns/resolver.h"

namespace dns {

core::Result<MxAnswer> decode_mx_reply(std::span<const uint8_t> msg, std::string_view qname);
core::Result<AddressAnswer> decode_a_reply(std::span<const uint8_t> msg, std::string_view qname);
core::Result<AddressAnswer> decode_aaaa_reply(std::span<const uint8_t> msg, std::string_view qname);
core::Result<TxtAnswer> decode_txt_reply(std::span<const uint8_t> msg, std::string_view qname);
core::Result<PtrAnswer> decode_ptr_reply(std::span<const uint8_t> msg, std::string_view qname);

}  // namespace dns
