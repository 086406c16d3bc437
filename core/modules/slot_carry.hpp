// Session slots across a hot reload (ABI 1.2 save_session_data /
// restore_session_data): each loop writes the old code's slots to bytes and
// frees them while the module's entry points are paused, before save_state;
// after restore_state the new code gets the bytes back on the same loop,
// before it sees any event there.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/session/session_table.hpp"
#include "parley/module.h"

namespace parley {

struct LoopContext;

// What one loop saved: the session, the index of the instance (old and new
// instances of a module are in the same host order), the bytes.
struct SavedSlot {
  SessionId session;
  size_t instance;
  std::string bytes;
};
using SavedSlots = std::vector<SavedSlot>;

// On `loop`: the slots of `instances` saved with `save` (an instance's slot
// whose save fails is logged and lost) and freed. Slots of modules without
// save_session_data are left alone (freed later, as in 1.1).
SavedSlots save_session_slots(LoopContext& loop, const std::vector<parley_module*>& instances,
                              int (*save)(void*, parley_session_id, void*, parley_sink), const std::string& name);
// On the same loop: each saved slot handed to the new instance's
// restore_session_data, for the sessions still there.
void restore_session_slots(LoopContext& loop, SavedSlots saved, const std::vector<parley_module*>& instances,
                           int (*restore)(void*, parley_session_id, parley_str), const std::string& name);

}  // namespace parley
