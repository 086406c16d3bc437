#include "core/modules/slot_carry.hpp"

#include <spdlog/spdlog.h>

#include "core/modules/module_instance.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"

namespace parley {

namespace {
void append(void* ctx, const char* data, size_t len) { static_cast<std::string*>(ctx)->append(data, len); }
}  // namespace

SavedSlots save_session_slots(LoopContext& loop, const std::vector<parley_module*>& instances,
                              int (*save)(void*, parley_session_id, void*, parley_sink), const std::string& name) {
  SavedSlots saved;
  if (save == nullptr) return saved;
  for (auto& [id, session] : loop.sessions) {
    for (size_t i = 0; i < instances.size(); ++i) {
      parley_module* instance = instances[i];
      void* data = session->module_data(instance);
      if (data == nullptr) continue;
      std::string bytes;
      parley_sink sink{&bytes, &append};
      int failed;
      try {
        failed = save(instance->state, id, data, sink);
      } catch (...) {
        failed = -1;
      }
      if (failed != 0)
        spdlog::warn("module {}: save_session_data failed for session {}; its slot is lost", name, id);
      else
        saved.push_back(SavedSlot{id, i, std::move(bytes)});
      session->drop_module_data(instance);  // the old code frees what it set
    }
  }
  return saved;
}

void restore_session_slots(LoopContext& loop, SavedSlots saved, const std::vector<parley_module*>& instances,
                           int (*restore)(void*, parley_session_id, parley_str), const std::string& name) {
  if (restore == nullptr) return;
  for (SavedSlot& slot : saved) {
    if (slot.instance >= instances.size() || loop.find(slot.session) == nullptr) continue;
    parley_module* instance = instances[slot.instance];
    int failed;
    try {
      failed = restore(instance->state, slot.session, parley_str{slot.bytes.data(), slot.bytes.size()});
    } catch (...) {
      failed = -1;
    }
    if (failed != 0)
      spdlog::warn("module {}: restore_session_data failed for session {}; its slot is lost", name, slot.session);
  }
}

}  // namespace parley
