// c2s_session_fuzz: a whole c2s session fed from fuzz input, without sockets.
//
// A real ServerContext, router, SQLite storage (a temporary directory) and one
// worker loop, as parleyd builds them, with a session started detached: its
// input comes from the fuzzer, its output goes to a tap. So the stream header
// checks, STARTTLS (whose handshake then fails on fuzz bytes), SASL, binding,
// and the stanza path with its routing all see hostile input.
//
// Input: byte 0 picks the mode (odd: the harness first logs in with
// SCRAM-SHA-1 and binds, so the rest reaches the online stanza path; even:
// the rest is the whole stream from its first byte); byte 1 the chunk size
// (1 to 64) the rest is cut into, as TCP would. With bit 1 of byte 0 set the
// connection is an external component's (XEP-0114, core/component) instead:
// odd, the harness first completes its handshake (the rest reaches the
// component's stanza path: the 'from' checks, routing); even, the rest is the
// whole component stream.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/c2s/c2s_stream.hpp"
#include "core/component/component_directory.hpp"
#include "core/component/component_stream.hpp"
#include "core/session/session.hpp"
#include "core/config/config.hpp"
#include "core/control/account_commands.hpp"
#include "core/router/router.hpp"
#include "core/sasl/base64.hpp"
#include "core/server/server_context.hpp"
#include "core/tls/context_store.hpp"
#include "core/tls/self_signed.hpp"
#include "storage/sqlite_account_store.hpp"
#include "storage/storage_pool.hpp"
#include "tools/parley-bench/scram_client.hpp"

namespace {

using namespace parley;

constexpr const char* kUser = "fuzz";
constexpr const char* kPassword = "fuzz-password";

struct Harness {
  std::filesystem::path dir;
  config::Config config;
  std::unique_ptr<ServerContext> ctx;
  std::unique_ptr<storage::StoragePool> storage;
  std::unique_ptr<storage::SqliteAccountStore> accounts;  // on `storage`
  std::unique_ptr<Router> router;
  LoopContext* loop = nullptr;
  bench::SaltedPasswordCache scram_cache;
  std::mutex output_mutex;
  std::map<SessionId, std::string> output;
};

Harness* harness = nullptr;

void tap(SessionId id, std::string_view bytes) {
  std::lock_guard lock(harness->output_mutex);
  std::string& out = harness->output[id];
  if (out.size() < (1u << 20)) out.append(bytes);
}

std::string take_output(SessionId id) {
  std::lock_guard lock(harness->output_mutex);
  std::string out = std::move(harness->output[id]);
  harness->output.erase(id);
  return out;
}

// Runs `task` on the worker loop and waits for it.
template <class F>
void on_loop(F&& task) {
  std::promise<void> done;
  harness->loop->loop.post([&] {
    task();
    done.set_value();
  });
  done.get_future().wait();
}

// Until storage work and the completions it posts back have all run: each
// round waits for the writer and the reader, then for the loop.
void settle() {
  for (int round = 0; round < 3; ++round) {
    std::promise<void> wrote, read;
    harness->storage->write([&](storage::Database&) { wrote.set_value(); });
    harness->storage->read([&](storage::Database&) { read.set_value(); });
    wrote.get_future().wait();
    read.get_future().wait();
    on_loop([] {});
  }
}

void feed(SessionId id, std::string_view bytes, size_t chunk) {
  on_loop([&] {
    for (size_t at = 0; at < bytes.size(); at += chunk) {
      C2sStream* stream = harness->loop->stream_of(id);
      if (stream == nullptr) return;
      stream->feed(bytes.substr(at, chunk));
    }
  });
  settle();
}

std::string between(const std::string& text, std::string_view open, std::string_view close) {
  size_t start = text.find(open);
  if (start == std::string::npos) return {};
  start = text.find('>', start);
  if (start == std::string::npos) return {};
  size_t end = text.find(close, start);
  return end == std::string::npos ? std::string() : text.substr(start + 1, end - start - 1);
}

constexpr std::string_view kHeader =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='localhost' version='1.0'>";

// Stream, SCRAM-SHA-1, a new stream, bind. False if any step did not work.
bool log_in(SessionId id) {
  feed(id, kHeader, 4096);
  bench::ScramClient scram(sasl::Hash::sha1, kUser, kPassword, harness->scram_cache);
  feed(id,
       "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>" + sasl::base64_encode(scram.first()) +
           "</auth>",
       4096);
  auto server_first = sasl::base64_decode(between(take_output(id), "<challenge", "</challenge>"));
  if (!server_first) return false;
  auto client_final = scram.final(*server_first);
  if (!client_final) return false;
  feed(id, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + sasl::base64_encode(*client_final) + "</response>",
       4096);
  if (take_output(id).find("<success") == std::string::npos) return false;
  feed(id, kHeader, 4096);
  feed(id, "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>",
       4096);
  return take_output(id).find("<jid>") != std::string::npos;
}

// ---- the component mode ----

ComponentStream* component_of(SessionId id) {
  LoopContext& lc = *harness->loop;
  return lc.components ? lc.components->by_log_id(id) : nullptr;
}

void feed_component(SessionId id, std::string_view bytes, size_t chunk) {
  on_loop([&] {
    for (size_t at = 0; at < bytes.size(); at += chunk) {
      ComponentStream* stream = component_of(id);
      if (stream == nullptr) return;
      stream->feed(bytes.substr(at, chunk));
    }
  });
  settle();
}

// The component's stream header and handshake. False if it did not work.
bool handshake(SessionId id) {
  feed_component(id,
                 "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' "
                 "to='fuzz.localhost'>",
                 4096);
  std::string out = take_output(id);
  size_t at = out.find(" id='");
  if (at == std::string::npos) return false;
  at += 5;
  size_t end = out.find('\'', at);
  if (end == std::string::npos) return false;
  feed_component(id, "<handshake>" + component::handshake_digest(out.substr(at, end - at), "fuzz-secret") +
                         "</handshake>",
                 4096);
  return take_output(id).find("<handshake/>") != std::string::npos;
}

void run_component(bool handshaken, size_t chunk, std::string_view input) {
  SessionId id = 0;
  on_loop([&] {
    LoopContext& lc = *harness->loop;
    if (!lc.components) lc.components = std::make_unique<ComponentLinks>();
    id = lc.new_session_id();
    const config::Listener& listener = harness->config.listen.back();
    auto stream = std::make_unique<ComponentStream>(*harness->ctx, lc, listener, id);
    ComponentStream* raw = stream.get();
    lc.components->streams.emplace(raw, std::move(stream));
    raw->start_without_socket("127.0.0.1");
  });
  if (!handshaken || handshake(id)) feed_component(id, input, chunk);
  on_loop([&] {
    if (ComponentStream* stream = component_of(id)) stream->close_with_stream_error("system-shutdown");
  });
  for (int i = 0; i < 1000; ++i) {
    bool gone = false;
    on_loop([&] { gone = component_of(id) == nullptr; });
    if (gone) break;
    settle();
  }
  take_output(id);
}

void set_up() {
  spdlog::set_level(spdlog::level::off);
  char pattern[] = "/tmp/parley-c2s-fuzz.XXXXXX";
  if (mkdtemp(pattern) == nullptr) std::abort();
  auto* h = new Harness;
  harness = h;
  h->dir = pattern;
  // SQLite's files go with the directory; Linux keeps them open until exit.
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(harness->dir, ec);
  });
  std::string d = h->dir.string();
  std::string yaml = "hosts: [localhost]\nworkers: 1\ndata_dir: " + d +
                     "\nlisten:\n  - port: 5222\n    ip: 127.0.0.1\n    module: c2s\n    starttls_required: false\n"
                     "  - port: 5347\n    ip: 127.0.0.1\n    module: component\n"
                     "    hosts: {fuzz.localhost: {password: fuzz-secret}}\n"
                     "storage: {type: sqlite, path: " +
                     d + "/fuzz.db, readers: 1}\ncontrol_socket: " + d +
                     // idle_parser_release 0: the parser is freed after every read and made
                     // again (the loop's sweep never runs here), so both stay fuzzed.
                     "/ctl.sock\nlimits: {auth_timeout: 3600, max_stanza_bytes: 65536, idle_parser_release: 0}\n";
  auto config = config::load_config_string(yaml, "fuzz.yml");
  if (!config) std::abort();
  h->config = std::move(*config);
  h->ctx = std::make_unique<ServerContext>(h->config);
  std::string cert = d + "/localhost.pem";
  if (!tls::generate_self_signed("localhost", cert)) std::abort();
  auto store = tls::ContextStore::load({cert}, h->config.hosts);
  if (!store) std::abort();
  h->ctx->set_tls_store(std::shared_ptr<tls::ContextStore>(std::move(*store)));
  h->storage = std::make_unique<storage::StoragePool>(h->config.storage.path, 1);
  if (!h->storage->start()) std::abort();
  h->ctx->storage = h->storage.get();
  h->accounts = std::make_unique<storage::SqliteAccountStore>(*h->storage);
  h->ctx->accounts = h->accounts.get();
  std::promise<bool> registered;
  h->storage->write([&](storage::Database& db) {
    registered.set_value(control::register_account(db, h->config, kUser, "localhost", kPassword).has_value());
  });
  if (!registered.get_future().get()) std::abort();
  h->router = std::make_unique<Router>(*h->ctx);
  h->ctx->router = h->router.get();
  h->ctx->components = std::make_shared<ComponentDirectory>(h->config);
  h->ctx->loops.push_back(std::make_unique<LoopContext>(0));
  h->loop = h->ctx->loops.front().get();
  h->loop->loop.set_thread_init([lc = h->loop] { lc->make_current(); });
  h->loop->loop.start_thread();
  Connection::set_output_tap(&tap);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  set_up();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool logged_in = (data[0] & 1) != 0;
  const size_t chunk = 1 + data[1] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  if ((data[0] & 2) != 0) {
    run_component(logged_in, chunk, input);
    return 0;
  }

  SessionId id = 0;
  on_loop([&] {
    LoopContext& lc = *harness->loop;
    id = lc.new_session_id();
    auto session = std::make_unique<Session>(*harness->ctx, lc, id);
    Session* raw = session.get();
    lc.sessions.emplace(id, std::move(session));
    raw->adopt_stream(std::make_unique<C2sStream>(*harness->ctx, lc, *raw, harness->config.listen.front()));
    raw->stream()->start_without_socket("127.0.0.1");
  });
  if (!logged_in || log_in(id)) feed(id, input, chunk);
  // The end of the connection, then until its handles are closed and it is gone.
  on_loop([&] {
    if (Session* session = harness->loop->find(id)) session->close("system-shutdown");
  });
  for (int i = 0; i < 1000; ++i) {
    bool gone = false;
    on_loop([&] { gone = harness->loop->find(id) == nullptr; });
    if (gone) break;
    settle();
  }
  take_output(id);
  return 0;
}
