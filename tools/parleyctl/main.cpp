// parleyctl: administer Parley, like ejabberdctl.
//
// With a running parleyd (its control socket accepts a connection) every command goes to
// the server. Without one, the account commands work on the database file directly, with
// the same code the server runs (core/control/account_commands.hpp).
//
// Exit codes: 0 ok, 1 error, 2 usage, 3 parleyd is not running (status).
#include <chrono>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "control_client.hpp"
#include "top.hpp"
#include "pie_commands.hpp"
#include "core/config/config.hpp"
#include "core/control/account_commands.hpp"
#include "core/control/json_text.hpp"
#include "storage/database.hpp"
#include "storage/postgres_account_store.hpp"
#include "storage/schema.hpp"

namespace {

constexpr int kOk = 0, kError = 1, kUsage = 2, kNotRunning = 3;

std::string commands_text() {
  std::string text = "Commands:\n";
  for (const auto& spec : parley::control::account_command_specs()) {
    std::string line = std::string(spec.name) + " " + std::string(spec.arguments);
    text += "  " + line + std::string(line.size() < 32 ? 32 - line.size() : 1, ' ') + std::string(spec.help) + "\n";
  }
  text += "  status                          is parleyd running? uptime, sessions, queues\n";
  text += "  top [--once] [-n N] [-d SECS]   live view of the server's figures (tools/parleyctl/top.cpp)\n";
  // Verbs only a running parleyd answers (its `help` lists them all).
  text += "  stats                           registered and online users, sessions per host, uptime\n";
  text += "  connected-users                 the full JIDs of the sessions\n";
  text += "  connected-users-info            JID, IP, transport, TLS, connected since, idle, priority\n";
  text += "  user-sessions USER HOST         the sessions of one account, as connected-users-info\n";
  text += "  kick USER HOST [RESOURCE]       close the account's sessions with a stream error\n";
  text += "  send-message FROM TO BODY       a chat message from a local JID\n";
  text += "  set-loglevel LEVEL              trace debug info warn error critical off\n";
  text += "  reload-config                   re-read the configuration (see docs/operations.md)\n";
  text += "  module list|load|unload|reload  modules at run time\n";
  text += "  stop                            stop parleyd gracefully\n";
  text += "  export [--host H [--user U]] FILE  accounts and their data as XEP-0227 (docs/export_import.md)\n";
  text += "  import [--replace] FILE         accounts and their data from XEP-0227 (Prosody, ejabberd, Parley)\n";
  text += "  help                            list the commands (a running server lists all of its own)\n";
  text += "Read verbs (status, stats, connected-users, connected-users-info, user-sessions,\n"
          "list-users, module list) print JSON with --json (before or after the verb).\n";
  return text;
}

// The verbs that only read, which --json applies to.
bool is_read_verb(const std::vector<std::string>& args) {
  if (args.empty()) return false;
  const std::string& verb = args[0];
  if (verb == "module") return args.size() >= 2 && args[1] == "list";
  return verb == "status" || verb == "stats" || verb == "connected-users" || verb == "connected-users-info" ||
         verb == "user-sessions" || verb == "list-users";
}

void print_body(std::FILE* out, const std::string& body) {
  if (body.empty()) return;
  std::fputs(body.c_str(), out);
  if (body.back() != '\n') std::fputc('\n', out);
}

// The account commands on the database file, when no server runs.
int run_offline(const parley::config::Config& config, const std::vector<std::string>& args, bool json) {
  namespace fs = std::filesystem;
  const std::string& path = config.storage.path;
  if (config.storage.type == "postgresql") {
    // The accounts are on PostgreSQL (issue 11): the same commands on a connection of our own.
    auto conn = parley::storage::PgConnection::connect(config.storage.url, std::chrono::seconds(10));
    if (!conn) {
      std::fprintf(stderr, "parleyctl: cannot reach PostgreSQL (storage.url): %s\n", conn.error().message.c_str());
      return kError;
    }
    if (auto m = parley::storage::pg_migrate(**conn, "accounts", parley::storage::postgres_accounts::migrations()); !m) {
      std::fprintf(stderr, "parleyctl: %s\n", m.error().message.c_str());
      return kError;
    }
    parley::storage::PgAccountBackend backend(conn->get());
    auto result = parley::control::run_account_command(backend, config, args);
    if (!result) {
      print_body(stderr, result.error());
      return kError;
    }
    print_body(stdout, *result);
    return kOk;
  }
  if (config.storage.type != "sqlite") {
    std::fprintf(stderr, "parleyctl: parleyd is not running, and storage type '%s' is not supported offline\n",
                 config.storage.type.c_str());
    return kError;
  }
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) {
    std::fprintf(stderr, "parleyctl: cannot create %s: %s\n", parent.c_str(), ec.message().c_str());
    return kError;
  }
  auto db = parley::storage::Database::open(path, parley::storage::Database::Mode::read_write);
  if (!db) {
    std::fprintf(stderr, "parleyctl: %s\n", db.error().message.c_str());
    return kError;
  }
  if (auto m = parley::storage::migrate_builtin(**db); !m) {
    std::fprintf(stderr, "parleyctl: %s\n", m.error().message.c_str());
    return kError;
  }
  auto result = parley::control::run_account_command(**db, config, args);
  if (!result) {
    print_body(stderr, result.error());
    return kError;
  }
  print_body(stdout, json && is_read_verb(args) ? parley::control::json_lines(*result) : *result);
  return kOk;
}

// The configuration when --config is not given: ./conf/parley.yml (a source tree, as
// before), else the one installed beside this parleyctl (PREFIX/etc/parley/parley.yml;
// /etc/parley/parley.yml for the package's /usr), so that an installed parleyctl finds
// its server from any directory.
std::string default_config_file() {
  namespace fs = std::filesystem;
  const std::string in_tree = "conf/parley.yml";
  std::error_code ec;
  if (fs::exists(in_tree, ec)) return in_tree;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return in_tree;
  fs::path prefix = exe.parent_path().parent_path();
  fs::path installed = (prefix == "/usr" || prefix == "/") ? fs::path("/etc/parley/parley.yml")
                                                           : prefix / "etc" / "parley" / "parley.yml";
  if (fs::exists(installed, ec)) return installed.string();
  return in_tree;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Administer a Parley XMPP server: parleyctl [--config FILE] COMMAND [ARGS...]", "parleyctl"};
  std::string config_file = default_config_file();
  app.add_option("-c,--config", config_file, "configuration file")->capture_default_str();
  app.set_version_flag("--version", "parleyctl " PARLEY_VERSION);
  bool json = false;
  app.add_flag("--json", json, "JSON output (the read verbs)");
  app.prefix_command();  // everything from the command on is its argv, passed through as is
  app.footer(commands_text());
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }
  std::vector<std::string> args = app.remaining();
  if (args.empty()) {
    std::fputs(app.help().c_str(), stderr);
    return kUsage;
  }
  // --json after the verb too (`parleyctl stats --json`), for the read verbs only: a
  // trailing "--json" of another verb is its argument (a password, a message body).
  if (is_read_verb(args) && args.size() > 1 && args.back() == "--json") {
    args.pop_back();
    json = true;
  }
  const std::string& command = args[0];
  if (!command.empty() && command[0] == '-') {
    std::fprintf(stderr, "parleyctl: unknown option '%s'\n%s", command.c_str(), app.help().c_str());
    return kUsage;
  }
  const auto* spec = parley::control::find_account_command(command);
  if (spec && args.size() != spec->argument_count + 1) {
    std::fprintf(stderr, "parleyctl: %s\n", parley::control::account_command_usage(*spec).c_str());
    return kUsage;
  }
  if ((command == "status" || command == "help") && args.size() != 1) {
    std::fprintf(stderr, "parleyctl: usage: %s\n", command.c_str());
    return kUsage;
  }

  auto config = parley::config::load_config_file(config_file);
  if (!config) {
    if (command == "help") {  // still useful without a readable configuration
      std::fputs(app.help().c_str(), stdout);
      return kOk;
    }
    std::fprintf(stderr, "parleyctl: %s\n", config.error().to_string().c_str());
    return kError;
  }

  if (command == "top") return parley::ctl::run_top(config->control_socket, args);
  if (command == "export") return parley::ctl::run_export(*config, args);
  if (command == "import") return parley::ctl::run_import(*config, args);
  std::vector<std::string> request = args;
  if (json && is_read_verb(args)) request.push_back("--json");
  auto answer = parley::ctl::send_control_request(config->control_socket, request);
  switch (answer.kind) {
    case parley::ctl::ControlAnswer::Kind::answered:
      print_body(answer.ok ? stdout : stderr, answer.body);
      return answer.ok ? kOk : kError;
    case parley::ctl::ControlAnswer::Kind::failed:
      std::fprintf(stderr, "parleyctl: %s\n", answer.error.c_str());
      return kError;
    case parley::ctl::ControlAnswer::Kind::not_running:
      break;
  }

  if (command == "status") {
    std::puts(json ? "{\"running\": false}" : "parleyd is not running");
    return kNotRunning;
  }
  if (command == "help") {
    std::fputs(app.help().c_str(), stdout);
    return kOk;
  }
  if (spec) return run_offline(*config, args, json);
  std::fprintf(stderr, "parleyctl: unknown command '%s' (or it needs a running parleyd, and none is running)\n%s",
               command.c_str(), commands_text().c_str());
  return kUsage;
}
