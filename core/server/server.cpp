#include "core/server/server.hpp"

#include "core/net/http_metrics.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/addr/jid_cache.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/component/component_directory.hpp"
#include "core/component/component_stream.hpp"
#include "core/modules/pending_iqs.hpp"
#include "core/modules/host_api_archive.hpp"
#include "core/modules/host_api_http_client.hpp"
#include "core/session/session.hpp"
#include "core/control/account_commands.hpp"
#include "core/control/control_server.hpp"
#include "core/control/json_text.hpp"
#include "core/server/admin_commands.hpp"
#include "core/export/account_data.hpp"
#include "core/server/config_reload.hpp"
#include "core/server/log_format.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_accounts.hpp"
#include "core/modules/module_manager.hpp"
#include "core/net/listener.hpp"
#include "core/sasl/scram_credentials.hpp"
#include "core/stanza/stanza_log.hpp"
#include "core/tls/context_store.hpp"
#include "core/tls/self_signed.hpp"
#include "storage/caching_account_store.hpp"
#include "storage/postgres_account_store.hpp"
#include "storage/postgres_archive_store.hpp"
#include "storage/sqlite_account_store.hpp"
#include "storage/sqlite_archive_store.hpp"
#include "storage/sqlite_keyval_store.hpp"
#include "storage/postgres_keyval_store.hpp"
#include "storage/storage_pool.hpp"

namespace parley {

namespace fs = std::filesystem;

namespace {

Result<void, std::string> ensure_parent_dir(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return {};
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return unexpected(fmt::format("cannot create directory {}: {}", parent.string(), ec.message()));
  return {};
}

uint64_t now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

Server::Server(config::Config config) : config_(std::move(config)) {}

Server::~Server() {
  if (started_) shutdown();
  if (main_ && !main_ran_) {
    // start() failed: nothing ran the main loop. Close what it holds and run
    // it to the end so every close callback finds its object alive.
    if (control_) control_->close();
    main_->stop();
    main_->run_here();
  }
}

Result<void, std::string> Server::prepare_tls() {
  std::vector<std::string> certfiles = config_.certfiles;
  if (certfiles.empty()) {
    // No certificate configured: a self-signed one per host, made once.
    for (const auto& host : config_.hosts) {
      std::string path = (fs::path(config_.data_dir) / "certs" / (host + ".pem")).string();
      if (!fs::exists(path)) {
        spdlog::info("generating a self-signed certificate for {} in {}", host, path);
        auto made = tls::generate_self_signed(host, path);
        if (!made) return unexpected(made.error());
      }
      certfiles.push_back(path);
    }
    config_.certfiles = certfiles;
  }
  auto store = tls::ContextStore::load(config_.certfiles, config_.hosts);
  if (!store) return unexpected(store.error());
  ctx_->set_tls_store(std::shared_ptr<tls::ContextStore>(std::move(*store)));
  return {};
}

Result<void, std::string> Server::start_account_store() {
  if (config_.storage.type == "postgresql") {
    // One connection for the archive, one for the keyval store, one for the account
    // writer, the rest (at least one) for readers.
    const unsigned readers = config_.storage.max_connections > 3 ? config_.storage.max_connections - 3 : 1;
    auto pg = std::make_unique<storage::PostgresAccountStore>(config_.storage.url, readers);
    pg->set_log([](std::string_view message) { spdlog::warn("storage: {}", message); });
    if (auto started = pg->start(); !started)
      return unexpected(fmt::format("cannot open the accounts on PostgreSQL (storage.url): {}", started.error().message));
    spdlog::info("storage: the accounts are on PostgreSQL");
    accounts_ = std::move(pg);
  } else {
    accounts_ = std::make_unique<storage::SqliteAccountStore>(*storage_);
  }
  // Logins of accounts seen recently go on while the database fails (issue 11).
  if (config_.limits.max_cached_credentials != 0)
    accounts_ = std::make_unique<storage::CachingAccountStore>(std::move(accounts_),
                                                               config_.limits.max_cached_credentials);
  ctx_->accounts = accounts_.get();
  return {};
}

Result<void, std::string> Server::start_keyval_store() {
  if (config_.storage.type == "postgresql") {
    auto pg = std::make_unique<storage::PostgresKeyvalStore>(config_.storage.url, config_.limits.max_keyval_queue);
    pg->set_log([](std::string_view message) { spdlog::warn("storage: {}", message); });
    if (auto started = pg->start(); !started)
      return unexpected(fmt::format("cannot open the keyval store on PostgreSQL (storage.url): {}",
                                    started.error().message));
    spdlog::info("storage: the keyval store is on PostgreSQL");
    ctx_->map = pg.get();  // the same store serves the map operations
    keyval_ = std::move(pg);
  } else {
    // A file of its own ("parley.db" -> "parley-keyval.db"), as the archive's.
    fs::path main_db(config_.storage.path);
    fs::path keyval_db = main_db;
    keyval_db.replace_filename(main_db.stem().string() + "-keyval" + main_db.extension().string());
    auto sqlite = std::make_unique<storage::SqliteKeyvalStore>(keyval_db.string(), config_.limits.max_keyval_queue);
    if (auto started = sqlite->start(); !started)
      return unexpected(fmt::format("cannot open the keyval database {}: {}", keyval_db.string(),
                                    started.error().message));
    ctx_->map = sqlite.get();  // the same store serves the map operations
    keyval_ = std::move(sqlite);
  }
  ctx_->keyval = keyval_.get();
  return {};
}

Result<void, std::string> Server::start() {
  std::error_code ec;
  fs::create_directories(config_.data_dir, ec);
  if (ec) return unexpected(fmt::format("cannot create data_dir {}: {}", config_.data_dir, ec.message()));
  // The secret of missing accounts' SCRAM salts, kept so that they do not
  // change across restarts (a change would tell them from real accounts).
  auto secret = sasl::load_or_create_secret((fs::path(config_.data_dir) / "sasl_secret").string());
  if (!secret) return unexpected(secret.error());
  sasl::set_dummy_secret(*secret);

  ctx_ = std::make_unique<ServerContext>(config_);
  ctx_->server_secret = std::move(*secret);
  if (auto tls = prepare_tls(); !tls) return tls;

  if (auto dir = ensure_parent_dir(config_.storage.path); !dir) return dir;
  storage_ = std::make_unique<storage::StoragePool>(config_.storage.path, config_.storage.readers);
  storage_->set_error_handler(
      [](std::string_view message) { spdlog::error("event=storage_error what=sqlite error={}", log_value(message)); });
  if (auto started = storage_->start(); !started)
    return unexpected(fmt::format("cannot open the database {}: {}", config_.storage.path, started.error().message));
  ctx_->storage = storage_.get();
  if (auto accounts = start_account_store(); !accounts) return accounts;
  // The archive in a file of its own ("parley.db" -> "parley-archive.db"): its writes do
  // not queue behind the main writer (logins, offline messages), and SQLite's writer lock
  // is per file.
  if (config_.storage.type == "postgresql") {
    // backend: postgresql (issue 11): the archive on PostgreSQL, reached now or not at all
    // (later outages are the store's to ride out: see postgres_archive_store.hpp).
    auto pg = std::make_unique<storage::PostgresArchiveStore>(config_.storage.url, config_.limits.max_archive_queue);
    pg->set_log([](std::string_view message) { spdlog::warn("storage: {}", message); });
    pg->set_on_unavailable([ctx = ctx_.get()] { host_archive::on_archive_unavailable(*ctx); });
    if (auto started = pg->start(); !started)
      return unexpected(fmt::format("cannot open the archive on PostgreSQL (storage.url): {}", started.error().message));
    spdlog::info("storage: the archive is on PostgreSQL");
    archive_ = std::move(pg);
    ctx_->archive = archive_.get();
  } else {
    fs::path main_db(config_.storage.path);
    fs::path archive_db = main_db;
    archive_db.replace_filename(main_db.stem().string() + "-archive" + main_db.extension().string());
    auto sqlite = std::make_unique<storage::SqliteArchiveStore>(archive_db.string(), config_.limits.max_archive_queue);
    if (auto started = sqlite->start(); !started)
      return unexpected(fmt::format("cannot open the archive database {}: {}", archive_db.string(),
                                    started.error().message));
    archive_ = std::move(sqlite);
    ctx_->archive = archive_.get();
  }

  if (auto keyval = start_keyval_store(); !keyval) return keyval;

  router_ = std::make_unique<Router>(*ctx_);
  ctx_->router = router_.get();
  ctx_->request_stop = [this] { request_stop(); };  // issue 17: module ABI server_stop
  jid_cache::set_max_entries(config_.limits.max_cached_addresses);

  main_ = std::make_unique<WorkerLoop>(~0u);
  if (auto dir = ensure_parent_dir(config_.control_socket); !dir) return dir;
  control_ = std::make_unique<control::ControlServer>(main_->uv(), config_.control_socket);
  register_control_commands();
  // Before the listeners: a second parleyd on the same config is refused here
  // instead of sharing the ports through SO_REUSEPORT.
  if (auto listening = control_->start(); !listening) return unexpected(listening.error());

  unsigned workers = config_.workers != 0 ? config_.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < workers; ++i) ctx_->loops.push_back(std::make_unique<LoopContext>(i));
  for (auto& loop : ctx_->loops) loop->size_routes(workers);
  bool has_components = false;
  for (const auto& listen : config_.listen) has_components = has_components || !listen.component_hosts.empty();
  if (has_components) ctx_->components = std::make_shared<ComponentDirectory>(config_);
  for (auto& loop : ctx_->loops) {
    LoopContext* lc = loop.get();
    lc->loop.set_thread_init([lc] { lc->make_current(); });
  }
  modules_ = std::make_unique<ModuleManager>(*ctx_, config_, *main_);
  if (auto loaded = modules_->load_configured(); !loaded) return unexpected(loaded.error());

  for (const auto& listen : config_.listen)
    if (auto unshared = Listener::check_unshared(listen); !unshared) return unexpected(unshared.error());
  for (auto& loop : ctx_->loops) {
    for (const auto& listen : config_.listen) {
      auto listener = std::make_unique<Listener>(*ctx_, *loop, listen);
      if (auto ok = listener->start(); !ok) return unexpected(ok.error());
      loop->listeners.push_back(std::move(listener));
    }
    loop->gauges = std::make_unique<LoopGauges>();
    loop->gauges->start(*ctx_, *loop);
  }

  uv_signal_init(main_->uv(), &sigterm_);
  uv_signal_init(main_->uv(), &sigint_);
  uv_signal_init(main_->uv(), &sighup_);
  sigterm_.data = sigint_.data = sighup_.data = this;
  uv_signal_start(&sigterm_, &Server::on_signal, SIGTERM);
  uv_signal_start(&sigint_, &Server::on_signal, SIGINT);
  uv_signal_start(&sighup_, &Server::on_signal, SIGHUP);

  for (auto& loop : ctx_->loops) loop->loop.start_thread();
  started_ = true;
  started_at_ms_ = now_ms();
  for (const auto& listen : config_.listen)
    spdlog::info("event=listener_up kind={} address={}:{} tls={}", listen.module,
                 listen.ip.find(':') != std::string::npos ? "[" + listen.ip + "]" : listen.ip, listen.port,
                 listen.tls ? "direct" : (listen.module == "http" ? "none" : "starttls"));
  spdlog::info("event=start workers={} hosts={}", workers, fmt::join(config_.hosts, ","));
  return {};
}

void Server::run() {
  if (!started_) return;
  main_ran_ = true;
  main_->run_here();
}

void Server::request_stop() {
  main_->post([this] { shutdown(); });
}

void Server::on_signal(uv_signal_t* handle, int signum) {
  auto* self = static_cast<Server*>(handle->data);
  if (signum == SIGHUP) {
    self->reload();
    return;
  }
  spdlog::info("signal {}: shutting down", signum);
  self->shutdown();
}

void Server::reload() {
  // SIGHUP (systemctl reload parley): what parleyctl reload-config applies (certificates,
  // log level, modules added or removed). When the file changes something that needs a
  // restart, that reload applies nothing: then the certificates and the log level alone,
  // as SIGHUP always did, so that a renewal never waits for a restart.
  reload_configuration(config_, *ctx_, *modules_, [this](bool ok, std::string report) {
    if (!report.empty() && report.back() == '\n') report.pop_back();
    std::replace(report.begin(), report.end(), '\n', ';');  // one log line
    if (ok) {
      spdlog::info("SIGHUP: configuration reloaded: {}", report);
      spdlog::info("certificates reloaded");
      spdlog::info("log level is now {}", config_.loglevel);
      return;
    }
    spdlog::warn("SIGHUP: {}; reloading the certificates and the log level only", report);
    reload_certificates_and_log_level();
  });
}

void Server::reload_certificates_and_log_level() {
  if (auto store = ctx_->tls_store()) {
    if (auto reloaded = store->reload(); !reloaded)
      spdlog::error("certificate reload failed, keeping the old ones: {}", reloaded.error());
    else
      spdlog::info("certificates reloaded");
  }
  auto fresh = config::load_config_file(config_.file);
  if (!fresh) {
    spdlog::error("config reload failed: {}", fresh.error().to_string());
    return;
  }
  parley::set_log_level(spdlog::level::from_str(fresh->loglevel));
  spdlog::info("log level is now {}", fresh->loglevel);
}

void Server::shutdown() {
  if (!started_) return;
  started_ = false;
  ctx_->shutting_down = true;

  // 0. Modules learn it first, on every loop, while every session is still
  // open (PARLEY_EVENT_SERVER_STOPPING: a group chat room tells its occupants
  // it goes away, status 332). What they route to another loop is queued
  // there before that loop's close in step 1 (posted after this finished).
  {
    auto told = std::make_shared<std::atomic<size_t>>(0);
    for (auto& loop : ctx_->loops) {
      LoopContext* lc = loop.get();
      lc->loop.post([this, lc, told] {
        if (lc->modules && !lc->module_pause.active()) {
          for (const std::string& host : ctx_->hosts) {
            if (lc->modules->hooks_for(PARLEY_EVENT_SERVER_STOPPING, host) == nullptr) continue;
            parley_event_args args{};
            args.host = to_pstr(host);
            run_hooks(*lc->modules, PARLEY_EVENT_SERVER_STOPPING, host, args);
          }
        }
        told->fetch_add(1);
      });
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (told->load() < ctx_->loops.size() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  // 1. Stop accepting and tell every client (RFC 6120 §4.9.3.22), on its loop.
  // Detached sessions end here too, and what waited for them is routed (to
  // offline storage, say) before the modules stop: wait until every loop did it.
  auto closed = std::make_shared<std::atomic<size_t>>(0);
  for (auto& loop : ctx_->loops) {
    LoopContext* lc = loop.get();
    lc->loop.post([lc, closed] {
      for (auto& listener : lc->listeners) listener->close();
      std::vector<Session*> sessions;
      for (auto& [id, session] : lc->sessions) sessions.push_back(session.get());
      for (Session* session : sessions) session->close("system-shutdown");
      if (lc->components) lc->components->close_all("system-shutdown");
      closed->fetch_add(1);
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (closed->load() < ctx_->loops.size() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // 2. Give the streams a moment to flush, then cut what is left.
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (ctx_->total(&LoopMetrics::connections_open) > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // 3. Stop the loops; each closes its remaining handles before it ends.
  // The iqs modules still wait for are answered as timed out first, while
  // module code may still run: their waiters are freed, not leaked.
  for (auto& loop : ctx_->loops) {
    LoopContext* lc = loop.get();
    lc->loop.post([lc] {
      std::vector<Session*> sessions;
      for (auto& [id, session] : lc->sessions) sessions.push_back(session.get());
      for (Session* session : sessions) session->close("system-shutdown");
      if (lc->components) lc->components->close_all("system-shutdown");
      if (lc->pending_iqs) lc->pending_iqs->expire_all();
      host_http_client::close(*lc);  // modules' HTTP requests end "cancelled" (issue 14)
    });
  }
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (ctx_->total(&LoopMetrics::connections_open) > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Tasks modules posted to another loop (a session's unavailable presence to
  // its group chat room's loop, say) run while the loops and the modules are
  // live: a task posted to a loop that stopped first never runs, and what it
  // owned is lost (module.h: post).
  // The same for storage operations: their completions are posted to the calling
  // loop, and one posted to a stopped loop never runs, so what its module gave it
  // (a closure holding a stanza) would be lost (LeakSanitizer saw mod_muc's, when a
  // room's history write was still queued at SIGTERM).
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (modules_->tasks_in_flight() + modules_->storage_in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto& loop : ctx_->loops) loop->loop.stop();
  for (auto& loop : ctx_->loops) loop->loop.join();
  // Sessions may hold module data whose free function is module code: free it
  // while the modules are still mapped.
  for (auto& loop : ctx_->loops) {
    loop->sessions.clear();
    loop->orphan_streams.clear();
    loop->components.reset();
  }
  // 4. The archive store first: it drains its queue, and its appends'
  // completions (on its own thread) touch their module instances, which
  // stop_all frees. Then modules, now that no loop can call them; storage
  // last: finish queued writes.
  archive_->stop();
  keyval_->stop();
  modules_->stop_all();
  accounts_->stop();
  storage_->stop();

  control_->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), nullptr);
  main_->stop();
  spdlog::info("event=stop");
}

void Server::on_account_change(const std::vector<std::string>& argv) {
  // h-admin: a banned account's sessions end (as the module entry's: host_api_account_admin.cpp).
  if (argv.size() >= 3 && argv[0] == "ban-account") {
    if (auto jid = Jid::make(argv[1], argv[2])) close_account_sessions(*ctx_, *jid, "Account disabled");
    return;
  }
  if (argv.size() < 3 || (argv[0] != "register" && argv[0] != "unregister")) return;
  auto jid = Jid::make(argv[1], argv[2]);
  if (!jid) return;
  announce_account_change(*ctx_, *jid, argv[0] == "unregister");
}

std::string Server::status_text() const {
  std::string out = fmt::format("parleyd is running\nuptime_seconds: {}\nworkers: {}\nsessions: {}\nconnections: {}\n",
                                (now_ms() - started_at_ms_) / 1000, ctx_->loops.size(), ctx_->sessions.size(),
                                ctx_->total(&LoopMetrics::connections_open));
  out += fmt::format("connections_accepted: {}\nstanzas_in: {}\nstanzas_cross_loop: {}\nauth_failures: {}\nstream_errors: {}\n",
                     ctx_->total(&LoopMetrics::connections_accepted), ctx_->total(&LoopMetrics::stanzas_in),
                     ctx_->total(&LoopMetrics::stanzas_routed_cross_loop), ctx_->total(&LoopMetrics::auth_failures),
                     ctx_->total(&LoopMetrics::stream_errors));
  out += fmt::format("stanzas_refused_route_full: {}\n", ctx_->total(&LoopMetrics::stanzas_refused_route_full));
  size_t lingering = 0;
  for (const auto& loop : ctx_->loops) lingering += loop->lingering.count();
  out += fmt::format("lingering_sockets: {}\n", lingering);
  // Memory of the XML parsers alive (an idle session has none: limits.idle_parser_release).
  out += fmt::format("expat_heap_bytes: {}\n", xml::expat_heap_bytes());
  for (const auto& loop : ctx_->loops)
    out += fmt::format("loop{}_inbox: {}\nroute_to_loop{}_queue: {}\n", loop->loop.index(), loop->loop.inbox_length(),
                       loop->loop.index(), ctx_->route_queue(loop->loop.index()));
  out += fmt::format("storage_read_queue: {}\nstorage_write_queue: {}\n", storage_->read_queue_length(),
                     storage_->write_queue_length());
  out += fmt::format("archive_queue: {}\n", archive_->queue_length());
  out += fmt::format("keyval_queue: {}\n", keyval_->queue_length());
  // ABI 1.7: modules' own SQL on PostgreSQL (writes waiting while the database is away).
  if (config_.storage.type == "postgresql") out += fmt::format("module_sql_queue: {}\n", modules_->module_sql_queue());
  if (ctx_->components) {
    // Each external component's route: connected, its queue, stanzas refused as it was full.
    for (const ComponentEntry* c : ctx_->components->entries())
      out += fmt::format("component_{0}_connected: {1}\ncomponent_{0}_queue: {2}\ncomponent_{0}_refused_queue_full: {3}\n",
                         c->domain, c->loop.load() >= 0 ? 1 : 0, c->queued.load(), c->refused_full.load());
  }
  out += fmt::format("account_queue: {}\n", accounts_->queue_length());
  // issue 13: the decayed averages (1 s, 10 s, 100 s) of the queues, as /metrics has them.
  for (const auto& loop : ctx_->loops) {
    if (!loop->gauges) continue;
    for (int g = 0; g < LoopGauges::kGauges; ++g) {
      auto which = static_cast<LoopGauges::Gauge>(g);
      if (!loop->gauges->sampled(which)) continue;
      std::string name = which >= LoopGauges::storage_read ? LoopGauges::name(which)
                                                           : fmt::format("loop{}_{}", loop->loop.index(), LoopGauges::name(which));
      out += fmt::format("{}_avg: {:.2f} {:.2f} {:.2f}\n", name, loop->gauges->average(which, 0),
                         loop->gauges->average(which, 1), loop->gauges->average(which, 2));
    }
    for (size_t i = 0; i < loop->gauges->components(); ++i)
      out += fmt::format("component_{}_queue_avg: {:.2f} {:.2f} {:.2f}\n", loop->gauges->component(i).domain,
                         loop->gauges->component_average(i, 0), loop->gauges->component_average(i, 1),
                         loop->gauges->component_average(i, 2));
  }
  out += fmt::format("tls_handshakes: {}\ntls_failures: {}\nstanzas_out: {}\nconnections_http: {}\nconnections_websocket: {}\n",
                     ctx_->total(&LoopMetrics::tls_handshakes), ctx_->total(&LoopMetrics::tls_failures),
                     ctx_->total(&LoopMetrics::stanzas_out), ctx_->total(&LoopMetrics::connections_http),
                     ctx_->total(&LoopMetrics::connections_websocket));
  out += fmt::format("connections_bosh: {}\n", ctx_->total(&LoopMetrics::connections_bosh));
  out += modules_->counters_text();
  return out;
}

void Server::register_control_commands() {
  WorkerLoop* main = main_.get();
  control::add_account_commands(
      *control_, *accounts_, config_, [main](std::function<void()> task) { main->post(std::move(task)); },
      [this](const std::vector<std::string>& argv) { on_account_change(argv); });
  // issue 11: XEP-0227 export and import, one account per command (parleyctl export/import).
  account_data::add_commands(*control_, *ctx_, [main](std::function<void()> task) { main->post(std::move(task)); });
  control_->add_command("status", "[--json] Show server status and queue lengths",
                        [this](std::vector<std::string> args, control::Reply reply) {
                          if (control::take_json_flag(args)) {
                            std::string fields = control::json_from_key_lines(status_text());  // "{...}"
                            return reply(true, "{\"running\": true" +
                                                   (fields.size() > 2 ? ", " + fields.substr(1) : std::string("}")) +
                                                   "\n");
                          }
                          reply(true, status_text());
                        });
  control_->add_command(
      "connected-users", "[--json] List the full JIDs of bound sessions",
      [this](std::vector<std::string> args, control::Reply reply) {
        bool json = control::take_json_flag(args);
        // Each loop lists its own sessions; the main loop merges the answers.
        struct Collect {
          size_t pending;
          std::vector<std::string> jids;
          control::Reply reply;
          bool json;
        };
        auto collect = std::make_shared<Collect>(Collect{ctx_->loops.size(), {}, std::move(reply), json});
        WorkerLoop* main = main_.get();
        for (auto& loop : ctx_->loops) {
          LoopContext* lc = loop.get();
          lc->loop.post([lc, main, collect] {
            std::vector<std::string> jids;
            for (auto& [id, session] : lc->sessions)
              if (session->online()) jids.push_back(session->jid().full());
            main->post([collect, jids = std::move(jids)] {
              collect->jids.insert(collect->jids.end(), jids.begin(), jids.end());
              if (--collect->pending != 0) return;
              std::sort(collect->jids.begin(), collect->jids.end());
              if (collect->json) {
                std::vector<std::string> items;
                for (const auto& jid : collect->jids) items.push_back(control::json_string(jid));
                return collect->reply(true, control::json_array(items) + "\n");
              }
              std::string body;
              for (const auto& jid : collect->jids) body += jid + "\n";
              collect->reply(true, body);
            });
          });
        }
      });
  auto module_command = [this](std::vector<std::string> args, control::Reply reply) {
    if (args.size() == 3 && args[1] == "list" && control::take_json_flag(args)) {
      // "NAME VERSION (ABI M.N) PATH" lines as objects.
      std::vector<std::string> items;
      std::string text = modules_->list();
      for (size_t at = 0; at < text.size();) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(at, end - at);
        at = end + 1;
        size_t a = line.find(' '), b = line.find(" (ABI "), c = line.find(") ", b == std::string::npos ? 0 : b);
        if (a == std::string::npos || b == std::string::npos || c == std::string::npos) continue;
        control::JsonObject o;
        o.str("name", line.substr(0, a)).str("version", line.substr(a + 1, b - a - 1));
        o.str("abi", line.substr(b + 6, c - b - 6)).str("path", line.substr(c + 2));
        items.push_back(o.text());
      }
      return reply(true, control::json_array(items) + "\n");
    }
    if (args.size() == 2 && args[1] == "list") return reply(true, modules_->list());
    if (args.size() != 3) return reply(false, "usage: module list | load NAME | unload NAME | reload NAME\n");
    auto done = [reply](bool ok, std::string message) {
      if (!message.empty() && message.back() != '\n') message += '\n';
      reply(ok, std::move(message));
    };
    if (args[1] == "load") return modules_->load(args[2], done);
    if (args[1] == "unload") return modules_->unload(args[2], done);
    if (args[1] == "reload") return modules_->reload(args[2], done);
    reply(false, "usage: module list | load NAME | unload NAME | reload NAME\n");
  };
  control_->add_command("module", "module list | load NAME | unload NAME | reload NAME", module_command);
  // Issue 17: the session verbs (kick, connected-users-info, user-sessions, stats,
  // send-message, set-loglevel) and reload-config.
  add_admin_commands(*control_, AdminCommandsDeps{*ctx_, *main_, &started_at_ms_});
  control_->add_command("reload-config",
                        "re-read the configuration: certificates, log level, modules added or removed; "
                        "names what needs a restart",
                        [this](std::vector<std::string>, control::Reply reply) {
                          reload_configuration(config_, *ctx_, *modules_, [reply](bool ok, std::string report) {
                            reply(ok, std::move(report));
                          });
                        });
  control_->add_command("stop", "Stop the server gracefully", [this](std::vector<std::string>, control::Reply reply) {
    reply(true, "stopping\n");
    request_stop();
  });
}

}  // namespace parley
