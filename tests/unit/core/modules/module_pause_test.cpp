// What a loop holds back while modules are swapped (hot reload): events wait
// in order and run once, at the end of the pause, against the tables then in
// place; session events keep their own copy of their arguments; a fold skips
// the instances being swapped only while the pause lasts.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/module_pause.hpp"
#include "core/server/server_context.hpp"

using namespace parley;

namespace {

struct Seen {
  std::string name;
  std::vector<std::string>* log;
};

int recording_hook(void* state, const parley_event_args* args) {
  auto* seen = static_cast<Seen*>(state);
  seen->log->push_back(seen->name + ":" + std::to_string(args->event) + ":" + std::to_string(args->session) + ":" +
                       std::string(args->jid.ptr, args->jid.len) + ":" + std::string(args->host.ptr, args->host.len));
  return PARLEY_PASS;
}

struct Instances {
  std::shared_ptr<ModuleLibrary> library = std::make_shared<ModuleLibrary>();
  std::vector<std::unique_ptr<parley_module>> all;
  std::vector<std::unique_ptr<Seen>> seen;
  std::vector<std::string> log;
  Instances() { library->name = "mod_probe"; }
  parley_module* add(ModuleTables& tables, parley_event event, std::string name) {
    seen.push_back(std::make_unique<Seen>(Seen{std::move(name), &log}));
    auto instance = std::make_unique<parley_module>();
    instance->library = library;
    instance->host = "h";
    instance->state = seen.back().get();
    tables.hooks[event]["h"].push_back(HookEntry{50, instance.get(), &recording_hook});
    all.push_back(std::move(instance));
    return all.back().get();
  }
};

}  // namespace

TEST_CASE("without a pause, run_or_defer runs at once") {
  ModulePause pause;
  int ran = 0;
  run_or_defer(pause, [&] { ++ran; });
  CHECK(ran == 1);
  CHECK(pause.waiting() == 0);
  pause.end();  // not paused: nothing happens
  CHECK(ran == 1);
}

TEST_CASE("during a pause, events wait and run once, in order, at its end") {
  ModulePause pause;
  std::vector<int> order;
  pause.begin({});
  CHECK(pause.active());
  for (int i = 0; i < 5; ++i) run_or_defer(pause, [&order, i] { order.push_back(i); });
  CHECK(order.empty());
  CHECK(pause.waiting() == 5);
  pause.end();
  CHECK_FALSE(pause.active());
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(pause.waiting() == 0);
  pause.end();
  CHECK(order.size() == 5);  // never twice
}

TEST_CASE("an event raised by a replayed one runs at once: the pause is over") {
  ModulePause pause;
  std::vector<std::string> order;
  pause.begin({});
  run_or_defer(pause, [&] {
    order.push_back("first");
    run_or_defer(pause, [&] { order.push_back("raised by first"); });
  });
  run_or_defer(pause, [&] { order.push_back("second"); });
  pause.end();
  CHECK(order == std::vector<std::string>{"first", "raised by first", "second"});
}

TEST_CASE("a pause can begin again after it ended") {
  ModulePause pause;
  int ran = 0;
  pause.begin({});
  pause.defer([&] { ++ran; });
  pause.end();
  pause.begin({});
  pause.defer([&] { ++ran; });
  CHECK(ran == 1);
  pause.end();
  CHECK(ran == 2);
}

TEST_CASE("instances are frozen only while the pause lasts, and a fold skips them then") {
  ModuleTables tables;
  Instances m;
  parley_module* swapped = m.add(tables, PARLEY_EVENT_DISCO_INFO, "swapped");
  m.add(tables, PARLEY_EVENT_DISCO_INFO, "other");
  ModulePause pause;
  parley_event_args args{};
  CHECK_FALSE(pause.frozen(swapped));
  run_hooks(tables, PARLEY_EVENT_DISCO_INFO, "h", args, &pause);
  CHECK(m.log.size() == 2);

  m.log.clear();
  pause.begin({swapped});
  CHECK(pause.frozen(swapped));
  run_hooks(tables, PARLEY_EVENT_DISCO_INFO, "h", args, &pause);
  REQUIRE(m.log.size() == 1);
  CHECK(m.log[0].rfind("other:", 0) == 0);
  run_hooks(tables, PARLEY_EVENT_DISCO_INFO, "h", args);  // no pause given: every hook (not a fold)
  CHECK(m.log.size() == 3);

  pause.end();
  CHECK_FALSE(pause.frozen(swapped));
  m.log.clear();
  run_hooks(tables, PARLEY_EVENT_DISCO_INFO, "h", args, &pause);
  CHECK(m.log.size() == 2);
}

TEST_CASE("a session event during a pause runs at its end, with its own arguments, on the new tables") {
  LoopContext loop(0);
  auto old_tables = std::make_shared<ModuleTables>();
  auto new_tables = std::make_shared<ModuleTables>();
  Instances m;
  m.add(*old_tables, PARLEY_EVENT_SESSION_CLOSED, "old");
  m.add(*new_tables, PARLEY_EVENT_SESSION_CLOSED, "new");
  loop.modules = old_tables;

  run_session_event(loop, PARLEY_EVENT_SESSION_CLOSED, 7, "h", *Jid::parse("a@h/r1"));
  CHECK(m.log == std::vector<std::string>{"old:8:7:a@h/r1:h"});

  m.log.clear();
  loop.module_pause.begin({});
  {
    // The session and its strings may be gone by the end of the pause.
    std::string host = "h";
    Jid jid = *Jid::parse("b@h/r2");
    run_session_event(loop, PARLEY_EVENT_SESSION_CLOSED, 9, host, jid);
    host.assign("garbage");
    jid = *Jid::parse("x@y/z");
  }
  CHECK(m.log.empty());
  loop.modules = new_tables;  // what a reload installs before it ends the pause
  loop.module_pause.end();
  CHECK(m.log == std::vector<std::string>{"new:8:9:b@h/r2:h"});
}
