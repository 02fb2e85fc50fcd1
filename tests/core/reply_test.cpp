#include "core/reply.h"

#include <catch2/catch.hpp>

TEST_CASE("reply: wire form", "[core][unit]") {
  CHECK((core::Reply{250, "2.0.0", "Ok"}.to_wire()) == "250 2.0.0 Ok\r\n");
  CHECK((core::Reply{250, "", "a\nb\nc"}.to_wire()) == "250-a\r\n250-b\r\n250 c\r\n");
  CHECK((core::Reply{334, "", ""}.to_wire()) == "334 \r\n");
  CHECK(core::Reply{452, "4.5.3", "x"}.transient());
  CHECK(core::Reply{554, "5.7.1", "x"}.permanent());
}
