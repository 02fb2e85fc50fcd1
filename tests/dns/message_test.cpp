#include "dns/message.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace dns {
namespace {

using Kind = core::Status::Kind;

// Writes DNS messages by hand, so that tests can also write broken ones.
class Wire {
 public:
  // A reply header with one question (qname, qtype) and the given section counts.
  Wire(uint8_t rcode, const std::string& qname, RrType qtype, uint16_t ancount,
       uint16_t nscount = 0) {
    u16(0x1234);
    u16(static_cast<uint16_t>(0x8180 | rcode));  // QR RD RA
    u16(1);
    u16(ancount);
    u16(nscount);
    u16(0);
    name(qname);
    u16(static_cast<uint16_t>(qtype));
    u16(1);
  }
  static constexpr uint16_t kQname = 12;  // offset of the question's name, for pointers

  Wire& u8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  Wire& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
  Wire& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v));
  }
  Wire& name(const std::string& dotted) {
    size_t start = 0;
    while (start < dotted.size()) {
      size_t dot = dotted.find('.', start);
      if (dot == std::string::npos) dot = dotted.size();
      u8(static_cast<uint8_t>(dot - start));
      b.insert(b.end(), dotted.begin() + start, dotted.begin() + dot);
      start = dot + 1;
    }
    return u8(0);
  }
  Wire& pointer(uint16_t offset) { return u16(static_cast<uint16_t>(0xC000 | offset)); }
  // Owner as a pointer to the question name, then type, class IN, TTL; RDLENGTH follows.
  Wire& rr_at_qname(RrType type, uint32_t ttl) {
    return pointer(kQname).u16(static_cast<uint16_t>(type)).u16(1).u32(ttl);
  }
  Wire& bytes(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Wire& soa(const std::string& zone, uint32_t ttl, uint32_t minimum) {
    name(zone).u16(static_cast<uint16_t>(RrType::kSoa)).u16(1).u32(ttl);
    const size_t before = b.size();
    name("ns." + zone).name("hostmaster." + zone).u32(1).u32(7200).u32(900).u32(1209600);
    u32(minimum);
    const size_t len = b.size() - before;
    b.insert(b.begin() + static_cast<long>(before),
             {static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)});
    return *this;
  }

  std::vector<uint8_t> b;
};

TEST_CASE("unit: decode MX reply with compressed names and the smallest TTL", "[dns][unit]") {
  Wire w(0, "example.test", RrType::kMx, 2);
  const uint16_t first_host = static_cast<uint16_t>(w.b.size() + 2 + 10 + 2);
  w.rr_at_qname(RrType::kMx, 300).u16(2 + 4 + 2).u16(10).u8(3).bytes("mx1").pointer(Wire::kQname);
  w.rr_at_qname(RrType::kMx, 250).u16(2 + 2).u16(20).pointer(first_host);
  const auto r = decode_mx_reply(w.b, "example.test");
  REQUIRE(r);
  CHECK(r->records == std::vector<MxRecord>{{10, "mx1.example.test"}, {20, "mx1.example.test"}});
  CHECK(r->ttl == 250);
}

TEST_CASE("unit: decode null MX as the root", "[dns][unit]") {
  Wire w(0, "nullmx.test", RrType::kMx, 1);
  w.rr_at_qname(RrType::kMx, 300).u16(3).u16(0).u8(0);
  const auto r = decode_mx_reply(w.b, "nullmx.test");
  REQUIRE(r);
  CHECK(r->records == std::vector<MxRecord>{{0, "."}});
}

TEST_CASE("unit: decode A, AAAA and TXT records", "[dns][unit]") {
  SECTION("A") {
    Wire w(0, "h.test", RrType::kA, 2);
    w.rr_at_qname(RrType::kA, 60).u16(4).u8(192).u8(0).u8(2).u8(1);
    w.rr_at_qname(RrType::kA, 30).u16(4).u8(192).u8(0).u8(2).u8(2);
    const auto r = decode_a_reply(w.b, "h.test");
    REQUIRE(r);
    CHECK(r->records == std::vector<std::string>{"192.0.2.1", "192.0.2.2"});
    CHECK(r->ttl == 30);
  }
  SECTION("AAAA") {
    Wire w(0, "h.test", RrType::kAaaa, 1);
    w.rr_at_qname(RrType::kAaaa, 60).u16(16).u16(0x2001).u16(0xdb8);
    for (int i = 0; i < 5; ++i) w.u16(0);
    w.u16(1);
    const auto r = decode_aaaa_reply(w.b, "h.test");
    REQUIRE(r);
    CHECK(r->records == std::vector<std::string>{"2001:db8::1"});
  }
  SECTION("TXT: strings of one RR joined, RRs apart (RFC 7208 §3.3)") {
    Wire w(0, "t.test", RrType::kTxt, 2);
    w.rr_at_qname(RrType::kTxt, 60).u16(1 + 7 + 1 + 4).u8(7).bytes("v=spf1 ").u8(4).bytes("-all");
    w.rr_at_qname(RrType::kTxt, 60).u16(1 + 5 + 1).u8(5).bytes("other").u8(0);
    const auto r = decode_txt_reply(w.b, "t.test");
    REQUIRE(r);
    CHECK(r->records == std::vector<std::string>{"v=spf1 -all", "other"});
  }
  SECTION("a record of another type or owner is not part of the answer") {
    Wire w(0, "h.test", RrType::kA, 2);
    w.rr_at_qname(RrType::kTxt, 60).u16(2).u8(1).bytes("x");
    w.name("other.test").u16(1).u16(1).u32(60).u16(4).u32(0x7F000001);
    const auto r = decode_a_reply(w.b, "h.test");
    REQUIRE(r);
    CHECK(r->records.empty());
  }
}

TEST_CASE("unit: decode follows a CNAME chain inside the reply", "[dns][unit]") {
  Wire w(0, "alias.test", RrType::kA, 2);
  const uint16_t target = static_cast<uint16_t>(w.b.size() + 12);
  w.rr_at_qname(RrType::kCname, 40).u16(9).name("mx.test");
  w.pointer(target).u16(1).u16(1).u32(60).u16(4).u32(0xC0000203);
  const auto r = decode_a_reply(w.b, "Alias.Test.");
  REQUIRE(r);
  CHECK(r->records == std::vector<std::string>{"192.0.2.3"});
  CHECK(r->ttl == 40);
}

TEST_CASE("unit: decode negative replies (RFC 2308)", "[dns][unit]") {
  SECTION("NXDOMAIN is not_found") {
    Wire w(3, "nosuch.test", RrType::kMx, 0, 1);
    w.soa("test", 3600, 120);
    const auto r = decode_mx_reply(w.b, "nosuch.test");
    CHECK(r.status().kind() == Kind::kNotFound);
    CHECK_THAT(r.status().message(), Catch::Contains("NXDOMAIN"));
  }
  SECTION("NODATA takes min(SOA TTL, MINIMUM)") {
    auto [soa_ttl, minimum, expected] =
        GENERATE(table<uint32_t, uint32_t, uint32_t>({{3600, 120, 120}, {60, 120, 60}}));
    Wire w(0, "h.test", RrType::kMx, 0, 1);
    w.soa("test", soa_ttl, minimum);
    const auto r = decode_mx_reply(w.b, "h.test");
    REQUIRE(r);
    CHECK(r->records.empty());
    CHECK(r->ttl == expected);
  }
  SECTION("NODATA without SOA gets the default") {
    Wire w(0, "h.test", RrType::kMx, 0);
    const auto r = decode_mx_reply(w.b, "h.test");
    REQUIRE(r);
    CHECK(r->ttl == kDefaultNegativeTtl);
  }
}

TEST_CASE("unit: decode failures are temporary", "[dns][unit]") {
  auto [rcode, text] =
      GENERATE(table<uint8_t, std::string>({{2, "SERVFAIL"}, {5, "RCODE 5"}, {1, "RCODE 1"}}));
  Wire w(rcode, "h.test", RrType::kA, 0);
  const auto r = decode_a_reply(w.b, "h.test");
  CHECK(r.status().kind() == Kind::kTemporary);
  CHECK_THAT(r.status().message(), Catch::Contains(text));
}

TEST_CASE("unit: decode rejects hostile or broken messages", "[dns][unit]") {
  SECTION("a pointer to itself") {
    Wire w(0, "h.test", RrType::kMx, 1);
    const uint16_t self = static_cast<uint16_t>(w.b.size() + 12 + 2);
    w.rr_at_qname(RrType::kMx, 60).u16(4).u16(10).pointer(self);
    CHECK(decode_mx_reply(w.b, "h.test").status().kind() == Kind::kTemporary);
  }
  SECTION("a pointer forward") {
    Wire w(0, "h.test", RrType::kMx, 1);
    const uint16_t ahead = static_cast<uint16_t>(w.b.size() + 12 + 4);
    w.rr_at_qname(RrType::kMx, 60).u16(5).u16(10).pointer(ahead).u8(0);
    CHECK(decode_mx_reply(w.b, "h.test").status().kind() == Kind::kTemporary);
  }
  SECTION("an A record of the wrong size") {
    Wire w(0, "h.test", RrType::kA, 1);
    w.rr_at_qname(RrType::kA, 60).u16(3).u8(1).u8(2).u8(3);
    CHECK(decode_a_reply(w.b, "h.test").status().kind() == Kind::kTemporary);
  }
  SECTION("a TXT string longer than its RR") {
    Wire w(0, "h.test", RrType::kTxt, 1);
    w.rr_at_qname(RrType::kTxt, 60).u16(3).u8(9).bytes("ab");
    CHECK(decode_txt_reply(w.b, "h.test").status().kind() == Kind::kTemporary);
  }
  SECTION("a query instead of a reply") {
    Wire w(0, "h.test", RrType::kA, 0);
    w.b[2] &= 0x7F;
    CHECK(decode_a_reply(w.b, "h.test").status().kind() == Kind::kTemporary);
  }
  SECTION("every truncation of a valid reply decodes or fails cleanly") {
    Wire w(0, "example.test", RrType::kMx, 1, 1);
    w.rr_at_qname(RrType::kMx, 300).u16(2 + 4 + 2).u16(10).u8(3).bytes("mx1").pointer(Wire::kQname);
    w.soa("test", 3600, 120);
    for (size_t len = 0; len < w.b.size(); ++len) {
      const auto r = decode_mx_reply({w.b.data(), len}, "example.test");
      INFO("length " << len);
      // Cut inside the authority section the answer still stands; anywhere else it fails.
      if (r) CHECK(r->records.size() == 1);
    }
  }
}

TEST_CASE("unit: decode treats a TTL with the top bit set as zero", "[dns][unit]") {
  Wire w(0, "h.test", RrType::kA, 1);
  w.rr_at_qname(RrType::kA, 0x80000000).u16(4).u32(0xC0000201);
  const auto r = decode_a_reply(w.b, "h.test");
  REQUIRE(r);
  CHECK(r->ttl == 0);
}

TEST_CASE("unit: decode escapes odd label bytes", "[dns][unit]") {
  Wire w(0, "h.test", RrType::kMx, 1);
  w.rr_at_qname(RrType::kMx, 60).u16(2 + 6).u16(10).u8(4).bytes(std::string("a.b\x01", 4)).u8(0);
  const auto r = decode_mx_reply(w.b, "h.test");
  REQUIRE(r);
  CHECK(r->records[0].host == "a\\.b\\001");
}

}  // namespace
}  // namespace dns
