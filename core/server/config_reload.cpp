#include "core/server/config_reload.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "core/modules/module_manager.hpp"
#include "core/server/server_context.hpp"
#include "core/stanza/stanza_log.hpp"
#include "core/tls/context_store.hpp"

namespace parley {

namespace {

bool same_listeners(const std::vector<config::Listener>& a, const std::vector<config::Listener>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto &x = a[i], &y = b[i];
    if (x.ip != y.ip || x.port != y.port || x.module != y.module || x.tls != y.tls ||
        x.starttls_required != y.starttls_required || x.backlog != y.backlog ||
        x.allow_plain_without_tls != y.allow_plain_without_tls || x.tls13_channel_binding != y.tls13_channel_binding)
      return false;
  }
  return true;
}

// Each module's options per host, as ModuleManager plans them (host_config wins for
// its host), in YAML text so that two files compare by content.
std::map<std::string, std::map<std::string, std::string>> module_plan(const config::Config& c) {
  std::map<std::string, std::map<std::string, std::string>> out;
  for (const auto& m : c.modules)
    for (const auto& host : c.hosts) out[m.name][host] = YAML::Dump(m.options);
  for (const auto& [host, modules] : c.host_modules)
    for (const auto& m : modules) out[m.name][host] = YAML::Dump(m.options);
  return out;
}

struct Step {
  bool load;
  std::string name;
};

// `done(ok, report, failed_at)`: failed_at is the step that failed (steps->size() when none did).
using StepsDone = std::function<void(bool, std::string, size_t)>;

void run_steps(std::shared_ptr<std::vector<Step>> steps, size_t i, ModuleManager& modules, std::string report,
               StepsDone done) {
  if (i == steps->size()) return done(true, std::move(report), i);
  const Step& step = (*steps)[i];
  auto next = [steps, i, &modules, report, done](bool ok, std::string message) mutable {
    if (!message.empty() && message.back() != '\n') message += '\n';
    report += message;
    if (!ok) return done(false, report + "reload stopped here; the steps above were applied\n", i);
    run_steps(steps, i + 1, modules, std::move(report), std::move(done));
  };
  if (step.load)
    modules.load(step.name, next);
  else
    modules.unload(step.name, next);
}

}  // namespace

void reload_configuration(config::Config& config, ServerContext& ctx, ModuleManager& modules,
                          std::function<void(bool ok, std::string report)> done) {
  auto fresh = config::load_config_file(config.file);
  if (!fresh) return done(false, "not reloaded: " + fresh.error().to_string());

  std::vector<std::string> refused;
  if (fresh->hosts != config.hosts) refused.push_back("hosts");
  if (fresh->workers != config.workers) refused.push_back("workers");
  if (fresh->data_dir != config.data_dir) refused.push_back("data_dir");
  if (fresh->storage.type != config.storage.type || fresh->storage.path != config.storage.path ||
      fresh->storage.readers != config.storage.readers)
    refused.push_back("storage");
  if (fresh->control_socket != config.control_socket) refused.push_back("control_socket");
  if (fresh->module_paths != config.module_paths) refused.push_back("module_paths");
  if (!same_listeners(fresh->listen, config.listen)) refused.push_back("listen");
  if (!(fresh->limits == config.limits)) refused.push_back("limits");
  // issue 17: the loops read the admins without a lock; they change with a restart.
  if (fresh->admins != config.admins || fresh->host_admins != config.host_admins) refused.push_back("admins");
  if (fresh->log_format != config.log_format) refused.push_back("log_format");

  auto old_plan = module_plan(config), new_plan = module_plan(*fresh);
  auto steps = std::make_shared<std::vector<Step>>();
  for (const auto& [name, hosts] : old_plan) {
    auto it = new_plan.find(name);
    if (it == new_plan.end())
      steps->push_back({false, name});
    else if (it->second != hosts)
      refused.push_back("the options or hosts of " + name);
  }
  // Loads in the file's order (a module's dependencies come before it there).
  std::set<std::string> queued;
  auto add_load = [&](const std::string& name) {
    if (!old_plan.count(name) && queued.insert(name).second) steps->push_back({true, name});
  };
  for (const auto& m : fresh->modules) add_load(m.name);
  for (const auto& [host, host_modules] : fresh->host_modules)
    for (const auto& m : host_modules) add_load(m.name);

  if (!refused.empty()) {
    std::string list;
    for (const auto& r : refused) list += (list.empty() ? "" : ", ") + r;
    return done(false, fmt::format("not reloaded: these cannot change while parleyd runs: {} (restart parleyd to "
                                   "apply them; nothing was changed)\n",
                                   list));
  }

  std::string report;
  // Certificates: a changed list is loaded whole (a failure keeps the old ones and
  // stops here); the same list is re-read. An empty list keeps the generated ones.
  if (!fresh->certfiles.empty() && fresh->certfiles != config.certfiles) {
    auto store = tls::ContextStore::load(fresh->certfiles, config.hosts);
    if (!store) return done(false, "not reloaded: certificates: " + store.error() + "\n");
    ctx.set_tls_store(std::shared_ptr<tls::ContextStore>(std::move(*store)));
    config.certfiles = fresh->certfiles;
    report += "certificates loaded from the new certfiles\n";
  } else if (auto store = ctx.tls_store()) {
    if (auto reloaded = store->reload(); !reloaded)
      return done(false, "not reloaded: certificates: " + reloaded.error() + "\n");
    report += "certificates re-read\n";
  }
  parley::set_log_level(spdlog::level::from_str(fresh->loglevel));
  config.loglevel = fresh->loglevel;
  report += "log level: " + fresh->loglevel + "\n";

  // ModuleManager plans a module's hosts and options from these.
  auto old_modules = std::make_shared<std::vector<config::ModuleConfig>>(std::move(config.modules));
  auto old_host_modules =
      std::make_shared<std::map<std::string, std::vector<config::ModuleConfig>>>(std::move(config.host_modules));
  config.modules = std::move(fresh->modules);
  config.host_modules = std::move(fresh->host_modules);
  spdlog::info("configuration reloaded from {}", config.file);
  config::Config* running = &config;
  run_steps(steps, 0, modules, std::move(report),
            [running, steps, old_modules, old_host_modules, done](bool ok, std::string report, size_t failed_at) {
              // The running configuration must say what is loaded (the next reload compares
              // the file with it): the steps not applied are undone in it, so that the next
              // reload tries them again.
              for (size_t j = failed_at; j < steps->size(); ++j) {
                const Step& step = (*steps)[j];
                auto named = [&step](const config::ModuleConfig& m) { return m.name == step.name; };
                std::erase_if(running->modules, named);
                for (auto& [host, list] : running->host_modules) std::erase_if(list, named);
                if (step.load) continue;
                for (const auto& m : *old_modules)
                  if (named(m)) running->modules.push_back(m);
                for (const auto& [host, list] : *old_host_modules)
                  for (const auto& m : list)
                    if (named(m)) running->host_modules[host].push_back(m);
              }
              done(ok, std::move(report));
            });
}

}  // namespace parley
