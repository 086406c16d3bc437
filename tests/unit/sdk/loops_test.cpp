// The SDK's pending callbacks on several worker loops at once (parley/sdk/
// pending.hpp), against the fake host with one thread per loop (its lanes):
// registered and completed on each loop's own thread, every one exactly once
// and without the fallback's lock; cancel_timer from another loop; what still
// goes through the fallback (and takes its lock); a completion on the wrong
// loop; and a scan of the SDK's headers that fails if a lock appears outside
// the fallback. Run under TSan (PARLEY_TSAN=ON) to check the "no shared
// mutable state" half: a race between the loops' tables would be reported.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "fake_host.hpp"
#include "parley/module.hpp"

using namespace std::chrono_literals;

namespace {

uint64_t fallback_locks() { return parley::detail::Shared::get().locks_taken(); }

// Both threads start together, so that their registrations and completions
// really overlap (spinning on an atomic: no lock that TSan would take for an
// ordering of the SDK's own accesses, beyond the start).
struct StartLine {
  std::atomic<int> ready{0};
  void arrive_and_wait(int parties) {
    ready.fetch_add(1);
    while (ready.load() < parties) std::this_thread::yield();
  }
};

}  // namespace

TEST_CASE("two loops at once: every callback registered and completed on its loop runs exactly once, "
          "and none takes the fallback's lock") {
  parley_module m;
  m.sessions = {7};
  m.use_lanes(2);
  parley::Host host(&m, fake::api());
  constexpr int rounds = 300;
  constexpr int batch = 6;
  constexpr int per_round = batch * 4;
  // runs[loop][i]: how often callback i of that loop ran; each only written by its loop's thread.
  std::vector<std::vector<int>> runs(2, std::vector<int>(rounds * per_round, 0));
  std::vector<int> refused(2, 0), cancel_failed(2, 0);
  StartLine start;
  std::atomic<bool> done{false};
  uint64_t locks_before = fallback_locks();

  auto loop_thread = [&](int loop) {
    fake::ThreadLoop on(loop);
    FakeLane& lane = m.lanes[static_cast<size_t>(loop)];
    std::vector<int>& mine = runs[static_cast<size_t>(loop)];
    start.arrive_and_wait(2);
    int n = 0;
    for (int r = 0; r < rounds; ++r) {
      size_t q0 = lane.queries.size(), s0 = lane.tracked.size();
      std::vector<uint64_t> once, repeating;
      for (int b = 0; b < batch; ++b) {
        int i = n++;
        host.query("SELECT 1", {}, [&mine, i](parley::Result<parley::Rows, std::string>) { ++mine[i]; });
        int j = n++;
        if (!host.send_tracked(7, host.element("message"), [&mine, j](bool) { ++mine[j]; })) ++refused[loop];
        int k = n++;
        once.push_back(host.start_timer(1ms, [&mine, k] { ++mine[k]; }));
        int x = n++;
        // Runs once, cancelling itself from inside its callback.
        repeating.push_back(host.start_repeating_timer(1ms, 1ms, [&host, &mine, &cancel_failed, loop, x](uint64_t self) {
          ++mine[x];
          if (!host.cancel_timer(self)) ++cancel_failed[loop];
        }));
      }
      // Complete in another order than registered, each twice: the second finds nothing.
      for (size_t q = lane.queries.size(); q-- > q0;) lane.complete(nullptr, q, parley_rows{});
      for (size_t s = s0; s < lane.tracked.size(); ++s) lane.sent_done(nullptr, s, s % 2 == 0);
      for (size_t q = q0; q < lane.queries.size(); ++q) lane.complete(nullptr, q, parley_rows{});
      for (size_t s = s0; s < lane.tracked.size(); ++s) lane.sent_done(nullptr, s, true);
      for (uint64_t id : repeating) {
        lane.fire(nullptr, id);
        lane.fire(nullptr, id);  // the host forgot it: nothing
      }
      for (auto it = once.rbegin(); it != once.rend(); ++it) lane.fire(nullptr, *it);
    }
  };
  std::thread a(loop_thread, 0);
  std::thread b(loop_thread, 1);
  // Meanwhile another thread reads the counts (relaxed, never locked).
  std::thread reader([&] {
    start.arrive_and_wait(3);
    std::size_t seen = 0;
    while (!done.load()) seen += host.pending_sends() + host.pending_storage_calls() + host.pending_timers();
    (void)seen;
  });
  a.join();
  b.join();
  done = true;
  reader.join();

  for (int loop = 0; loop < 2; ++loop) {
    CAPTURE(loop);
    CHECK(refused[loop] == 0);
    CHECK(cancel_failed[loop] == 0);
    int wrong = 0;
    for (int r : runs[loop]) wrong += r != 1;
    CHECK(wrong == 0);  // each exactly once
  }
  CHECK(fallback_locks() == locks_before);  // the loop path never took the lock
  CHECK(host.pending_sends() == 0);
  CHECK(host.pending_storage_calls() == 0);
  CHECK(host.pending_timers() == 0);
  CHECK(m.lanes[0].timers.empty());
  CHECK(m.lanes[1].timers.empty());
}

TEST_CASE("cancel_timer from another loop: true, the timer never runs again, and its loop frees it") {
  parley_module m;
  m.use_lanes(2);
  parley::Host host(&m, fake::api());
  std::atomic<bool> cancel_returned{false};
  int runs = 0, runs_after_cancel = 0;  // written by loop 0 only
  uint64_t id = 0;
  uint64_t locks_before = fallback_locks();
  {
    fake::ThreadLoop on(0);
    id = host.start_repeating_timer(1ms, 1ms, [&] { ++runs; });
    m.lanes[0].fire(nullptr, id);
  }
  CHECK(runs == 1);

  // Loop 0 keeps firing (as parleyd would until the posted cancel arrives)
  // while loop 1 cancels. Once loop 0 has seen cancel_timer return, no firing
  // of it may run the function.
  std::thread loop0([&] {
    fake::ThreadLoop on(0);
    for (int after_cancel = 0; after_cancel < 100;) {
      bool after = cancel_returned.load(std::memory_order_acquire);
      int before = runs;
      m.lanes[0].fire(nullptr, id);
      if (after) {
        ++after_cancel;
        if (runs != before) ++runs_after_cancel;
      }
    }
  });
  bool cancelled = false;
  std::thread loop1([&] {
    fake::ThreadLoop on(1);
    std::this_thread::sleep_for(1ms);
    cancelled = host.cancel_timer(id);
    cancel_returned.store(true, std::memory_order_release);
  });
  loop0.join();
  loop1.join();
  CHECK(cancelled);
  CHECK(runs_after_cancel == 0);
  CHECK(m.lanes[1].cancelled == std::vector<uint64_t>{id});  // loop 1 asked the host
  CHECK(host.pending_timers() == 0);  // loop 0 dropped it when it fired next
  CHECK(fallback_locks() == locks_before);

  // Cancelled from another loop and not fired since: still counted until
  // its loop next enters the SDK for this Host (here: a storage call).
  uint64_t quiet = 0;
  {
    fake::ThreadLoop on(0);
    quiet = host.start_timer(1s, [] { FAIL("cancelled"); });
  }
  std::thread([&] {
    fake::ThreadLoop on(1);
    cancelled = host.cancel_timer(quiet);
  }).join();
  CHECK(cancelled);
  CHECK(host.pending_timers() == 1);
  {
    fake::ThreadLoop on(0);
    host.query("SELECT 1", {}, [](auto) {});
    CHECK(host.pending_timers() == 0);
    m.lanes[0].fire(nullptr, quiet);  // a firing the host had queued: dropped
  }
  // A timer that exists nowhere: false, and the host is not asked.
  std::thread([&] {
    fake::ThreadLoop on(1);
    cancelled = host.cancel_timer(quiet);
  }).join();
  CHECK_FALSE(cancelled);
  CHECK(m.lanes[1].cancelled.size() == 2);
}

TEST_CASE("what the fallback keeps: an attach completed on another loop, calls off the loops, an older host") {
  parley_module m;
  m.sessions = {5, 6, 7};
  m.states = {{5, PARLEY_SESSION_UNBOUND}, {7, PARLEY_SESSION_DETACHED}};
  m.use_lanes(2);
  parley::Host host(&m, fake::api());
  uint64_t locks = fallback_locks();

  // session_attach: asked on loop 0, completed on loop 1 (the session's).
  int attached = 0;
  {
    fake::ThreadLoop on(0);
    CHECK(host.session_attach(7, 5, [&](parley_session_id s, bool ok) { attached += s == 7 && ok; }));
  }
  CHECK(fallback_locks() > locks);
  CHECK(host.pending_attaches() == 1);
  std::thread([&] {
    fake::ThreadLoop on(1);
    m.attach_done(0, true);
    m.attach_done(0, true);  // once only
  }).join();
  CHECK(attached == 1);
  CHECK(host.pending_attaches() == 0);

  // Off the worker loops (start(), stop()): a timer and a storage call; the
  // host completes them on a loop.
  int fired = 0, rows = 0;
  uint64_t timer = 0;
  {
    fake::ThreadLoop off(-1);
    locks = fallback_locks();
    timer = host.start_repeating_timer(1ms, 5ms, [&] { ++fired; });
    host.query("SELECT 1", {}, [&](auto) { ++rows; });
    CHECK(fallback_locks() > locks);
  }
  CHECK(host.pending_timers() == 1);
  CHECK(host.pending_storage_calls() == 1);
  bool cancelled = false;
  std::thread([&] {
    fake::ThreadLoop on(0);
    m.fire(timer);
    m.complete(0, parley_rows{});
    m.complete(0, parley_rows{});
    cancelled = host.cancel_timer(timer);  // from a loop, a timer in the fallback
    m.fire(timer);
  }).join();
  CHECK(cancelled);
  CHECK(fired == 1);
  CHECK(rows == 1);
  CHECK(host.pending_timers() == 0);
  CHECK(host.pending_storage_calls() == 0);

  // A 1.1 host has no current_loop: every callback in the fallback, as before.
  parley_module old;
  parley_host_api older = fake::api_with_size(PARLEY_HOST_ENTRY_END(offer_stream_features));
  parley::Host old_host(&old, &older);
  locks = fallback_locks();
  int ran = 0;
  uint64_t t = old_host.start_timer(1ms, [&] { ++ran; });
  old.fire(t);
  CHECK(ran == 1);
  CHECK(fallback_locks() > locks);
}

TEST_CASE("a completion on another loop than the one that registered it is dropped and logged, not raced") {
  parley_module m;
  m.loops = 2;
  m.loop = 0;
  parley::Host host(&m, fake::api());
  int rows = 0;
  host.query("SELECT 1", {}, [&](auto) { ++rows; });
  m.loop = 1;  // the host broke module.h: storage completes on the calling loop
  m.complete(0, parley_rows{});
  CHECK(rows == 0);
  CHECK(m.logged("a completion for loop 0 ran on loop 1: dropped"));
  m.loop = 0;
  m.complete(0, parley_rows{});  // still there for the right loop
  CHECK(rows == 1);
  CHECK(host.pending_storage_calls() == 0);
}

TEST_CASE("a forgotten callback's key finds nothing, though its slot is used again") {
  parley_module m;
  m.sessions = {7};
  parley::Host host(&m, fake::api());
  int first = 0, second = 0;
  CHECK(host.send_tracked(7, host.element("message"), [&](bool) { ++first; }));
  host.forget_all();
  CHECK(host.send_tracked(7, host.element("message"), [&](bool) { ++second; }));
  m.sent_done(0, true);  // the forgotten one's key: same slot, older generation
  CHECK(first == 0);
  CHECK(second == 0);
  m.sent_done(1, true);
  CHECK(second == 1);
}

TEST_CASE("a Host without a ticket (too many alive in one .so) keeps everything in the fallback") {
  parley_module m;
  m.sessions = {7};
  std::vector<std::unique_ptr<parley::Host>> hosts;
  for (uint32_t i = 0; i < parley::detail::max_tickets; ++i)
    hosts.push_back(std::make_unique<parley::Host>(&m, fake::api()));
  parley::Host last(&m, fake::api());
  uint64_t locks = fallback_locks();
  int done = 0;
  CHECK(last.send_tracked(7, last.element("message"), [&](bool) { ++done; }));
  CHECK(fallback_locks() > locks);
  CHECK(last.pending_sends() == 1);
  m.sent_done(0, true);
  CHECK(done == 1);
  hosts.clear();  // their tickets come back
  parley::Host next(&m, fake::api());
  locks = fallback_locks();
  CHECK(next.send_tracked(7, next.element("message"), [&](bool) { ++done; }));
  CHECK(fallback_locks() == locks);
  m.sent_done(1, true);
  CHECK(done == 2);
}

// How a regression would be caught: a lock added on the loop path through the
// fallback shows in the counts above; one added anywhere else in the SDK (a
// new mutex, lock_guard, ...) fails this scan. The fallback's sections are
// marked in pending.hpp; a lock outside them is a design change to argue for.
TEST_CASE("the SDK's headers lock nowhere but in the fallback's marked sections") {
  const std::regex lock_words(R"(mutex|lock_guard|unique_lock|scoped_lock|shared_lock|condition_variable|\block\s*\()");
  int files = 0, inside_lines = 0;
  std::vector<std::string> outside;
  for (const auto& entry : std::filesystem::directory_iterator(PARLEY_SDK_HEADERS)) {
    if (entry.path().extension() != ".hpp") continue;
    ++files;
    std::ifstream in(entry.path());
    std::string line;
    bool inside = false;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      if (line.find("---- the fallback") != std::string::npos) inside = true;
      if (line.find("---- end of the fallback section") != std::string::npos) inside = false;
      std::string code = line.substr(0, line.find("//"));
      if (!std::regex_search(code, lock_words)) continue;
      if (inside) ++inside_lines;
      else outside.push_back(entry.path().filename().string() + ":" + std::to_string(number) + ": " + line);
    }
  }
  CHECK(files >= 9);
  CHECK(inside_lines > 0);  // the scan does see the fallback's lock
  for (const auto& where : outside) FAIL_CHECK("a lock outside the fallback: " << where);
  CHECK(outside.empty());
}
