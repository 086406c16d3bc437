// Named module counters (ABI 1.0 counter_add): one shard per loop, written
// only by its thread, summed by readers while the loops add (run under TSan).
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/modules/module_counters.hpp"

using namespace parley;

TEST_CASE("counters sum over loops, off-loop adds and names past a shard's capacity") {
  ModuleCounters counters(2);
  counters.add("stored", 2, 0);
  counters.add("stored", 3, 1);
  counters.add("stored", 1, -1);  // start() on the main thread
  counters.add("bounced", -4, 1);
  counters.add("stored", 1, 7);  // not a loop of this server: the locked map
  for (size_t i = 0; i < ModuleCounters::kShardCapacity + 5; ++i) counters.add("n" + std::to_string(i), 1, 0);
  auto totals = counters.totals();
  CHECK(totals["stored"] == 7);
  CHECK(totals["bounced"] == -4);
  CHECK(totals.size() == 2 + ModuleCounters::kShardCapacity + 5);
  for (size_t i = 0; i < ModuleCounters::kShardCapacity + 5; ++i) CHECK(totals["n" + std::to_string(i)] == 1);
}

TEST_CASE("loops add while a reader sums: no lost add, no torn name") {
  constexpr int kLoops = 2, kAdds = 20000;
  ModuleCounters counters(kLoops);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    int64_t last = 0;
    while (!done.load()) {
      auto totals = counters.totals();
      int64_t now = totals["hits"];
      CHECK(now >= last);  // each shard only grows, so the sum does
      last = now;
      for (const auto& [name, value] : totals) CHECK((name == "hits" || name.rfind("name", 0) == 0));
    }
  });
  std::vector<std::thread> loops;
  for (int loop = 0; loop < kLoops; ++loop) {
    loops.emplace_back([&, loop] {
      for (int i = 0; i < kAdds; ++i) {
        counters.add("hits", 1, loop);
        if (i % 1000 == 0) counters.add("name" + std::to_string(i / 1000), 1, loop);
      }
    });
  }
  for (auto& t : loops) t.join();
  done = true;
  reader.join();
  auto totals = counters.totals();
  CHECK(totals["hits"] == kLoops * kAdds);
  CHECK(totals["name0"] == kLoops);
}
