#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
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

TEST_CASE("worker loop: a busy loop is woken once for a burst of posts, not once per post") {
  WorkerLoop loop(2);
  loop.start_thread();
  std::atomic<bool> release{false};
  std::atomic<int> count{0};
  // The loop is busy in this task while the burst is posted: the first post
  // finds the inbox empty and wakes the loop; every later one finds it
  // non-empty and needs no wake-up of its own.
  loop.post([&] {
    while (!release.load()) std::this_thread::yield();
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (loop.wakeups() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  uint64_t before = loop.wakeups();
  for (int i = 0; i < 10000; ++i) loop.post([&] { ++count; });
  CHECK(loop.wakeups() - before <= 1);
  release = true;
  while (count < 10000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(count == 10000);
  loop.stop();
  loop.join();
}

TEST_CASE("worker loop: a task that keeps posting cannot starve the loop's timers") {
  WorkerLoop loop(3);
  loop.start_thread();
  std::atomic<bool> flood_on{true};
  std::atomic<bool> timer_fired{false};
  uv_timer_t timer{};
  timer.data = &timer_fired;
  // A task that re-posts itself forever: an unbounded drain would never return
  // to libuv, so the timer below would never fire.
  std::function<void()> flood = [&] {
    if (flood_on.load()) loop.post(flood);
  };
  loop.post([&] {
    uv_timer_init(loop.uv(), &timer);
    uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<std::atomic<bool>*>(t->data)->store(true); }, 1, 0);
    for (int i = 0; i < 4; ++i) loop.post(flood);
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!timer_fired && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(timer_fired);
  flood_on = false;
  loop.post([&] { uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr); });
  loop.stop();
  loop.join();
}
