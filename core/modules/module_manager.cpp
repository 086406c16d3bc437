#include "core/modules/module_manager.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <set>

#include "core/modules/host_api_http.hpp"
#include "core/modules/host_api_http_client.hpp"
#include "core/server/log_format.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/session/session.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_storage.hpp"
#include "core/modules/host_api_module_sql.hpp"
#include "core/modules/string_sink.hpp"
#include "storage/storage_pool.hpp"

#include <future>

#include "core/server/server_context.hpp"

namespace fs = std::filesystem;

namespace parley {

namespace {

constexpr size_t minimum_def_size = offsetof(parley_module_def, stop) + sizeof(parley_module_def::stop);

std::string where(const config::Config& config, const std::string& name) {
  for (const auto& m : config.modules)
    if (m.name == name) return fmt::format("{}:{}: ", m.file, m.line);
  return {};
}

}  // namespace

ModuleLibrary::~ModuleLibrary() {
  if (handle != nullptr) dlclose(handle);
}

ModuleManager::ModuleManager(ServerContext& ctx, const config::Config& config, WorkerLoop& main)
    : ctx_(ctx), config_(config), main_(main) {
  if (config_.storage.type == "postgresql") {
    module_sql_ = std::make_unique<storage::PostgresModuleSql>(config_.storage.url, config_.limits.max_module_sql_queue);
    module_sql_->set_log([](std::string_view message) { spdlog::warn("storage: {}", message); });
  }
}

ModuleManager::~ModuleManager() { stop_all(); }

size_t ModuleManager::module_sql_queue() const { return module_sql_ ? module_sql_->queue_length() : 0; }

std::vector<std::string> ModuleManager::search_path() const {
  std::vector<std::string> dirs = config_.module_paths;
#ifdef PARLEY_BUILD_MODULE_DIR
  dirs.push_back(PARLEY_BUILD_MODULE_DIR);
#endif
#ifdef PARLEY_INSTALL_MODULE_DIR
  dirs.push_back(PARLEY_INSTALL_MODULE_DIR);
#endif
  return dirs;
}

Result<std::shared_ptr<ModuleLibrary>, std::string> ModuleManager::open_library(const std::string& name) {
  std::string found;
  for (const auto& dir : search_path()) {
    fs::path candidate = fs::path(dir) / (name + ".so");
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) {
      found = candidate.string();
      break;
    }
  }
  if (found.empty()) {
    std::string dirs;
    for (const auto& dir : search_path()) dirs += (dirs.empty() ? "" : ", ") + dir;
    return unexpected(fmt::format("module {}: {}.so not found in module_paths ({})", name, name, dirs));
  }
  // dlopen a private copy: a rebuilt .so at the same path is then a new file,
  // and dlclose of the old one cannot be confused with it (ARCHITECTURE.md).
  fs::path cache = fs::path(config_.data_dir) / "module-cache";
  std::error_code ec;
  fs::create_directories(cache, ec);
  fs::path copy = cache / fmt::format("{}.{}.{}.so", name, getpid(), ++copy_serial_);
  fs::copy_file(found, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) return unexpected(fmt::format("module {}: cannot copy {}: {}", name, found, ec.message()));
  void* handle = dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
  fs::remove(copy, ec);  // the mapping stays; nothing is left behind
  if (handle == nullptr) return unexpected(fmt::format("module {} ({}): cannot load: {}", name, found, dlerror()));

  auto library = std::make_shared<ModuleLibrary>();
  library->name = name;
  library->path = found;
  library->handle = handle;
  auto entry = reinterpret_cast<parley_module_entry_fn>(dlsym(handle, PARLEY_MODULE_ENTRY_SYMBOL));
  if (entry == nullptr)
    return unexpected(fmt::format("module {} ({}): not a Parley module (no {} symbol)", name, found,
                                  PARLEY_MODULE_ENTRY_SYMBOL));
  const parley_module_def* def = entry();
  if (def == nullptr || def->size < minimum_def_size)
    return unexpected(fmt::format("module {} ({}): invalid module definition", name, found));
  if (def->abi_major != PARLEY_ABI_MAJOR)
    return unexpected(fmt::format("module {} ({}) was built for module ABI {}.{}; this parleyd has ABI {}.{}", name,
                                  found, def->abi_major, def->abi_minor, PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR));
  if (def->name == nullptr || name != def->name)
    return unexpected(fmt::format("module {} ({}): the library calls itself '{}'", name, found,
                                  def->name ? def->name : "(null)"));
  if (def->start == nullptr) return unexpected(fmt::format("module {} ({}): no start function", name, found));
  // A stream feature goes verbatim into every client's <stream:features/>:
  // one that is not a well-formed element would break every stream.
  std::vector<const char*> stream_features;
  for (auto member : {&parley_module_def::preauth_features, &parley_module_def::session_features}) {
    const char* const* list = def_field(def, member);
    for (size_t i = 0; list && list[i]; ++i) stream_features.push_back(list[i]);
  }
  for (const char* feature : stream_features) {
    std::string_view xml(feature);
    parley_element* parsed = host_api()->element_parse(parley_str{xml.data(), xml.size()});
    if (parsed == nullptr)
      return unexpected(fmt::format("module {} ({}): stream feature '{}' is not one well-formed element", name, found,
                                    xml));
    host_api()->element_free(parsed);
  }
  library->def = def;
  return library;
}

Result<void, std::string> ModuleManager::validate_options(const ModuleLibrary& lib, const YAML::Node& options) const {
  const parley_module_def* def = lib.def;
  const parley_option_decl* decls = def_field(def, &parley_module_def::options);
  size_t count = decls ? def_field(def, &parley_module_def::option_count) : 0;
  std::string at = where(config_, lib.name);
  auto find = [&](const std::string& key) -> const parley_option_decl* {
    for (size_t i = 0; i < count; ++i)
      if (decls[i].name && key == decls[i].name) return &decls[i];
    return nullptr;
  };
  if (options && options.IsDefined() && !options.IsNull()) {
    if (!options.IsMap()) return unexpected(fmt::format("{}module {}: options must be a mapping", at, lib.name));
    for (const auto& item : options) {
      std::string key = item.first.as<std::string>();
      const parley_option_decl* decl = find(key);
      int line = item.first.Mark().line + 1;
      if (decl == nullptr) return unexpected(fmt::format("{}module {}: unknown option '{}' (line {})", at, lib.name, key, line));
      const YAML::Node& value = item.second;
      bool ok = false;
      try {
        switch (decl->type) {
          case PARLEY_OPT_STRING:
            ok = value.IsScalar();
            break;
          case PARLEY_OPT_INT:
            ok = value.IsScalar() && (value.as<int64_t>(), true);
            break;
          case PARLEY_OPT_BOOL:
            ok = value.IsScalar() && (value.as<bool>(), true);
            break;
          case PARLEY_OPT_STRING_LIST:
            ok = value.IsSequence();
            for (const auto& v : value) ok = ok && v.IsScalar();
            break;
        }
      } catch (const YAML::Exception&) {
        ok = false;
      }
      static constexpr const char* type_names[] = {"?", "a string", "an integer", "a boolean", "a list of strings"};
      if (!ok)
        return unexpected(fmt::format("{}module {}: option '{}' (line {}) must be {}", at, lib.name, key, line,
                                      type_names[decl->type <= 4 ? decl->type : 0]));
    }
  }
  for (size_t i = 0; i < count; ++i) {
    if (decls[i].required && decls[i].name && !(options && options[decls[i].name]))
      return unexpected(fmt::format("{}module {}: option '{}' is required", at, lib.name, decls[i].name));
  }
  return {};
}

ModuleManager::HostOptions ModuleManager::plan(const std::string& name, bool or_everywhere) const {
  HostOptions out;
  for (const auto& m : config_.modules)
    if (m.name == name)
      for (const auto& host : config_.hosts) out[host] = m.options;
  for (const auto& [host, modules] : config_.host_modules)
    for (const auto& m : modules)
      if (m.name == name) out[host] = m.options;  // host_config wins for its host
  if (out.empty() && or_everywhere)
    for (const auto& host : config_.hosts) out[host] = YAML::Node(YAML::NodeType::Map);
  return out;
}

Result<void, std::string> ModuleManager::validate_options(const ModuleLibrary& lib, const HostOptions& options) const {
  for (const auto& [host, node] : options)
    if (auto valid = validate_options(lib, node); !valid) return valid;
  return {};
}

Result<std::vector<std::unique_ptr<parley_module>>, std::string> ModuleManager::start_instances(
    const std::shared_ptr<ModuleLibrary>& lib, const HostOptions& options) {
  auto backend = apply_schema(*lib);
  if (!backend) return unexpected(backend.error());
  std::vector<std::unique_ptr<parley_module>> instances;
  for (const auto& host : config_.hosts) {
    auto found = options.find(host);
    if (found == options.end()) continue;  // not enabled for this host
    auto instance = std::make_unique<parley_module>();
    instance->manager = this;
    instance->ctx = &ctx_;
    instance->library = lib;
    instance->host = host;
    instance->store_scope = lib->name + "/" + host;
    instance->storage_backend = *backend;
    instance->options = found->second ? YAML::Clone(found->second) : YAML::Node(YAML::NodeType::Map);
    instance->counters = std::make_unique<ModuleCounters>(ctx_.loops.size());
    std::string error;
    parley_sink sink = string_sink(error);
    int rc;
    try {
      rc = lib->def->start(instance.get(), host_api(), &instance->state, sink);
    } catch (...) {
      rc = -1;
      error = "exception escaped start()";
    }
    if (rc != 0) {
      // Its completions are dropped from now on; one still on its way refers
      // to the instance, which is then kept (a failed start is rare).
      instance->gate.close();
      if (instance->storage_in_flight.load() != 0 || instance->tasks_in_flight.load() != 0) (void)instance.release();
      stop_instances(instances);
      return unexpected(fmt::format("{}module {} failed to start for {}: {}", where(config_, lib->name), lib->name, host,
                                    error.empty() ? "no reason given" : error));
    }
    instance->metrics.freeze(ctx_.loops.size());
    instance->started = true;
    instance->gate.open();
    instances.push_back(std::move(instance));
  }
  return instances;
}

void ModuleManager::stop_instances(std::vector<std::unique_ptr<parley_module>>& instances) {
  for (auto& instance : instances) {
    if (!instance->started.exchange(false)) continue;
    // No completion (storage, accounts, tracked send, posted task, iq
    // answer) runs the module's code from here on; close() waits for those
    // already inside.
    instance->gate.close();
    if (auto stop = def_field(instance->library->def, &parley_module_def::stop)) {
      try {
        stop(instance->state);
      } catch (...) {
        spdlog::error("module {}: exception escaped stop()", instance->library->name);
      }
    }
  }
}

bool ModuleManager::has_pending_timers(const Loaded& loaded) const {
  for (const auto& instance : loaded.instances) {
    {
      // The timers first (see module_reload.cpp, in_flight).
      std::lock_guard lock(instance->timers_mutex);
      if (!instance->timers.empty()) return true;
    }
    if (instance->storage_in_flight.load() != 0 || instance->tasks_in_flight.load() != 0) return true;
  }
  return false;
}

Result<uint32_t, std::string> ModuleManager::apply_schema(const ModuleLibrary& lib) {
  // ABI 1.7: the module's tables go to PostgreSQL if it declared steps for it and the
  // server runs it (host_api_module_sql.cpp), else to the SQLite file.
  auto postgres = host_module_sql::postgres_steps(lib);
  if (!postgres) return unexpected(fmt::format("module {}: {}", lib.name, postgres.error()));
  if (module_sql_ && !postgres->empty()) {
    if (auto migrated = module_sql_->migrate(lib.name, *postgres); !migrated)
      return unexpected(fmt::format("module {}: schema migration failed on PostgreSQL: {}", lib.name, migrated.error()));
    return PARLEY_BACKEND_POSTGRESQL;
  }
  const char* const* schema = def_field(lib.def, &parley_module_def::schema);
  size_t count = schema ? def_field(lib.def, &parley_module_def::schema_count) : 0;
  if (count == 0 || ctx_.storage == nullptr) return PARLEY_BACKEND_SQLITE;
  std::vector<std::string> steps;
  for (size_t i = 0; i < count; ++i) steps.emplace_back(schema[i] ? schema[i] : "");
  // Once per load, on the writer, before the module starts: waiting here is
  // the main thread's business, not a loop's.
  std::promise<Result<void, std::string>> promise;
  auto future = promise.get_future();
  std::string name = lib.name;
  ctx_.storage->write([&promise, name, steps](storage::Database& db) { promise.set_value(migrate_module(db, name, steps)); });
  auto migrated = future.get();
  if (!migrated) return unexpected(fmt::format("module {}: schema migration failed: {}", name, migrated.error()));
  return PARLEY_BACKEND_SQLITE;
}

Result<void, std::string> ModuleManager::load_configured() {
  // Open everything first: dependencies are declared by the libraries.
  std::map<std::string, std::shared_ptr<ModuleLibrary>> libraries;
  std::map<std::string, HostOptions> options;
  std::vector<std::string> names;  // modules, then host_config's extras, in file order
  for (const auto& m : config_.modules) names.push_back(m.name);
  for (const auto& [host, modules] : config_.host_modules)
    for (const auto& m : modules)
      if (std::find(names.begin(), names.end(), m.name) == names.end()) names.push_back(m.name);
  for (const auto& name : names) {
    auto lib = open_library(name);
    if (!lib) return unexpected(where(config_, name) + lib.error());
    options[name] = plan(name, false);
    if (auto valid = validate_options(**lib, options[name]); !valid) return valid;
    libraries[name] = *lib;
  }
  std::vector<std::string> order;
  std::set<std::string> visiting, done;
  std::function<Result<void, std::string>(const std::string&)> visit = [&](const std::string& name) -> Result<void, std::string> {
    if (done.count(name)) return {};
    if (visiting.count(name)) return unexpected(fmt::format("module {}: circular dependency", name));
    visiting.insert(name);
    const char* const* depends = def_field(libraries[name]->def, &parley_module_def::depends);
    for (size_t i = 0; depends && depends[i]; ++i) {
      if (!libraries.count(depends[i]))
        return unexpected(fmt::format("{}module {} depends on {}, which is not enabled", where(config_, name), name,
                                      depends[i]));
      if (auto r = visit(depends[i]); !r) return r;
    }
    visiting.erase(name);
    done.insert(name);
    order.push_back(name);
    return {};
  };
  for (const auto& name : names)
    if (auto r = visit(name); !r) return r;

  for (const auto& name : order) {
    auto instances = start_instances(libraries[name], options[name]);
    if (!instances) return unexpected(instances.error());
    modules_[name] = Loaded{libraries[name], options[name], std::move(*instances)};
    order_.push_back(name);
    spdlog::info("event=module_loaded module={} version={} path={}", name,
                 log_value(libraries[name]->def->version ? libraries[name]->def->version : ""),
                 log_value(libraries[name]->path));
  }
  auto tables = build_tables();
  for (auto& loop : ctx_.loops) loop->modules = tables;
  return {};
}

std::shared_ptr<const ModuleTables> ModuleManager::build_tables() const {
  auto tables = std::make_shared<ModuleTables>();
  for (const auto& name : order_) {
    const Loaded& loaded = modules_.at(name);
    const parley_module_def* def = loaded.library->def;
    const parley_hook_decl* hooks = def_field(def, &parley_module_def::hooks);
    size_t hook_count = hooks ? def_field(def, &parley_module_def::hook_count) : 0;
    const parley_iq_decl* iqs = def_field(def, &parley_module_def::iq_handlers);
    size_t iq_count = iqs ? def_field(def, &parley_module_def::iq_handler_count) : 0;
    const char* const* features = def_field(def, &parley_module_def::disco_features);
    const char* const* preauth = def_field(def, &parley_module_def::preauth_features);
    const char* const* session = def_field(def, &parley_module_def::session_features);
    for (const auto& instance : loaded.instances) {
      if (instance->offer_preauth_features)
        for (size_t i = 0; preauth && preauth[i]; ++i) tables->preauth_features[instance->host] += preauth[i];
      if (instance->offer_session_features)
        for (size_t i = 0; session && session[i]; ++i) tables->session_features[instance->host] += session[i];
      for (size_t i = 0; i < hook_count; ++i) {
        if (hooks[i].event == 0 || hooks[i].event >= PARLEY_EVENT_COUNT_ || hooks[i].fn == nullptr) continue;
        // hook_mode, from start(): left out, or run per session.
        uint64_t bit = uint64_t{1} << hooks[i].event;
        if (instance->hooks_off.load() & bit) continue;
        bool per_session = (instance->hooks_per_session.load() & bit) != 0;
        tables->hooks[hooks[i].event][instance->host].push_back(
            HookEntry{hooks[i].priority, instance.get(), hooks[i].fn, per_session});
      }
      for (size_t i = 0; i < iq_count; ++i) {
        if (iqs[i].xmlns == nullptr || iqs[i].fn == nullptr) continue;
        for (std::string type : {"get", "set"}) {
          uint32_t bit = type == "get" ? PARLEY_IQ_GET : PARLEY_IQ_SET;
          if (iqs[i].types & bit)
            tables->iq[std::make_tuple(instance->host, iqs[i].scope, type, std::string(iqs[i].xmlns))] =
                IqEntry{instance.get(), iqs[i].fn};
        }
      }
      for (size_t i = 0; features && features[i]; ++i) tables->features[instance->host].push_back(features[i]);
      for (const HttpRouteEntry& route : instance->http_routes) tables->http_routes.push_back(route);
      tables->instances.push_back(instance.get());
      for (const ModuleRoute& route : instance->routes) {
        auto [it, added] = tables->services.emplace(route.domain,
                                                    ServiceEntry{instance.get(), route.fn, instance->host, route.name});
        if (!added)
          spdlog::error("module {}: {} is served by module {} already", loaded.library->name, route.domain,
                        it->second.instance->library->name);
      }
    }
  }
  std::stable_sort(tables->http_routes.begin(), tables->http_routes.end(),
                   [](const HttpRouteEntry& a, const HttpRouteEntry& b) { return a.prefix.size() > b.prefix.size(); });
  for (auto& by_host : tables->hooks)
    for (auto& [host, list] : by_host)
      std::stable_sort(list.begin(), list.end(),
                       [](const HookEntry& a, const HookEntry& b) { return a.priority < b.priority; });
  return tables;
}

void ModuleManager::when_storage_drained(std::shared_ptr<Loaded> stopped, std::function<void()> done) {
  // stop() may have written its last state: those calls complete on a loop,
  // in the module's code and with its instance, so neither may go before.
  bool drained = true;
  for (const auto& instance : stopped->instances)
    drained = drained && instance->storage_in_flight.load() == 0 && instance->tasks_in_flight.load() == 0 &&
              instance->sends_in_flight.load() == 0 && instance->http_in_flight.load() == 0 &&
              instance->http_requests_in_flight.load() == 0;
  if (drained) {
    done();
    return;
  }
  // One round through the loops lets posted completions run; rare and short
  // (a stop() that wrote), so no timer. Tracked sends (ABI 1.2) wait on a
  // client's reading, which may never come: the sessions drop those of the
  // stopped instances (their completions would not run anyway).
  on_all_loops(
      [stopped](LoopContext& lc) {
        for (auto& [id, session] : lc.sessions)
          for (const auto& instance : stopped->instances) session->drop_tracked(instance.get());
        // Their open HTTP exchanges end (issue 13): each counts as a task in flight.
        for (const auto& instance : stopped->instances) host_http::drop_exchanges(instance.get());
        // Their HTTP requests (issue 14) are cancelled: completions with stopped = 1.
        for (const auto& instance : stopped->instances) host_http_client::drop_requests(lc, instance.get());
      },
      [this, stopped, done] { when_storage_drained(stopped, done); });
}

void ModuleManager::on_all_loops(std::function<void(LoopContext&)> task, std::function<void()> done) {
  if (ctx_.loops.empty()) {
    done();
    return;
  }
  auto remaining = std::make_shared<size_t>(ctx_.loops.size());
  for (auto& loop : ctx_.loops) {
    LoopContext* lc = loop.get();
    lc->loop.post([this, lc, task, done, remaining] {
      task(*lc);
      main_.post([done, remaining] {
        if (--*remaining == 0) done();
      });
    });
  }
}

void ModuleManager::install_tables(std::shared_ptr<const ModuleTables> tables, bool resume, std::function<void()> done) {
  on_all_loops(
      [tables, resume](LoopContext& lc) {
        lc.modules = tables;
        // What waited runs now, against these tables.
        if (resume) lc.module_pause.end();
      },
      std::move(done));
}

void ModuleManager::drop_session_data(std::vector<parley_module*> instances, std::function<void()> done) {
  // free_fn lives in the module's code: run it on each loop before dlclose.
  on_all_loops(
      [instances](LoopContext& lc) {
        for (auto& [id, session] : lc.sessions)
          for (parley_module* instance : instances) session->drop_module_data(instance);
      },
      std::move(done));
}

void ModuleManager::pause_loops(std::vector<const parley_module*> frozen, std::function<void()> done) {
  on_all_loops([frozen](LoopContext& lc) { lc.module_pause.begin(frozen); }, std::move(done));
}

std::string ModuleManager::list() const {
  std::string out;
  for (const auto& name : order_) {
    const Loaded& loaded = modules_.at(name);
    const parley_module_def* def = loaded.library->def;
    out += fmt::format("{} {} (ABI {}.{}) {}\n", name, def->version ? def->version : "-", def->abi_major,
                       def->abi_minor, loaded.library->path);
  }
  return out;
}

std::string ModuleManager::counters_text() const {
  std::string out;
  for (const auto& name : order_) {
    for (const auto& instance : modules_.at(name).instances) {
      for (const auto& [counter, value] : instance->counters->totals())
        out += fmt::format("{}.{}.{}: {}\n", name, instance->host, counter, value);
      out += instance->metrics.text(fmt::format("{}.{}", name, instance->host));
    }
  }
  return out;
}

void ModuleManager::load(const std::string& name, Done done) {
  if (busy_) return done(false, "another module change is in progress");
  if (modules_.count(name)) return done(false, fmt::format("module {} is already loaded", name));
  auto lib = open_library(name);
  if (!lib) return done(false, lib.error());
  HostOptions options = plan(name, true);
  if (auto valid = validate_options(**lib, options); !valid) return done(false, valid.error());
  const char* const* depends = def_field((*lib)->def, &parley_module_def::depends);
  for (size_t i = 0; depends && depends[i]; ++i)
    if (!modules_.count(depends[i]))
      return done(false, fmt::format("module {} depends on {}, which is not loaded", name, depends[i]));
  auto instances = start_instances(*lib, options);
  if (!instances) return done(false, instances.error());
  modules_[name] = Loaded{*lib, options, std::move(*instances)};
  order_.push_back(name);
  busy_ = true;
  install_tables(build_tables(), false, [this, name, done] {
    busy_ = false;
    spdlog::info("event=module_loaded module={}", name);
    done(true, fmt::format("module {} loaded\n", name));
  });
}

void ModuleManager::unload(const std::string& name, Done done) {
  if (busy_) return done(false, "another module change is in progress");
  auto it = modules_.find(name);
  if (it == modules_.end()) return done(false, fmt::format("module {} is not loaded", name));
  for (const auto& other : order_) {
    const char* const* depends = def_field(modules_.at(other).library->def, &parley_module_def::depends);
    for (size_t i = 0; depends && depends[i]; ++i)
      if (name == depends[i]) return done(false, fmt::format("module {} is needed by {}", name, other));
  }
  if (has_pending_timers(it->second))
    return done(false, fmt::format("module {} has timers or storage calls in flight; try again later", name));
  Loaded removed = std::move(it->second);
  modules_.erase(it);
  order_.erase(std::find(order_.begin(), order_.end(), name));
  busy_ = true;
  auto holder = std::make_shared<Loaded>(std::move(removed));
  // Stop it only once no loop can call into it any more.
  std::vector<parley_module*> instances;
  for (auto& instance : holder->instances) instances.push_back(instance.get());
  install_tables(build_tables(), false, [this, name, holder, instances, done] {
    drop_session_data(instances, [this, name, holder, done] {
      stop_instances(holder->instances);
      when_storage_drained(holder, [this, name, holder, done] {
        holder->instances.clear();
        holder->library.reset();  // dlclose
        busy_ = false;
        spdlog::info("event=module_unloaded module={}", name);
        done(true, fmt::format("module {} unloaded\n", name));
      });
    });
  });
}

void ModuleManager::stop_all() {
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    auto found = modules_.find(*it);
    if (found == modules_.end()) continue;
    stop_instances(found->second.instances);
    for (auto& instance : found->second.instances) release_stopped_timers(*instance);
  }
  order_.clear();
  modules_.clear();
  // After the modules' stop(), whose calls are still carried out (as on SQLite's writer).
  if (module_sql_) module_sql_->stop();
}

size_t ModuleManager::tasks_in_flight() const {
  size_t n = 0;
  for (const auto& [name, loaded] : modules_)
    for (const auto& instance : loaded.instances) n += static_cast<size_t>(std::max(0, instance->tasks_in_flight.load()));
  return n;
}

size_t ModuleManager::storage_in_flight() const {
  size_t n = 0;
  for (const auto& [name, loaded] : modules_)
    for (const auto& instance : loaded.instances)
      n += static_cast<size_t>(std::max(0, static_cast<int>(instance->storage_in_flight.load())));
  return n;
}

bool ModuleManager::serves_route(std::string_view domain) const {
  for (const auto& [name, loaded] : modules_) {
    if (&loaded == replacing_) continue;  // reloading: its code takes its own routes over
    for (const auto& instance : loaded.instances)
      for (const ModuleRoute& route : instance->routes)
        if (route.domain == domain) return true;
  }
  return false;
}

}  // namespace parley
