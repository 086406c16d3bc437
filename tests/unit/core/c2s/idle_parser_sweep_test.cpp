// The loop's sweep of idle parsers: it visits what was watched once per
// period, keeps what the visit keeps, forgets the rest, and its timer stops
// when nothing is left (an idle loop is not woken for nothing).
#include <doctest/doctest.h>
#include <uv.h>

#include <map>
#include <vector>

#include "core/c2s/idle_parser_sweep.hpp"

namespace {

struct Script {
  std::map<parley::SessionId, int> keep_for;  // visits answered "keep" before "forget"
  std::vector<parley::SessionId> visits;
};

bool visit(void* context, parley::SessionId id) {
  auto* s = static_cast<Script*>(context);
  s->visits.push_back(id);
  return s->keep_for[id]-- > 0;
}

// Runs the loop for about `ms` (a ref'd timer keeps it alive; the sweep's own
// timer does not).
void run_for(uv_loop_t* loop, uint64_t ms) {
  uv_timer_t stop;
  uv_timer_init(loop, &stop);
  uv_timer_start(&stop, [](uv_timer_t* t) { uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr); }, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
}

}  // namespace

TEST_CASE("the idle parser sweep visits each watched session once a period until it is let go") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Script script;
  script.keep_for = {{1, 0}, {2, 2}, {3, 1}};
  {
    parley::IdleParserSweep sweep;
    sweep.init(&loop, 10, &visit, &script);
    CHECK(sweep.ready());
    sweep.watch(1);
    sweep.watch(2);
    sweep.watch(3);
    CHECK(sweep.watched() == 3);
    run_for(&loop, 200);
    // 1 once (let go), 3 twice, 2 three times; then nothing is watched and
    // the timer has stopped: no more visits however long the loop runs.
    std::map<parley::SessionId, int> count;
    for (auto id : script.visits) ++count[id];
    CHECK(count[1] == 1);
    CHECK(count[2] == 3);
    CHECK(count[3] == 2);
    CHECK(sweep.watched() == 0);
    const size_t before = script.visits.size();
    run_for(&loop, 50);
    CHECK(script.visits.size() == before);
    // Watched again later: the timer starts again.
    script.keep_for[1] = 0;
    sweep.watch(1);
    run_for(&loop, 60);
    CHECK(script.visits.size() == before + 1);
    // As a worker loop stops: every handle closed by the loop (the sweep's timer too).
    uv_walk(&loop, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}
