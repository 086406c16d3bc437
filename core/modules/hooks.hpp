// Running module hooks on the stanza path.
#pragma once

#include <string_view>

#include "core/addr/jid.hpp"
#include "core/modules/module_tables.hpp"
#include "core/session/session_table.hpp"
#include "parley/module.h"

namespace parley {

struct LoopContext;
class ModulePause;
class Session;

// Runs the hooks of `event` for `host` in priority order until one returns
// STOP, HANDLED or ERROR, and returns that (PASS if none did). A failing
// module is logged by name; the caller answers the stanza it was handling
// with internal-server-error.
// `pause`: while a reload is under way, the instances it swaps are skipped
// (a fold run from a completion must not enter the code being saved).
parley_result run_hooks(const ModuleTables& tables, parley_event event, std::string_view host,
                        parley_event_args& args, const ModulePause* pause = nullptr);
// The same over `hooks` from position `from` on (the outgoing filters go on
// after a module's own: session_send_after).
// `session`: the session the outgoing filters run for; a per-session hook
// (HookEntry::per_session) runs only if that session turned it on (none
// without a session).
parley_result run_hooks_from(const std::vector<HookEntry>& hooks, size_t from, parley_event event,
                             std::string_view host, parley_event_args& args, const ModulePause* pause = nullptr,
                             const Session* session = nullptr);
// The position after the last hook of `instance` in `hooks` (0 if it has none).
size_t hook_position_after(const std::vector<HookEntry>& hooks, const parley_module* instance);

// A session event (SESSION_OPENED, _BOUND, _CLOSED, _DETACHED, _REATTACHED)
// of `session`, for the hooks of `host`, on its loop. While modules are
// swapped (hot reload) it waits with a copy of its arguments and runs against
// the new code: a session that closes during a reload still reaches the new
// code's hooks.
void run_session_event(LoopContext& loop, parley_event event, SessionId session, std::string_view host,
                       const Jid& jid);

inline parley_str to_pstr(std::string_view s) { return parley_str{s.data(), s.size()}; }
inline std::string_view from_pstr(parley_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

}  // namespace parley
