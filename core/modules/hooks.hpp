// Running module hooks on the stanza path.
#pragma once

#include <string_view>

#include "core/modules/module_tables.hpp"
#include "parley/module.h"

namespace parley {

struct LoopContext;

// Runs the hooks of `event` for `host` in priority order until one returns
// STOP, HANDLED or ERROR, and returns that (PASS if none did). A failing
// module is logged by name; the caller answers the stanza it was handling
// with internal-server-error.
parley_result run_hooks(const ModuleTables& tables, parley_event event, std::string_view host,
                        parley_event_args& args);
// The same over `hooks` from position `from` on (the outgoing filters go on
// after a module's own: session_send_after).
parley_result run_hooks_from(const std::vector<HookEntry>& hooks, size_t from, parley_event event,
                             std::string_view host, parley_event_args& args);
// The position after the last hook of `instance` in `hooks` (0 if it has none).
size_t hook_position_after(const std::vector<HookEntry>& hooks, const parley_module* instance);

inline parley_str to_pstr(std::string_view s) { return parley_str{s.data(), s.size()}; }
inline std::string_view from_pstr(parley_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

}  // namespace parley
