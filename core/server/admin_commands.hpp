// core/server/admin_commands.hpp - parleyctl's verbs about sessions and the running
// server (issue 17): kick, connected-users-info, user-sessions, stats, send-message,
// set-loglevel, and --json for connected-users and status.
//
// Sessions belong to their loops: every verb posts a task to each worker loop, which
// reads (or closes) only its own sessions and posts its part back to the main loop;
// the main loop merges the parts and replies. Nothing here reads another loop's tables.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/control/control_server.hpp"

namespace parley {

class ServerContext;
class WorkerLoop;

struct AdminCommandsDeps {
  ServerContext& ctx;
  WorkerLoop& main;  // the control socket's loop: replies are made here
  // When the server started (steady clock, ms; set once it has), for uptime.
  const uint64_t* started_at_ms;
};

// Registers the verbs on `control`. Everything named must outlive the control server.
void add_admin_commands(control::ControlServer& control, AdminCommandsDeps deps);

// Log levels spdlog knows, as the configuration names them.
bool valid_log_level(const std::string& level);

}  // namespace parley
