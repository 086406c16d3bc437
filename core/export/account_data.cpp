// core/export/account_data.cpp - see account_data.hpp.
#include "core/export/account_data.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
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

// One export or import of one account. Its fields are touched on `loop` only; the
// registry's lock guards the map alone (two servers in one process, in tests).
struct Request {
  uint64_t id = 0;
  LoopContext* loop = nullptr;
  bool in_hooks = false;
  size_t holds = 0;
  std::string children;  // export: the serialized elements modules added
  std::vector<std::string> summaries;
  std::string error;
  uint64_t started_ms = 0;
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

void finish(const std::shared_ptr<Request>& req) {
  {
    std::lock_guard lock(g_mu);
    if (g_requests.erase(req->id) == 0) return;  // finished already
  }
  auto on_finish = std::move(req->on_finish);
  if (on_finish) on_finish(*req);
}

// Requests of this loop that waited past the timeout fail: a module stopped with a hold
// (its completion never comes) must not keep the operator waiting forever.
void sweep(LoopContext* loop) {
  std::vector<std::shared_ptr<Request>> expired;
  uint64_t now = now_ms();
  {
    std::lock_guard lock(g_mu);
    for (auto& [id, req] : g_requests)
      if (req->loop == loop && now - req->started_ms > kRequestTimeoutMs) expired.push_back(req);
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
                 std::function<void(Request&)> on_finish) {
  LoopContext* loop = ctx.loops.front().get();
  auto task = [loop, event, account, acc, on_finish = std::move(on_finish)]() mutable {
    sweep(loop);
    auto req = std::make_shared<Request>();
    req->id = g_next_id.fetch_add(1);
    req->loop = loop;
    req->started_ms = now_ms();
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

Result<std::vector<storage::ScramRecord>, std::string> read_scram(const xml::Element& user) {
  std::vector<storage::ScramRecord> records;
  for (const xml::Element* c : user.children()) {
    if (c->name() != "scram-credentials" || c->xmlns() != pie::kScramNs) continue;
    storage::ScramRecord r;
    r.mechanism = std::string(c->attr("mechanism"));
    size_t key_bytes = r.mechanism == "SCRAM-SHA-1" ? 20 : r.mechanism == "SCRAM-SHA-256" ? 32 : 0;
    if (key_bytes == 0) continue;  // a mechanism Parley does not offer (SCRAM-SHA-512, ...): skipped
    auto text = [&](std::string_view name) { return c->child_text(name, pie::kScramNs); };
    std::string iter = text("iter-count");
    uint64_t n = 0;
    bool digits = !iter.empty() && iter.size() <= 9 && std::all_of(iter.begin(), iter.end(), [](char ch) {
      return ch >= '0' && ch <= '9';
    });
    if (digits) n = std::stoull(iter);
    if (!digits || n == 0) return unexpected("bad <iter-count/> in " + r.mechanism + " credentials");
    r.iterations = static_cast<uint32_t>(n);
    auto salt = sasl::base64_decode(text("salt"));
    auto server_key = sasl::base64_decode(text("server-key"));
    auto stored_key = sasl::base64_decode(text("stored-key"));
    if (!salt || salt->empty()) return unexpected("bad <salt/> in " + r.mechanism + " credentials");
    if (!server_key || server_key->size() != key_bytes || !stored_key || stored_key->size() != key_bytes)
      return unexpected("bad keys in " + r.mechanism + " credentials");
    r.salt = std::move(*salt);
    r.server_key = std::move(*server_key);
    r.stored_key = std::move(*stored_key);
    auto same = std::find_if(records.begin(), records.end(),
                             [&](const storage::ScramRecord& o) { return o.mechanism == r.mechanism; });
    if (same != records.end()) return unexpected("two " + r.mechanism + " credentials");
    records.push_back(std::move(r));
  }
  return records;
}

bool served(const ServerContext& ctx, const std::string& host) {
  return std::find(ctx.config.hosts.begin(), ctx.config.hosts.end(), host) != ctx.config.hosts.end();
}

using Post = std::function<void(std::function<void()>)>;

// ---- export-user USER HOST --------------------------------------------------------------

void export_user(ServerContext& ctx, const Post& post, const std::vector<std::string>& args, control::Reply reply) {
  if (args.size() != 3) return reply(false, "usage: export-user USER HOST");
  auto jid = Jid::make(args[1], args[2]);
  if (!jid || !jid->has_local()) return reply(false, "invalid account '" + args[1] + "@" + args[2] + "'");
  if (!served(ctx, jid->domain())) return reply(false, "unknown host '" + jid->domain() + "'");
  Jid account = *jid;
  ServerContext* c = &ctx;
  ctx.accounts->read([c, post, account, reply](storage::AccountBackend& db) {
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
    run_request(*c, PARLEY_EVENT_ACCOUNT_EXPORT, account, nullptr,
                [post, reply, head = std::move(head), account](Request& req) {
                  if (!req.error.empty()) {
                    std::string text = account.bare_str() + ": " + req.error;
                    return post([reply, text] { reply(false, text); });
                  }
                  std::string body = head + req.children + "</user>";
                  post([reply, body = std::move(body)] { reply(true, body); });
                });
  });
}

// ---- import-user DOCUMENT [--replace] -----------------------------------------------------

struct Import {
  Jid account;
  std::shared_ptr<xml::Element> user;
  std::optional<std::string> password;
  std::vector<storage::ScramRecord> records;
  bool replace = false;
};

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

void import_user(ServerContext& ctx, const Post& post, const std::vector<std::string>& args, control::Reply reply) {
  bool replace = args.size() == 3 && args[2] == "--replace";
  if (args.size() != 2 && !replace) return reply(false, "usage: import-user DOCUMENT [--replace]");
  std::vector<pie::PieUser> users;
  auto read = pie::read_pie(args[1], [&](pie::PieUser&& u) {
    users.push_back(std::move(u));
    return users.size() <= 1;
  });
  if (!read) return reply(false, "malformed document: " + read.error().to_string());
  if (users.size() != 1) return reply(false, "the document must hold exactly one <user/>");
  pie::PieUser& u = users.front();
  auto jid = Jid::make(u.name, u.host);
  if (!jid || !jid->has_local()) return reply(false, "invalid account '" + u.name + "@" + u.host + "'");
  if (!served(ctx, jid->domain())) return reply(false, jid->bare_str() + ": unknown host '" + jid->domain() + "'");
  auto imp = std::make_shared<Import>();
  imp->account = *jid;
  imp->replace = replace;
  if (const std::string* pw = u.user.find_attr("password")) imp->password = *pw;
  auto records = read_scram(u.user);
  if (!records) return reply(false, jid->bare_str() + ": " + records.error());
  imp->records = std::move(*records);
  imp->user = std::make_shared<xml::Element>(std::move(u.user));

  ServerContext* c = &ctx;
  ctx.accounts->write([c, post, imp, reply](storage::AccountBackend& db) {
    const Jid& account = imp->account;
    auto fail = [&](std::string text) { post([reply, text] { reply(false, text); }); };
    auto exists = db.user_exists(account.domain(), account.local());
    if (!exists) return fail(account.bare_str() + ": database error: " + exists.error().message);
    bool removed = false;
    if (*exists) {
      if (!imp->replace) {
        std::string text = "skipped " + account.bare_str() + ": the account exists (--replace replaces it)";
        return post([reply, text] { reply(true, text); });
      }
      auto r = db.remove_user(account.domain(), account.local());
      if (!r) return fail(account.bare_str() + ": database error: " + r.error().message);
      removed = true;
    }
    std::string credentials;
    if (imp->password) {
      // A plain password: hashed here, both mechanisms (as register does).
      auto created = control::create_account(db, c->config, account.local(), account.domain(), *imp->password);
      if (!created) return fail(account.bare_str() + ": " + created.error().message);
      credentials = "password";
    } else {
      auto created = db.create_user(account.domain(), account.local(), imp->records);
      if (!created) return fail(account.bare_str() + ": database error: " + created.error().message);
      credentials = imp->records.empty() ? "no credentials" : std::to_string(imp->records.size()) + " SCRAM records";
    }
    // On the control loop, as register and unregister: modules hear of the removal (they
    // clear the old data, queued on their stores before the import's writes) and of the
    // new account, then the import runs on the first worker loop after both.
    post([c, post, imp, reply, removed, credentials] {
      if (removed) announce_account_change(*c, imp->account, true);
      announce_account_change(*c, imp->account, false);
      run_request(*c, PARLEY_EVENT_ACCOUNT_IMPORT, imp->account, imp->user,
                  [c, post, imp, reply, credentials](Request& req) {
                    const Jid& account = imp->account;
                    if (req.error.empty()) {
                      std::vector<std::string> parts{credentials};
                      parts.insert(parts.end(), req.summaries.begin(), req.summaries.end());
                      std::string text = "imported " + account.bare_str() + ": " + joined(parts);
                      return post([reply, text] { reply(true, text); });
                    }
                    // Nothing half-imported: the account goes again, and with it (USER_REMOVED)
                    // whatever the modules stored before one failed.
                    std::string text = account.bare_str() + ": " + req.error + "; the account was not imported";
                    c->accounts->write([c, post, imp, reply, text](storage::AccountBackend& db) {
                      auto r = db.remove_user(imp->account.domain(), imp->account.local());
                      if (!r) spdlog::error("event=storage_error what=accounts error={}", log_value(r.error().message));
                      post([c, imp, reply, text] {
                        announce_account_change(*c, imp->account, true);
                        reply(false, text);
                      });
                    });
                  });
    });
  });
}

}  // namespace

void add_commands(control::ControlServer& server, ServerContext& ctx, Post post_to_control_loop) {
  ServerContext* c = &ctx;
  server.add_command("export-user", "USER HOST: the account as XEP-0227 <user/> (parleyctl export)",
                     [c, post_to_control_loop](std::vector<std::string> args, control::Reply reply) {
                       export_user(*c, post_to_control_loop, args, std::move(reply));
                     });
  server.add_command("import-user", "DOCUMENT [--replace]: one XEP-0227 account (parleyctl import)",
                     [c, post_to_control_loop](std::vector<std::string> args, control::Reply reply) {
                       import_user(*c, post_to_control_loop, args, std::move(reply));
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
           if (!req->error.empty() || (!req->in_hooks && req->holds == 0)) return;
           if (req->children.size() + text.size() > kMaxExportBytes) {
             req->error = name + ": the account's data is larger than " + std::to_string(kMaxExportBytes) + " bytes";
             return;
           }
           req->children += text;
         })
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
