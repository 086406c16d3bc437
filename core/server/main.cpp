// parleyd: the Parley XMPP server.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>

#include "core/config/config.hpp"
#include "core/server/log_format.hpp"
#include "core/server/server.hpp"
#include "core/stanza/stanza_log.hpp"

int main(int argc, char** argv) {
  CLI::App app{"parleyd - the Parley XMPP server"};
  std::string config_path = "conf/parley.yml";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
  app.add_flag("--check-config", check_only, "Validate the configuration and exit");
  app.set_version_flag("--version", "parleyd " PARLEY_VERSION);
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_color_mt("parley");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  auto config = parley::config::load_config_file(config_path);
  if (!config) {
    std::fprintf(stderr, "parleyd: %s\n", config.error().to_string().c_str());
    return 2;
  }
  if (check_only) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  // issue 17: every line one JSON object (docs/operations.md, Logs).
  if (config->log_format == "json") parley::use_json_log_format();
  parley::set_log_level(spdlog::level::from_str(config->loglevel));
  // A peer that resets mid-write must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  parley::Server server(std::move(*config));
  if (auto started = server.start(); !started) {
    spdlog::critical("cannot start: {}", started.error());
    return 1;
  }
  server.run();
  return 0;
}
