#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/loop/worker_loop.hpp"

using parley::WorkerLoop;

TEST_CASE("worker loop: tasks posted from other threads run on the loop thread, in order") {
  WorkerLoop loop(0);
  loop.start_thread();
  std::atomic<int> count{0};
  std::atomic<bool> wrong_thread{false};
  std::atomic<bool> out_of_order{false};
  int last = -1;  // touched on the loop thread only
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i)
      loop.post([&, i] {
        if (!loop.on_loop_thread()) wrong_thread = true;
        if (i != last + 1) out_of_order = true;
        last = i;
        ++count;
      });
  });
  producer.join();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count < 1000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(count == 1000);
  CHECK_FALSE(wrong_thread);
  CHECK_FALSE(out_of_order);
  loop.stop();
  loop.join();
}

TEST_CASE("worker loop: a throwing task is contained") {
  WorkerLoop loop(1);
  loop.start_thread();
  std::atomic<bool> after{false};
  loop.post([] { throw std::runtime_error("boom"); });
  loop.post([&] { after = true; });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!after && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(after);
  loop.stop();
  loop.join();
}
