#include "mta/mailbox/events.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

using namespace mta::mailbox;

namespace {

Changes changes(std::vector<std::pair<std::string, std::string>> pairs) {
  Changes c;
  for (const auto& [user, mailbox] : pairs) c.add(user, mailbox);
  return c;
}

}  // namespace

TEST_CASE("unit: changes name each mailbox once", "[mailbox][unit]") {
  const Changes c = changes({{"al", "INBOX"}, {"al", "Sent"}, {"al", "INBOX"}, {"bo", "INBOX"}});
  CHECK(c.touched() ==
        std::vector<Changes::Touched>{{"al", "INBOX"}, {"al", "Sent"}, {"bo", "INBOX"}});
  CHECK(Changes().empty());
}

TEST_CASE("unit: watchers hear of their user's mailboxes only", "[mailbox][unit]") {
  Events events;
  std::vector<std::string> heard_a, heard_b, heard_bob;
  auto a = events.watch("Alice", [&](std::string_view m) { heard_a.emplace_back(m); });
  auto b = events.watch("alice", [&](std::string_view m) { heard_b.emplace_back(m); });
  auto bob = events.watch("bob", [&](std::string_view m) { heard_bob.emplace_back(m); });
  CHECK(events.watchers("ALICE") == 2);

  events.notify(changes({{"alice", "INBOX"}, {"carol", "INBOX"}, {"alice", "Lists/x"}}));
  CHECK(heard_a == std::vector<std::string>{"INBOX", "Lists/x"});
  CHECK(heard_b == heard_a);
  CHECK(heard_bob.empty());

  SECTION("a destroyed watch hears nothing more") {
    a.reset();
    {
      Events::Watch moved = std::move(b);  // the registration moves with it
      events.notify(changes({{"alice", "Sent"}}));
      CHECK(heard_b.size() == 3);
    }
    events.notify(changes({{"alice", "Junk"}}));
    CHECK(heard_a.size() == 2);
    CHECK(heard_b.size() == 3);
    CHECK(events.watchers("alice") == 0);
  }
  SECTION("assigning over a watch ends the old registration") {
    a = events.watch("bob",
                     [&](std::string_view m) { heard_a.emplace_back("bob:" + std::string(m)); });
    events.notify(changes({{"alice", "Sent"}, {"bob", "INBOX"}}));
    CHECK(heard_a == std::vector<std::string>{"INBOX", "Lists/x", "bob:INBOX"});
    CHECK(heard_bob == std::vector<std::string>{"INBOX"});
  }
}

TEST_CASE("unit: watches come and go while another thread notifies", "[mailbox][unit]") {
  Events events;
  std::atomic<int> heard{0};
  std::atomic<int> late{0};  // callbacks that ran after their watch was reset
  std::atomic<bool> alive{false};
  std::atomic<bool> stop{false};
  std::thread notifier([&] {
    const Changes c = changes({{"al", "INBOX"}});
    while (!stop) events.notify(c);
  });
  for (int i = 0; i < 500; ++i) {
    alive = true;
    auto w = events.watch("al", [&](std::string_view) {
      ++heard;
      if (!alive) ++late;
    });
    std::this_thread::yield();
    w.reset();
    alive = false;
  }
  auto last = events.watch("al", [&](std::string_view) { ++heard; });
  while (heard == 0) std::this_thread::yield();
  stop = true;
  notifier.join();
  CHECK(late == 0);
  CHECK(events.watchers("al") == 1);
}
