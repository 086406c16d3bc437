#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <future>
#include <thread>
#include <vector>

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

TEST_CASE("worker loop: a flood from two producers runs whole, in order per producer, in bounded turns") {
  constexpr int kPerProducer = 20000;
  constexpr int kTotal = 2 * kPerProducer;
  WorkerLoop loop(4);
  loop.start_thread();

  // Touched on the loop thread only, read by the test after the loop stopped.
  struct Turns {
    size_t this_turn = 0;  // tasks run since the last check callback (one per loop turn)
    size_t most = 0;       // the most tasks any one turn ran
    size_t turns = 0;
  } turns;
  int next[2] = {0, 0};  // the sequence number each producer's next task must have
  bool out_of_order = false;
  uv_check_t check{};
  uv_timer_t timer{};
  std::atomic<int> ran{0};
  struct TimerProbe {
    std::atomic<int>* ran;
    int fired_at = -1;  // tasks of the flood run when the timer fired
  } probe{&ran};

  std::atomic<bool> release{false};
  std::atomic<bool> blocked{false};
  loop.post([&] {
    // A check handle runs once per loop turn, after I/O: what ran since the
    // last one ran in a single turn's drain.
    uv_check_init(loop.uv(), &check);
    check.data = &turns;
    uv_check_start(&check, [](uv_check_t* h) {
      auto* t = static_cast<Turns*>(h->data);
      t->most = std::max(t->most, t->this_turn);
      t->this_turn = 0;
      ++t->turns;
    });
    blocked = true;
    while (!release.load()) std::this_thread::yield();
    // Due at once: it fires on the next turn, which a bounded drain reaches
    // while most of the flood still waits. An unbounded drain would run the
    // whole flood in this turn first.
    uv_timer_init(loop.uv(), &timer);
    timer.data = &probe;
    uv_timer_start(
        &timer,
        [](uv_timer_t* h) {
          auto* p = static_cast<TimerProbe*>(h->data);
          p->fired_at = p->ran->load();
        },
        0, 0);
    ++turns.this_turn;
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!blocked && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(blocked);

  // While the loop is busy the two producers fill its inbox: the first post
  // wakes it, no later one does.
  uint64_t wakeups_before = loop.wakeups();
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i)
        loop.post([&, p, i] {
          if (next[p] != i) out_of_order = true;
          next[p] = i + 1;
          ++turns.this_turn;
          ran.fetch_add(1);
        });
    });
  }
  for (auto& t : producers) t.join();
  CHECK(loop.wakeups() - wakeups_before <= 1);
  CHECK(loop.inbox_length() == static_cast<size_t>(kTotal));
  release = true;

  while (ran.load() < kTotal && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(ran.load() == kTotal);  // every task ran, none twice
  std::promise<void> closed;
  loop.post([&] {
    uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    closed.set_value();
  });
  closed.get_future().wait();
  loop.stop();
  loop.join();
  CHECK_FALSE(out_of_order);
  CHECK(next[0] == kPerProducer);
  CHECK(next[1] == kPerProducer);
  // No turn ran more than the bound; the flood took several turns.
  CHECK(turns.most <= WorkerLoop::max_tasks_per_turn);
  CHECK(turns.turns >= static_cast<size_t>(kTotal) / WorkerLoop::max_tasks_per_turn);
  // The timer fired while the flood was still being drained.
  CHECK(probe.fired_at >= 0);
  CHECK(probe.fired_at < kTotal);
}

namespace {
// A task in the poster's own node (Router's cross-loop delivery does this):
// the loop allocates nothing for it.
struct CountingTask : parley::LoopTask {
  std::atomic<int>* ran = nullptr;
  std::atomic<int>* dropped = nullptr;
  static void call(parley::LoopTask* t, bool run) {
    auto* self = static_cast<CountingTask*>(t);
    ++*(run ? self->ran : self->dropped);
  }
};
}  // namespace

TEST_CASE("worker loop: a task in the caller's node runs once, on the loop, and can be posted again") {
  WorkerLoop loop(3);
  loop.start_thread();
  std::atomic<int> ran{0}, dropped{0};
  CountingTask task;
  task.fn = &CountingTask::call;
  task.ran = &ran;
  task.dropped = &dropped;
  for (int round = 1; round <= 100; ++round) {
    loop.post_task(&task);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ran < round && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    REQUIRE(ran == round);  // run, so the node is free for the next post
  }
  loop.stop();
  loop.join();
  CHECK(dropped == 0);
}

TEST_CASE("worker loop: tasks still queued when the loop is destroyed give back what they hold") {
  std::atomic<int> ran{0}, dropped{0};
  CountingTask task;
  task.fn = &CountingTask::call;
  task.ran = &ran;
  task.dropped = &dropped;
  auto owned = std::make_shared<int>(7);
  std::weak_ptr<int> watch = owned;
  {
    WorkerLoop loop(4);  // never run: its inbox is only dropped
    loop.post_task(&task);
    loop.post([owned = std::move(owned)] { (void)owned; });
  }
  CHECK(ran == 0);
  CHECK(dropped == 1);
  CHECK(watch.expired());  // the callable's captures were released (ASan: nothing leaked)
}
