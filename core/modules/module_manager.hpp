// Loads modules from module_paths, starts them for each host, and swaps them
// at run time (load, unload, hot reload) without dropping a connection.
//
// Runs on the main loop. Every change builds a new ModuleTables snapshot and
// posts it to each worker loop; a reload first pauses every module entry
// point on every loop (module_pause.hpp), waits for the old instance's
// completions, and only then saves its state and swaps the code
// (module_reload.cpp).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/slot_carry.hpp"
#include "core/modules/module_tables.hpp"
#include "parley/result.hpp"
#include "storage/postgres_module_sql.hpp"

namespace parley {

class ServerContext;
class WorkerLoop;

class ModuleManager {
 public:
  using Done = std::function<void(bool ok, std::string message)>;

  ModuleManager(ServerContext& ctx, const config::Config& config, WorkerLoop& main);
  ~ModuleManager();

  // At start, before the loops run: every module of the config, dependencies
  // first. The first failure refuses the start, naming module and reason.
  Result<void, std::string> load_configured();

  // parleyctl module ... (main loop thread).
  std::string list() const;
  // "module.host.counter: value" lines of every module counter (parleyctl status).
  std::string counters_text() const;
  void load(const std::string& name, Done done);
  void unload(const std::string& name, Done done);
  void reload(const std::string& name, Done done);

  // At shutdown, after the loops stopped.
  void stop_all();

  // Whether a loaded module instance serves `domain` (ABI 1.2 register_route).
  bool serves_route(std::string_view domain) const;
  // Tasks modules posted to a loop and iqs they wait on, not settled yet (any
  // module, any loop). On the main thread.
  size_t tasks_in_flight() const;
  // Storage, account and archive operations of every instance whose completion has not run.
  size_t storage_in_flight() const;

  // Directories searched for NAME.so, in order.
  std::vector<std::string> search_path() const;
  const std::string& data_dir() const { return config_.data_dir; }
  // Modules' own SQL on PostgreSQL (ABI 1.7; host_api_module_sql.cpp): NULL unless the
  // server runs that backend. Its queue's length for parleyctl status (0 without it).
  storage::PostgresModuleSql* module_sql() const { return module_sql_.get(); }
  size_t module_sql_queue() const;

 private:
  using HostOptions = std::map<std::string, YAML::Node>;  // host -> options, for the hosts it runs on

  struct Loaded {
    std::shared_ptr<ModuleLibrary> library;
    HostOptions options;
    std::vector<std::unique_ptr<parley_module>> instances;  // one per host
  };

  // Where the config enables `name` and with which options (modules, then
  // host_config); `or_everywhere`: a module the config does not name runs on
  // every host without options (parleyctl module load).
  HostOptions plan(const std::string& name, bool or_everywhere) const;

  Result<std::shared_ptr<ModuleLibrary>, std::string> open_library(const std::string& name);
  Result<void, std::string> validate_options(const ModuleLibrary& lib, const YAML::Node& options) const;
  Result<void, std::string> validate_options(const ModuleLibrary& lib, const HostOptions& options) const;
  Result<std::vector<std::unique_ptr<parley_module>>, std::string> start_instances(
      const std::shared_ptr<ModuleLibrary>& lib, const HostOptions& options);
  void stop_instances(std::vector<std::unique_ptr<parley_module>>& instances);
  bool has_pending_timers(const Loaded& loaded) const;  // or storage calls
  // Runs the module's schema steps on the backend its tables go to, which it returns.
  Result<uint32_t, std::string> apply_schema(const ModuleLibrary& lib);
  std::shared_ptr<const ModuleTables> build_tables() const;
  // Hands `tables` to every worker loop; `resume` also ends a pause. `done`
  // runs on the main loop once every loop has it.
  void install_tables(std::shared_ptr<const ModuleTables> tables, bool resume, std::function<void()> done);
  // Every loop holds back module entry events (`frozen`: the instances swapped).
  void pause_loops(std::vector<const parley_module*> frozen, std::function<void()> done);
  // Reload, once the loops are paused (module_reload.cpp).
  struct Reload;
  void drain_then_swap(std::shared_ptr<Reload> reload);
  void swap(std::shared_ptr<Reload> reload);       // session slots saved first (ABI 1.2)
  void swap_code(std::shared_ptr<Reload> reload);  // save_state, the new code, slots restored
  void retire(std::shared_ptr<Reload> reload, std::shared_ptr<Loaded> retired);
  void drop_tracked_sends(const std::vector<parley_module*>& instances, std::function<void()> done);
  void after(uint64_t ms, std::function<void()> fn);  // on the main loop
  void drop_session_data(std::vector<parley_module*> instances, std::function<void()> done);
  void on_all_loops(std::function<void(struct LoopContext&)> task, std::function<void()> done);
  // Runs `done` once no storage call of these (stopped) instances is in flight.
  void when_storage_drained(std::shared_ptr<Loaded> stopped, std::function<void()> done);

  ServerContext& ctx_;
  const config::Config& config_;
  std::unique_ptr<storage::PostgresModuleSql> module_sql_;  // connects at the first module on it
  WorkerLoop& main_;
  std::map<std::string, Loaded> modules_;
  std::vector<std::string> order_;  // load order, for tables and stop
  uint64_t copy_serial_ = 0;
  bool busy_ = false;  // one change at a time
  // The module whose new code is starting in a reload: its old instances'
  // routes are about to go, so the new ones may register the same domains.
  const Loaded* replacing_ = nullptr;
};

const parley_host_api* host_api();
// After the loops stopped (shutdown): frees the module timers they closed.
void release_stopped_timers(parley_module& instance);

}  // namespace parley
