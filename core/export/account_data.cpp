// core/export/account_data.cpp - see account_data.hpp.
#include "core/export/account_data.hpp"
#include "core/export/account_request.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/control/account_commands.hpp"
#include "core/export/pie_reader.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_accounts.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/module_pause.hpp"
#include "core/sasl/base64.hpp"
#include "core/server/log_format.hpp"
#include "core/server/server_context.hpp"
#include "storage/account_store.hpp"
#include "xml/serializer.hpp"

namespace parley::account_data {
namespace {

uint64_t now_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// Pieces of an export sent to parleyctl at once, at most (smaller with a small
// limits.max_account_part_bytes).
constexpr size_t kPieceBytes = 64 * 1024;

// Export: where the <user/> goes, a piece at a time (the control socket's Exchange, on the
// control loop), and what is buffered for it on the request's loop.
struct Stream {
  Post post;                                    // to the control loop
  std::shared_ptr<control::Exchange> exchange;  // used on the control loop only
  size_t part_bytes = 0;                        // modules wait while out + in_socket reach it
  std::string out;                              // written, not yet sent as a piece
  size_t in_socket = 0;                         // sent, not yet written to the socket
  size_t total = 0;                             // bytes sent
  size_t peak = 0;                              // most bytes buffered at once (logged)
  bool gone = false;                            // the reader went away
};

// One export or import of one account. Its fields are touched on `loop` only; the
// registry's lock guards the map alone (two servers in one process, in tests).
struct Request {
  uint64_t id = 0;
  LoopContext* loop = nullptr;
  bool in_hooks = false;
  size_t holds = 0;
  // Export: the <user/> goes to parleyctl in pieces as it fills (Stream); the elements
  // account_data_add adds while a container streams, and the containers other than the
  // first, are held and written after it.
  std::shared_ptr<Stream> stream;
  std::string held;
  struct Container {
    std::string name;
    std::string ns;
    std::string children;
  };
  std::vector<Container> containers;
  std::string open_name, open_ns;  // the container being streamed (the first one used)
  size_t held_bytes = 0;           // held and every container's, against kMaxHeldBytes
  std::vector<std::string> summaries;
  std::string error;
  uint64_t progress_ms = 0;  // last add, done or write: a request idle this long fails
  struct Waiter {
    parley_module* m;
    void (*ready)(void*, void*);
    void* arg;
  };
  std::vector<Waiter> waiters;  // account_data_when_ready
  std::function<void(Request&)> on_finish;
};

std::mutex g_mu;
std::unordered_map<uint64_t, std::shared_ptr<Request>> g_requests;
std::atomic<uint64_t> g_next_id{1};

std::shared_ptr<Request> find(uint64_t id) {
  std::lock_guard lock(g_mu);
  auto it = g_requests.find(id);
  return it == g_requests.end() ? nullptr : it->second;
}

void run_waiter(const Request::Waiter& w) {
  w.m->gate.run([&] {
    try {
      w.ready(w.m->state, w.arg);
    } catch (...) {
    }
  });
  w.m->storage_in_flight.fetch_sub(1);
}

void finish(const std::shared_ptr<Request>& req) {
  {
    std::lock_guard lock(g_mu);
    if (g_requests.erase(req->id) == 0) return;  // finished already
  }
  auto on_finish = std::move(req->on_finish);
  if (on_finish) on_finish(*req);
  // Owed exactly once, also when the request ended under a waiting module (timeout).
  for (const auto& w : req->waiters) req->loop->loop.post([w] { run_waiter(w); });
  req->waiters.clear();
}

// Sends what the export wrote so far as one piece.
void send_out(const std::shared_ptr<Request>& req);

// Runs the modules waiting for room (account_data_when_ready) once the bytes on their way
// to parleyctl are under the bound, or at once if the request failed (their next add is
// refused then).
void wake(const std::shared_ptr<Request>& req) {
  if (req->waiters.empty()) return;
  Stream* s = req->stream.get();
  if (s && req->error.empty() && s->out.size() + s->in_socket >= s->part_bytes) {
    if (s->in_socket == 0) send_out(req);  // nothing else would make room
    return;
  }
  auto waiters = std::move(req->waiters);
  req->waiters.clear();
  for (const auto& w : waiters) run_waiter(w);
}

// A piece written to the socket (ok) or dropped with the connection: on the request's loop.
void piece_written(uint64_t id, size_t n, bool ok) {
  auto req = find(id);
  if (!req || !req->stream) return;
  req->stream->in_socket -= n;
  req->progress_ms = now_ms();
  if (!ok && !req->stream->gone) {
    req->stream->gone = true;
    if (req->error.empty()) req->error = "the export's reader went away";
  }
  wake(req);
}

void send_out(const std::shared_ptr<Request>& req) {
  Stream& s = *req->stream;
  if (s.out.empty() || s.gone) return;
  size_t n = s.out.size();
  s.in_socket += n;
  s.total += n;
  std::string piece;
  piece.swap(s.out);
  uint64_t id = req->id;
  LoopContext* loop = req->loop;
  s.post([exchange = s.exchange, piece = std::move(piece), id, loop, n]() mutable {
    bool sent = exchange->send_piece(std::move(piece), [id, loop, n](bool ok) {
      loop->loop.post([id, n, ok] { piece_written(id, n, ok); });
    });
    if (!sent) loop->loop.post([id, n] { piece_written(id, n, false); });
  });
}

// Export: `text` goes out with the stream (sent once a piece's worth is there).
void stream_out(const std::shared_ptr<Request>& req, const std::string& text) {
  Stream& s = *req->stream;
  s.out += text;
  s.peak = std::max(s.peak, s.out.size() + s.in_socket + req->held_bytes);
  if (s.out.size() >= std::min(kPieceBytes, s.part_bytes)) send_out(req);
}

// Requests of this loop that waited past the timeout fail: a module stopped with a hold
// (its completion never comes) must not keep the operator waiting forever.
void sweep(LoopContext* loop) {
  std::vector<std::shared_ptr<Request>> expired;
  uint64_t now = now_ms();
  {
    std::lock_guard lock(g_mu);
    for (auto& [id, req] : g_requests)
      if (req->loop == loop && now - req->progress_ms > kRequestTimeoutMs) expired.push_back(req);
  }
  for (auto& req : expired) {
    if (req->error.empty()) req->error = "a module did not answer within " + std::to_string(kRequestTimeoutMs / 1000) + " s";
    finish(req);
  }
}

std::string module_name(parley_module* m) { return m && m->library ? m->library->name : std::string("a module"); }

// Runs `event` for `account` on the first worker loop; on_finish runs there once every
// hold is done.
void run_request(ServerContext& ctx, parley_event event, const Jid& account, std::shared_ptr<xml::Element> acc,
                 std::function<void(Request&)> on_finish, std::function<void(Request&)> setup = {}) {
  LoopContext* loop = ctx.loops.front().get();
  auto task = [loop, event, account, acc, on_finish = std::move(on_finish), setup = std::move(setup)]() mutable {
    sweep(loop);
    auto req = std::make_shared<Request>();
    req->id = g_next_id.fetch_add(1);
    req->loop = loop;
    req->progress_ms = now_ms();
    if (setup) setup(*req);
    req->on_finish = std::move(on_finish);
    {
      std::lock_guard lock(g_mu);
      g_requests.emplace(req->id, req);
    }
    parley_event_args args{};
    args.size = sizeof args;
    args.event = event;
    args.session = req->id;
    args.acc = acc ? reinterpret_cast<parley_element*>(acc.get()) : nullptr;
    args.user = to_pstr(account.local());
    args.host = to_pstr(account.domain());
    req->in_hooks = true;
    run_hooks(*loop->modules, event, account.domain(), args);
    req->in_hooks = false;
    if (req->holds == 0) finish(req);
  };
  loop->loop.post([loop, task = std::move(task)]() mutable { run_or_defer(loop->module_pause, std::move(task)); });
}

std::shared_ptr<Request> here(uint64_t id) {
  auto req = find(id);
  if (!req || LoopContext::current() != req->loop) return nullptr;
  return req;
}

// ---- credentials ----------------------------------------------------------------------

void write_scram(std::string& out, const storage::ScramRecord& r) {
  out += "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='";
  xml::escape_attr_to(out, r.mechanism);
  out += "'><iter-count>" + std::to_string(r.iterations) + "</iter-count><salt>" + sasl::base64_encode(r.salt) +
         "</salt><server-key>" + sasl::base64_encode(r.server_key) + "</server-key><stored-key>" +
         sasl::base64_encode(r.stored_key) + "</stored-key></scram-credentials>";
}


// ---- export-user USER HOST --------------------------------------------------------------

// The rest of the <user/> once every module is done: the streamed container closed, then
// what was held.
std::string closing(Request& req) {
  std::string tail;
  if (!req.open_name.empty()) tail += "</" + req.open_name + ">";
  tail += req.held;
  for (const auto& c : req.containers) {
    tail += "<";
    tail += c.name;
    tail += " xmlns='";
    xml::escape_attr_to(tail, c.ns);
    tail += "'>";
    tail += c.children;
    tail += "</" + c.name + ">";
  }
  tail += "</user>";
  return tail;
}

// The answer is streamed (control_server.hpp): the <user/> in pieces as modules add to it,
// paced by parleyctl's reading, then "ok" (or "error" and why: parleyctl drops the file).
void export_user(ServerContext& ctx, const Post& post, const std::vector<std::string>& args,
                 std::shared_ptr<control::Exchange> exchange) {
  auto reply = [exchange](bool ok, std::string text) { exchange->finish(ok, std::move(text)); };
  if (args.size() != 3) return reply(false, "usage: export-user USER HOST");
  auto jid = Jid::make(args[1], args[2]);
  if (!jid || !jid->has_local()) return reply(false, "invalid account '" + args[1] + "@" + args[2] + "'");
  if (!served(ctx, jid->domain())) return reply(false, "unknown host '" + jid->domain() + "'");
  Jid account = *jid;
  ServerContext* c = &ctx;
  auto stream = std::make_shared<Stream>();
  stream->post = post;
  stream->exchange = exchange;
  stream->part_bytes = std::max<size_t>(ctx.config.limits.max_account_part_bytes, 1);
  ctx.accounts->read([c, post, account, reply, stream](storage::AccountBackend& db) {
    auto fail = [&](std::string text) { post([reply, text] { reply(false, text); }); };
    auto exists = db.user_exists(account.domain(), account.local());
    if (!exists) return fail("database error: " + exists.error().message);
    if (!*exists) return fail("no account " + account.bare_str());
    std::string head = "<user xmlns='urn:xmpp:pie:0' name='";
    xml::escape_attr_to(head, account.local());
    head += "'>";
    for (const char* mech : {"SCRAM-SHA-1", "SCRAM-SHA-256"}) {
      auto rec = db.get_credentials(account.domain(), account.local(), mech);
      if (!rec) return fail("database error: " + rec.error().message);
      if (*rec) write_scram(head, **rec);
    }
    stream->out = std::move(head);
    run_request(
        *c, PARLEY_EVENT_ACCOUNT_EXPORT, account, nullptr,
        [post, reply, account, stream](Request& req) {
          if (!req.error.empty()) {
            std::string text = account.bare_str() + ": " + req.error;
            return post([reply, text] { reply(false, text); });
          }
          stream->out += closing(req);
          stream->peak = std::max(stream->peak, stream->out.size() + stream->in_socket);
          // The request is out of the registry now: its last piece is sent by hand.
          stream->total += stream->out.size();
          spdlog::info("event=account_exported user={} bytes={} peak_buffered={}", log_value(account.bare_str()),
                       stream->total, stream->peak);
          post([reply, stream, piece = std::move(stream->out)]() mutable {
            if (!piece.empty()) stream->exchange->send_piece(std::move(piece));
            reply(true, {});
          });
        },
        [stream](Request& req) { req.stream = stream; });
  });
}

}  // namespace

bool served(const ServerContext& ctx, const std::string& host) {
  return std::find(ctx.config.hosts.begin(), ctx.config.hosts.end(), host) != ctx.config.hosts.end();
}

void run_import_request(ServerContext& ctx, const Jid& account, std::shared_ptr<xml::Element> user,
                        std::function<void(std::string error, std::vector<std::string> summaries)> done) {
  run_request(ctx, PARLEY_EVENT_ACCOUNT_IMPORT, account, std::move(user),
              [done = std::move(done)](Request& req) { done(req.error, req.summaries); });
}

void add_commands(control::ControlServer& server, ServerContext& ctx, Post post_to_control_loop) {
  ServerContext* c = &ctx;
  // An import request carries one part of an account (limits.max_account_part_bytes of
  // the file, which its serialization may exceed: escapes, namespace declarations).
  server.set_max_request_bytes(request_bound(ctx));
  server.add_exchange_command(
      "export-user", "USER HOST: the account as XEP-0227 <user/>, streamed (parleyctl export)",
      [c, post_to_control_loop](std::vector<std::string> args, std::shared_ptr<control::Exchange> exchange) {
        export_user(*c, post_to_control_loop, args, std::move(exchange));
      });
  server.add_exchange_command(
      "import-user", "DOCUMENT [--replace] [--parts]: one XEP-0227 account (parleyctl import)",
      [c, post_to_control_loop](std::vector<std::string> args, std::shared_ptr<control::Exchange> exchange) {
        import_user(*c, post_to_control_loop, std::move(args), std::move(exchange));
      });
}

int hold(parley_module*, uint64_t request) {
  auto req = here(request);
  if (!req || !req->in_hooks) return 0;
  ++req->holds;
  return 1;
}

namespace {

// Runs `fn` on the request's loop: now if this is it, else posted there (a module whose
// per-user work runs on another worker loop answers from there).
bool on_request_loop(uint64_t request, std::function<void(const std::shared_ptr<Request>&)> fn) {
  auto req = find(request);
  if (!req || LoopContext::current() == nullptr) return false;
  if (LoopContext::current() == req->loop) {
    fn(req);
    return true;
  }
  req->loop->loop.post([req, fn = std::move(fn)] { fn(req); });
  return true;
}

}  // namespace

namespace {

// Bytes held back (added while a container streams) stay bounded: past kMaxHeldBytes the
// export fails rather than grow without end.
bool hold_bytes(const std::shared_ptr<Request>& req, const std::string& name, size_t n) {
  if (req->held_bytes + n > kMaxHeldBytes) {
    req->error = name + ": more than " + std::to_string(kMaxHeldBytes) +
                 " bytes of the account's data added while a list of it was being written";
    return false;
  }
  req->held_bytes += n;
  return true;
}

// After an add on the request's loop: whether the request still takes more (0 tells the
// module at once that it failed); from another loop it is not known yet (1).
bool still_going(uint64_t request) {
  auto req = find(request);
  if (!req) return false;
  if (LoopContext::current() != req->loop) return true;
  return req->error.empty();
}

}  // namespace

int add(parley_module* m, uint64_t request, const parley_element* element) {
  if (element == nullptr) return 0;
  // Serialized now: the element is borrowed for the call only.
  std::string text;
  xml::SerializeContext sc;
  sc.default_ns = pie::kPieNs;
  sc.stream_prefix = false;
  xml::serialize_to(text, *reinterpret_cast<const xml::Element*>(element), sc);
  std::string name = module_name(m);
  return on_request_loop(request, [text = std::move(text), name](const std::shared_ptr<Request>& req) {
           if (!req->error.empty() || (!req->in_hooks && req->holds == 0) || !req->stream) return;
           req->progress_ms = now_ms();
           if (req->open_name.empty()) return stream_out(req, text);
           // A container streams: this goes after it.
           if (!hold_bytes(req, name, text.size())) return;
           req->held += text;
         }) && still_going(request)
             ? 1
             : 0;
}

namespace {

// An XML name as a container's may be (the module writes it; the core writes the tags):
// a letter or '_' first, then letters, digits, '_', '-', '.'; no prefix.
bool plain_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!letter(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

}  // namespace

int add_to(parley_module* m, uint64_t request, parley_str name_in, parley_str ns_in, const parley_element* element) {
  std::string container(from_pstr(name_in));
  std::string ns(from_pstr(ns_in));
  if (element == nullptr || !plain_name(container) || ns.empty()) return 0;
  // Serialized now (borrowed for the call), in the container's namespace.
  std::string text;
  xml::SerializeContext sc;
  sc.default_ns = ns;
  sc.stream_prefix = false;
  xml::serialize_to(text, *reinterpret_cast<const xml::Element*>(element), sc);
  std::string name = module_name(m);
  return on_request_loop(request, [text = std::move(text), name, container = std::move(container),
                                   ns = std::move(ns)](const std::shared_ptr<Request>& req) {
           if (!req->error.empty() || (!req->in_hooks && req->holds == 0) || !req->stream) return;
           req->progress_ms = now_ms();
           // The first container streams; the others are held until it is complete.
           if (req->open_name.empty()) {
             req->open_name = container;
             req->open_ns = ns;
             std::string tag = "<" + container + " xmlns='";
             xml::escape_attr_to(tag, ns);
             tag += "'>";
             stream_out(req, tag);
           }
           if (req->open_name == container && req->open_ns == ns) return stream_out(req, text);
           if (!hold_bytes(req, name, text.size())) return;
           auto it = std::find_if(req->containers.begin(), req->containers.end(),
                                  [&](const Request::Container& c) { return c.name == container && c.ns == ns; });
           if (it == req->containers.end()) it = req->containers.insert(req->containers.end(), {container, ns, {}});
           it->children += text;
         }) && still_going(request)
             ? 1
             : 0;
}

int done(parley_module* m, uint64_t request, parley_str summary, parley_str error) {
  std::string name = module_name(m);
  std::string sum(from_pstr(summary));
  std::string err(from_pstr(error));
  return on_request_loop(request, [name, sum, err](const std::shared_ptr<Request>& req) {
           if (req->holds == 0) return;
           --req->holds;
           req->progress_ms = now_ms();
           if (!err.empty()) {
             if (req->error.empty()) req->error = name + ": " + err;
           } else if (!sum.empty()) {
             req->summaries.push_back(sum);
           }
           if (req->holds == 0 && !req->in_hooks) finish(req);
         })
             ? 1
             : 0;
}

}  // namespace parley::account_data

namespace parley::account_data {

int when_ready(parley_module* m, uint64_t request, void (*ready)(void*, void*), void* arg) {
  if (m == nullptr || ready == nullptr) return 0;
  auto req = here(request);
  if (!req || !req->stream || req->holds == 0) return 0;
  // Counted as a storage completion: the module is not unloaded while it is owed.
  m->storage_in_flight.fetch_add(1);
  req->waiters.push_back(Request::Waiter{m, ready, arg});
  req->loop->loop.post([request] {
    if (auto r = find(request)) wake(r);
  });
  return 1;
}

}  // namespace parley::account_data
