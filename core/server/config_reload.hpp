// core/server/config_reload.hpp - parleyctl reload-config and SIGHUP (issue 17): re-read the
// configuration file and apply what may change while the server runs.
//
// Applied: the log level, the certificates (the same files re-read, or a changed
// certfiles list loaded), and modules added or removed (globally or for one host in
// host_config), loaded and unloaded as `parleyctl module load/unload` does. Refused, and
// named: everything else that differs (hosts, listen, workers, data_dir, storage,
// control_socket, module_paths, limits, and the options of a module that stays loaded:
// no shipped module re-reads its options while it runs). A refused reload applies
// nothing. Main loop only.
#pragma once

#include <functional>
#include <string>

#include "core/config/config.hpp"

namespace parley {

class ServerContext;
class ModuleManager;

// `config` is the running server's own (ModuleManager reads its modules from it).
// `done` runs once, on the main loop, with the report.
void reload_configuration(config::Config& config, ServerContext& ctx, ModuleManager& modules,
                          std::function<void(bool ok, std::string report)> done);

}  // namespace parley
