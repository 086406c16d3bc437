// The running server: loads what the config names, starts the worker loops,
// the control socket and signal handling, and shuts it all down in order.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "core/config/config.hpp"
#include "core/loop/worker_loop.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "storage/account_store.hpp"
#include "storage/sqlite_archive_store.hpp"
#include "storage/keyval_store.hpp"
#include "parley/result.hpp"

namespace parley {

namespace control {
class ControlServer;
}
class ModuleManager;

class Server {
 public:
  explicit Server(config::Config config);
  ~Server();

  // Prepares everything (certificates, storage, listeners); nothing runs yet.
  Result<void, std::string> start();
  // Runs until SIGTERM/SIGINT (or request_stop), then shuts down gracefully.
  void run();
  // Any thread.
  void request_stop();

 private:
  // The account store for storage.type (issue 11); sets ctx_->accounts.
  Result<void, std::string> start_account_store();
  Result<void, std::string> start_keyval_store();
  static void on_signal(uv_signal_t* handle, int signum);
  Result<void, std::string> prepare_tls();
  void register_control_commands();
  void reload();
  void reload_certificates_and_log_level();  // issue 17: SIGHUP's fallback
  void shutdown();
  std::string status_text() const;
  void on_account_change(const std::vector<std::string>& argv);

  config::Config config_;
  std::unique_ptr<storage::StoragePool> storage_;
  // The archive store (issue 11): a file of its own beside the main database, or on
  // PostgreSQL (storage backend: postgresql).
  std::unique_ptr<storage::ArchiveStore> archive_;
  // Accounts and credentials (issue 11): on the main SQLite file's pool, or on PostgreSQL.
  std::unique_ptr<storage::AccountStore> accounts_;
  // The keyval store (issue 11): a SQLite file of its own, or on PostgreSQL.
  std::unique_ptr<storage::KeyvalStore> keyval_;
  std::unique_ptr<ServerContext> ctx_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<ModuleManager> modules_;
  // The main loop: control socket, signals. Stanzas never pass through it.
  std::unique_ptr<WorkerLoop> main_;
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  bool started_ = false;
  bool main_ran_ = false;
  uint64_t started_at_ms_ = 0;
};


}  // namespace parley
