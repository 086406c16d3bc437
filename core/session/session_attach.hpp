// session_attach (ABI 1.2): a resuming stream joins a detached session,
// whichever loop each is on. See session_attach.cpp for the design.
#pragma once

#include "core/session/session_table.hpp"
#include "parley/module.h"

namespace parley {

// On the loop of `stream`. 1: under way, `done` runs once (through the
// module's gate); 0: refused now, `done` never runs.
int start_session_attach(parley_module* m, SessionId detached, SessionId stream, parley_attach_fn done, void* arg);

}  // namespace parley
