// ABI 1.2 building blocks: the ids of module iqs, the callback gate, and the
// service lookup of the module tables.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/modules/module_instance.hpp"
#include "core/modules/module_tables.hpp"
#include "core/modules/pending_iqs.hpp"

using namespace parley;

TEST_CASE("module iq ids name the loop that waits, and nothing else is taken for one") {
  CHECK(PendingIqs::owner_loop("piq.0.1.abc") == 0u);
  CHECK(PendingIqs::owner_loop("piq.13.77.x") == 13u);
  CHECK_FALSE(PendingIqs::owner_loop("raw1").has_value());
  CHECK_FALSE(PendingIqs::owner_loop("piq.").has_value());
  CHECK_FALSE(PendingIqs::owner_loop("piq.x.1.a").has_value());
  CHECK_FALSE(PendingIqs::owner_loop("piq.3").has_value());
  CHECK_FALSE(PendingIqs::owner_loop("PIQ.1.2.a").has_value());
}

TEST_CASE("the callback gate runs nothing once closed, and close waits for what is inside") {
  CallbackGate gate;
  int ran = 0;
  CHECK_FALSE(gate.run([&] { ++ran; }));  // closed until start() succeeded
  gate.open();
  CHECK(gate.run([&] { ++ran; }));
  CHECK(ran == 1);

  std::atomic<bool> inside{false}, release{false}, after_close{false};
  std::thread runner([&] {
    gate.run([&] {
      inside = true;
      while (!release) std::this_thread::yield();
      // close() has not returned while this callback runs.
      CHECK_FALSE(after_close.load());
    });
  });
  while (!inside) std::this_thread::yield();
  std::thread closer([&] {
    gate.close();
    after_close = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(after_close.load());
  release = true;
  runner.join();
  closer.join();
  CHECK(after_close.load());
  CHECK_FALSE(gate.run([&] { ++ran; }));
  CHECK(ran == 1);
}

TEST_CASE("the gate under contention: no callback starts after close() returned") {
  CallbackGate gate;
  gate.open();
  std::atomic<bool> closed{false};
  std::atomic<int> late{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i)
        gate.run([&] {
          if (closed.load()) ++late;
        });
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  gate.close();
  closed = true;
  for (auto& t : threads) t.join();
  CHECK(late == 0);
}

TEST_CASE("module tables find a service domain without allocating a key") {
  ModuleTables tables;
  tables.services.emplace("conference.example.org", ServiceEntry{nullptr, nullptr, "example.org", "Rooms"});
  std::string_view domain = "conference.example.org";
  const ServiceEntry* found = tables.service_for(domain);
  REQUIRE(found != nullptr);
  CHECK(found->name == "Rooms");
  CHECK(found->host == "example.org");
  CHECK(tables.service_for("example.org") == nullptr);
  CHECK(tables.service_for("upload.example.org") == nullptr);
}
