#include "dns/fake_resolver.h"

#include <catch2/catch.hpp>
#include <memory>
#include <optional>

#include "dns/post.h"
#include "dns_test_support.h"

namespace dns {
namespace {

using Kind = core::Status::Kind;

TEST_CASE("unit: fake resolver answers like DNS", "[dns][unit]") {
  ManualPoster poster;
  FakeResolver dns(poster);
  dns.add_mx("example.test", 10, "mx.example.test", 300);
  dns.add_txt("example.test", "v=spf1 -all", 100);
  dns.add_txt("example.test", "other", 50);
  dns.set_negative_ttl(77);

  std::optional<core::Result<TxtAnswer>> txt, nodata, nxdomain;
  dns.query_txt("Example.test.", [&](core::Result<TxtAnswer> r) { txt = std::move(r); });
  dns.query_a("example.test", [&](core::Result<AddressAnswer> r) { nodata = std::move(r); });
  dns.query_a("nosuch.test", [&](core::Result<AddressAnswer> r) { nxdomain = std::move(r); });
  CHECK_FALSE(txt);
  CHECK(poster.run_pending() == 3);

  REQUIRE(*txt);
  CHECK((*txt)->records == std::vector<std::string>{"v=spf1 -all", "other"});
  CHECK((*txt)->ttl == 50);
  REQUIRE(*nodata);
  CHECK((*nodata)->records.empty());
  CHECK((*nodata)->ttl == 77);
  CHECK(nxdomain->status().kind() == Kind::kNotFound);
  CHECK_THAT(nxdomain->status().message(), Catch::Contains("NXDOMAIN"));
  CHECK(dns.queries() ==
        std::vector<std::string>{"TXT example.test", "A example.test", "A nosuch.test"});
}

TEST_CASE("unit: fake resolver injects faults per name", "[dns][unit]") {
  ManualPoster poster;
  FakeResolver dns(poster);
  dns.add_a("mx.test", "192.0.2.1");
  struct Case {
    FakeResolver::Fault fault;
    Kind kind;
    const char* text;
  };
  auto c = GENERATE(values<Case>({{FakeResolver::Fault::kServfail, Kind::kTemporary, "SERVFAIL"},
                                  {FakeResolver::Fault::kTimeout, Kind::kTemporary, "timeout"},
                                  {FakeResolver::Fault::kNxdomain, Kind::kNotFound, "NXDOMAIN"}}));
  dns.set_fault("MX.test", c.fault);
  std::optional<core::Result<AddressAnswer>> got;
  dns.query_a("mx.test", [&](core::Result<AddressAnswer> r) { got = std::move(r); });
  poster.run_pending();
  REQUIRE(got);
  CHECK(got->status().kind() == c.kind);
  CHECK_THAT(got->status().message(), Catch::Contains(c.text));

  dns.set_fault("mx.test", FakeResolver::Fault::kNone);
  dns.query_a("mx.test", [&](core::Result<AddressAnswer> r) { got = std::move(r); });
  poster.run_pending();
  CHECK(*got);
}

TEST_CASE("unit: loop poster runs functions later, in order", "[dns][unit]") {
  test::TestLoop loop;
  std::vector<int> ran;
  {
    LoopPoster poster(loop.get());
    poster.post([&] { ran.push_back(1); });
    poster.post([&] {
      ran.push_back(2);
      poster.post([&] { ran.push_back(4); });  // posted from a posted function
    });
    poster.post([&] { ran.push_back(3); });
    CHECK(ran.empty());
    CHECK(loop.run_until([&] { return ran.size() == 4; }));
    CHECK(ran == std::vector<int>{1, 2, 3, 4});

    poster.post([&] { ran.push_back(5); });
  }  // destroyed with one function pending: dropped
  CHECK(loop.close() == 0);
  CHECK(ran.size() == 4);
}

TEST_CASE("unit: a posted function may destroy its loop poster", "[dns][unit]") {
  test::TestLoop loop;
  auto poster = std::make_unique<LoopPoster>(loop.get());
  bool second_ran = false;
  poster->post([&] { poster.reset(); });
  poster->post([&] { second_ran = true; });
  CHECK(loop.run_until([&] { return poster == nullptr; }));
  CHECK(loop.close() == 0);
  CHECK_FALSE(second_ran);
}

}  // namespace
}  // namespace dns
