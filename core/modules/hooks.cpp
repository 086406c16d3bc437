#include "core/modules/hooks.hpp"

#include <spdlog/spdlog.h>

#include "core/modules/module_instance.hpp"
#include "core/modules/module_pause.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"

namespace parley {

parley_result run_hooks(const ModuleTables& tables, parley_event event, std::string_view host,
                        parley_event_args& args, const ModulePause* pause) {
  const std::vector<HookEntry>* hooks = tables.hooks_for(event, host);
  if (hooks == nullptr) return PARLEY_PASS;
  return run_hooks_from(*hooks, 0, event, host, args, pause);
}

size_t hook_position_after(const std::vector<HookEntry>& hooks, const parley_module* instance) {
  size_t after = 0;
  for (size_t i = 0; i < hooks.size(); ++i)
    if (hooks[i].instance == instance) after = i + 1;
  return after;
}

parley_result run_hooks_from(const std::vector<HookEntry>& hooks, size_t from, parley_event event,
                             std::string_view host, parley_event_args& args, const ModulePause* pause,
                             const Session* session) {
  args.size = sizeof(parley_event_args);
  args.event = event;
  for (size_t i = from; i < hooks.size(); ++i) {
    const HookEntry& hook = hooks[i];
    if (pause != nullptr && pause->frozen(hook.instance)) continue;
    if (hook.per_session && (session == nullptr || !session->filter_out_on(hook.instance))) continue;
    int result;
    try {
      result = hook.fn(hook.instance->state, &args);
    } catch (...) {
      // Only C crosses the boundary; a module that lets an exception escape
      // anyway is treated like one that failed.
      result = PARLEY_ERROR;
    }
    switch (result) {
      case PARLEY_PASS:
        continue;
      case PARLEY_STOP:
      case PARLEY_HANDLED:
        return static_cast<parley_result>(result);
      case PARLEY_ERROR:
        spdlog::error("module {} failed in hook {} for {}", hook.instance->library->name, static_cast<int>(event), host);
        return PARLEY_ERROR;
      default:
        spdlog::error("module {} returned an unknown result {} from hook {}", hook.instance->library->name,
                      result, static_cast<int>(event));
        return PARLEY_ERROR;
    }
  }
  return PARLEY_PASS;
}

void run_session_event(LoopContext& loop, parley_event event, SessionId session, std::string_view host,
                       const Jid& jid) {
  if (loop.module_pause.active()) {
    loop.module_pause.defer([&loop, event, session, host = std::string(host), jid] {
      run_session_event(loop, event, session, host, jid);
    });
    return;
  }
  const ModuleTables& tables = *loop.modules;
  if (tables.hooks_for(event, host) == nullptr) return;
  std::string full = jid.full();
  parley_event_args args{};
  args.session = session;
  args.user = to_pstr(jid.local());
  args.host = to_pstr(host);
  args.jid = to_pstr(full);
  run_hooks(tables, event, host, args);
}

}  // namespace parley
