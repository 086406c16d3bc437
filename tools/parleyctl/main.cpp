// parleyctl: administer Parley, like ejabberdctl.
//
// With a running parleyd (its control socket accepts a connection) every command goes to
// the server. Without one, the account commands work on the database file directly, with
// the same code the server runs (core/control/account_commands.hpp).
//
// Exit codes: 0 ok, 1 error, 2 usage, 3 parleyd is not running (status).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "control_client.hpp"
#include "top.hpp"
#include "core/config/config.hpp"
#include "core/control/account_commands.hpp"
#include "storage/database.hpp"
#include "storage/schema.hpp"

namespace {

constexpr int kOk = 0, kError = 1, kUsage = 2, kNotRunning = 3;

std::string commands_text() {
  std::string text = "Commands:\n";
  for (const auto& spec : parley::control::account_command_specs()) {
    std::string line = std::string(spec.name) + " " + std::string(spec.arguments);
    text += "  " + line + std::string(line.size() < 32 ? 32 - line.size() : 1, ' ') + std::string(spec.help) + "\n";
  }
  text += "  status                          is parleyd running?\n";
  text += "  top [--once] [-n N] [-d SECS]   live view of the server's figures (tools/parleyctl/top.cpp)\n";
  text += "  help                            list the commands (a running server lists all of its own)\n";
  return text;
}

void print_body(std::FILE* out, const std::string& body) {
  if (body.empty()) return;
  std::fputs(body.c_str(), out);
  if (body.back() != '\n') std::fputc('\n', out);
}

// The account commands on the database file, when no server runs.
int run_offline(const parley::config::Config& config, const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  const std::string& path = config.storage.path;
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
  print_body(stdout, *result);
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Administer a Parley XMPP server: parleyctl [--config FILE] COMMAND [ARGS...]", "parleyctl"};
  std::string config_file = "conf/parley.yml";
  app.add_option("-c,--config", config_file, "configuration file")->capture_default_str();
  app.prefix_command();  // everything from the command on is its argv, passed through as is
  app.footer(commands_text());
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
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
  auto answer = parley::ctl::send_control_request(config->control_socket, args);
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
    std::puts("parleyd is not running");
    return kNotRunning;
  }
  if (command == "help") {
    std::fputs(app.help().c_str(), stdout);
    return kOk;
  }
  if (spec) return run_offline(*config, args);
  std::fprintf(stderr, "parleyctl: unknown command '%s' (or it needs a running parleyd, and none is running)\n%s",
               command.c_str(), commands_text().c_str());
  return kUsage;
}
