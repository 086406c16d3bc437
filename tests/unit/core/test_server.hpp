// A small parleyd for unit tests that need the real core across loops: a
// ServerContext, its Router, SQLite storage in a temporary directory, N worker
// loops on their own threads (each with its own Listener on an ephemeral port
// of 127.0.0.1, so a test chooses the loop a connection lands on), and
// blocking loopback clients driven from the test thread.
//
// Built as core/server/server.cpp builds it, minus the module manager: a test
// installs its own ModuleTables (hooks, services) on each loop before start().
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/c2s/c2s_stream.hpp"
#include "core/config/config.hpp"
#include "core/control/account_commands.hpp"
#include "core/modules/module_instance.hpp"
#include "core/net/listener.hpp"
#include "core/router/router.hpp"
#include "core/sasl/base64.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "storage/sqlite_account_store.hpp"
#include "storage/storage_pool.hpp"

namespace parley::test {

using namespace std::chrono_literals;

// Polls `done` until it holds or `limit` passes; returns its last value. Tests
// wait for conditions, never for a fixed time.
template <class Pred>
bool wait_until(Pred done, std::chrono::milliseconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

inline constexpr std::string_view kPassword = "test-password";

class TestServer {
 public:
  // `tune` may change the parsed config (limits the loader would refuse,
  // such as a tiny max_route_queue) before anything is built on it.
  explicit TestServer(unsigned loops, const std::vector<std::string>& accounts,
                      const std::function<void(config::Config&)>& tune = {}, std::string hosts = "[localhost]") {
    // spdlog's registry is made at its first use; parleyd logs from the main
    // thread before any loop starts, and so must the tests (two loops'
    // first log lines would race to create it).
    spdlog::default_logger_raw();
    char pattern[] = "/tmp/parley-unit.XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    dir_ = pattern;
    std::string d = dir_.string();
    std::string yaml = "hosts: " + hosts + "\nworkers: " + std::to_string(loops) + "\ndata_dir: " + d +
                       "\nlisten:\n  - port: 5222\n    ip: 127.0.0.1\n    module: c2s\n"
                       "    starttls_required: false\n    allow_plain_without_tls: true\n"
                       "storage: {type: sqlite, path: " +
                       d + "/test.db, readers: 1}\ncontrol_socket: " + d + "/ctl.sock\n";
    auto parsed = config::load_config_string(yaml, "test.yml");
    if (!parsed) std::abort();
    config = std::move(*parsed);
    config.listen.front().port = 0;  // an ephemeral port per Listener (the loader wants 1..65535)
    if (tune) tune(config);
    ctx = std::make_unique<ServerContext>(config);
    storage = std::make_unique<storage::StoragePool>(config.storage.path, 1);
    if (!storage->start()) std::abort();
    ctx->storage = storage.get();
    account_store = std::make_unique<storage::SqliteAccountStore>(*storage);
    ctx->accounts = account_store.get();
    for (const auto& user : accounts) {
      std::promise<bool> registered;
      storage->write([&](storage::Database& db) {
        registered.set_value(
            control::register_account(db, config, user, config.hosts.front(), kPassword).has_value());
      });
      if (!registered.get_future().get()) std::abort();
    }
    router = std::make_unique<Router>(*ctx);
    ctx->router = router.get();
    for (unsigned i = 0; i < loops; ++i) ctx->loops.push_back(std::make_unique<LoopContext>(i));
    for (auto& loop : ctx->loops) {
      loop->size_routes(loops);
      LoopContext* lc = loop.get();
      lc->loop.set_thread_init([lc] { lc->make_current(); });
    }
  }

  ~TestServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Listeners on every loop, then the loop threads.
  void start() {
    for (auto& loop : ctx->loops) {
      auto listener = std::make_unique<Listener>(*ctx, *loop, config.listen.front());
      if (!listener->start()) std::abort();
      ports.push_back(listener->port());
      loop->listeners.push_back(std::move(listener));
    }
    for (auto& loop : ctx->loops) loop->loop.start_thread();
    started_ = true;
  }

  // Runs `task` on loop `index` and waits for it.
  template <class F>
  void on_loop(unsigned index, F&& task) {
    std::promise<void> done;
    ctx->loops[index]->loop.post([&] {
      task();
      done.set_value();
    });
    done.get_future().wait();
  }

  // As Server::shutdown: every session closed on its loop, connections gone,
  // then the loops stop; storage last.
  void stop() {
    if (!started_) {
      storage->stop();  // never started the loops: only storage runs
      return;
    }
    started_ = false;
    ctx->shutting_down = true;
    for (auto& loop : ctx->loops) {
      LoopContext* lc = loop.get();
      lc->loop.post([lc] {
        for (auto& listener : lc->listeners) listener->close();
        std::vector<Session*> sessions;
        for (auto& [id, session] : lc->sessions) sessions.push_back(session.get());
        for (Session* session : sessions) session->close("system-shutdown");
      });
    }
    wait_until([&] { return ctx->total(&LoopMetrics::connections_open) == 0; }, 5s);
    for (auto& loop : ctx->loops) loop->loop.stop();
    for (auto& loop : ctx->loops) loop->loop.join();
    for (auto& loop : ctx->loops) {
      loop->sessions.clear();
      loop->orphan_streams.clear();
    }
    storage->stop();
  }

  // The session bound to bare/resource, 0 if none (the session table).
  SessionId session_of(std::string_view bare, std::string_view resource) const {
    auto ref = ctx->sessions.find(bare, resource);
    return ref ? ref->id : 0;
  }

  int64_t connections_open(unsigned loop) const { return ctx->loops[loop]->metrics.connections_open.get(); }

  config::Config config;
  std::unique_ptr<ServerContext> ctx;
  std::unique_ptr<storage::StoragePool> storage;
  std::unique_ptr<storage::SqliteAccountStore> account_store;  // on `storage`
  std::unique_ptr<Router> router;
  std::vector<uint16_t> ports;  // of each loop's Listener

 private:
  std::filesystem::path dir_;
  bool started_ = false;
};

// A fake loaded module for the hooks and completions a test installs: what the
// core reads of an instance (its state, host, name, gate).
inline std::unique_ptr<parley_module> fake_module(ServerContext& ctx, void* state) {
  auto m = std::make_unique<parley_module>();
  m->ctx = &ctx;
  m->library = std::make_shared<ModuleLibrary>();
  m->library->name = "unit_test_module";
  m->host = "localhost";
  m->store_scope = "unit_test_module/localhost";
  m->state = state;
  m->started = true;
  m->gate.open();
  return m;
}

// A blocking client socket on 127.0.0.1, read with a deadline.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads until `needle` appears after what earlier calls consumed; consumes
  // up to its end. False on EOF or after `limit`.
  bool read_until(std::string_view needle, std::chrono::milliseconds limit = 20s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      size_t at = received_.find(needle, consumed_);
      if (at != std::string::npos) {
        consumed_ = at + needle.size();
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[16384];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      received_.append(buf, static_cast<size_t>(n));
    }
  }

  // Everything received so far.
  const std::string& received() const { return received_; }

  // An abrupt end: RST, no </stream:stream> (the server sees a lost connection).
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
  size_t consumed_ = 0;
};

inline constexpr std::string_view kStreamHeader =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='localhost' version='1.0'>";

// Stream, SASL PLAIN, the stream restart. True once authenticated.
inline bool authenticate(Client& c, std::string_view user) {
  if (!c.connected() || !c.send(kStreamHeader) || !c.read_until("</stream:features>")) return false;
  std::string message = std::string(1, '\0') + std::string(user) + '\0' + std::string(kPassword);
  if (!c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + sasl::base64_encode(message) +
              "</auth>"))
    return false;
  if (!c.read_until("<success")) return false;
  return c.send(kStreamHeader) && c.read_until("</stream:features>");
}

// Authenticated and bound to `resource`.
inline bool log_in(Client& c, std::string_view user, std::string_view resource) {
  if (!authenticate(c, user)) return false;
  return c.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
                std::string(resource) + "</resource></bind></iq>") &&
         c.read_until("</jid>");
}

}  // namespace parley::test
