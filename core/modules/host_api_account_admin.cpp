#include "core/modules/host_api_account_admin.hpp"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/addr/prep.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_accounts.hpp"
#include "core/modules/module_instance.hpp"
#include "core/server/log_format.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "storage/account_store.hpp"

namespace parley::host_account_admin {

namespace {

LoopContext* calling_loop(parley_module* m) {
  LoopContext* loop = LoopContext::current();
  return loop != nullptr ? loop : m->ctx->loops.front().get();
}

}  // namespace

void account_set_disabled(parley_module* m, parley_str user_in, int disabled, parley_account_fn done, void* arg) {
  LoopContext* loop = calling_loop(m);
  ServerContext* ctx = m->ctx;
  // Counted like a storage call: the module is not unloaded while its callback is owed.
  m->storage_in_flight.fetch_add(1);
  // On the calling loop: the answer, and (disabled) the account's sessions ended,
  // after the flag is committed, so that no login after this sees it unset.
  auto finish = [m, loop, ctx, done, arg](std::string condition, std::string bare_to_end) {
    loop->loop.post([m, ctx, done, arg, condition = std::move(condition), bare_to_end = std::move(bare_to_end)] {
      if (!bare_to_end.empty())
        if (auto jid = Jid::parse(bare_to_end)) close_account_sessions(*ctx, *jid, "Account disabled");
      if (done != nullptr) m->gate.run([&] { done(arg, to_pstr(condition)); });
      m->storage_in_flight.fetch_sub(1);
    });
  };
  auto user = nodeprep(from_pstr(user_in));
  if (!user || user->empty()) return finish("jid-malformed", {});
  std::string host = m->host;
  bool disable = disabled != 0;
  ctx->accounts->write([host, user = std::move(*user), disable, finish](storage::AccountBackend& db) {
    auto changed = db.set_disabled(host, user, disable);
    if (!changed) {
      spdlog::error("event=storage_error what=account_disabled user={}@{} error={}", log_value(user), host,
                    log_value(changed.error().message));
      return finish("internal-server-error", {});
    }
    if (!*changed) return finish("item-not-found", {});
    spdlog::info("event={} user={}@{}", disable ? "account_disabled" : "account_enabled", log_value(user), host);
    finish({}, disable ? user + "@" + host : std::string());
  });
}

void account_list(parley_module* m, int which, parley_str user_in,
                  void (*done)(void* arg, const parley_str* users, size_t count, parley_str condition), void* arg) {
  LoopContext* loop = calling_loop(m);
  m->storage_in_flight.fetch_add(1);
  std::string host = m->host;
  std::string only(from_pstr(user_in));
  if (!only.empty()) {
    auto prepared = nodeprep(only);
    only = prepared && !prepared->empty() ? std::move(*prepared) : std::string("\x01");  // matches none
  }
  m->ctx->accounts->read([m, loop, done, arg, host, which, only](storage::AccountBackend& db) {
    Result<std::vector<std::string>, storage::Error> users = std::vector<std::string>();
    if (only.empty()) {
      users = which == 1 ? db.list_disabled(host) : db.list_users(host);
    } else if (which == 1) {
      users = db.list_disabled(host);
      if (users) std::erase_if(*users, [&](const std::string& u) { return u != only; });
    } else if (only != "\x01") {
      auto exists = db.user_exists(host, only);
      if (!exists) users = unexpected(exists.error());
      else if (*exists) users->push_back(only);
    }
    bool failed = !users;
    if (failed)
      spdlog::error("event=storage_error what=account_list host={} error={}", host, log_value(users.error().message));
    std::vector<std::string> names = failed ? std::vector<std::string>() : std::move(*users);
    loop->loop.post([m, done, arg, failed, names = std::move(names)] {
      std::vector<parley_str> view;
      view.reserve(names.size());
      for (const std::string& n : names) view.push_back(to_pstr(n));
      std::string condition = failed ? "internal-server-error" : "";
      if (done != nullptr) m->gate.run([&] { done(arg, view.data(), view.size(), to_pstr(condition)); });
      m->storage_in_flight.fetch_sub(1);
    });
  });
}

void user_addresses(parley_module* m, parley_str bare_jid,
                    void (*done)(void* arg, const parley_str* full_jids, const parley_str* addresses, size_t count),
                    void* arg) {
  LoopContext* here = calling_loop(m);
  ServerContext* ctx = m->ctx;
  // The answers come back to the calling loop one by one: only it touches this.
  struct Gather {
    size_t pending = 0;
    std::vector<std::string> jids, addresses;
  };
  auto gather = std::make_shared<Gather>();
  auto complete = [m, done, arg](const Gather& g) {
    std::vector<parley_str> jids, addresses;
    for (size_t i = 0; i < g.jids.size(); ++i) {
      jids.push_back(to_pstr(g.jids[i]));
      addresses.push_back(to_pstr(g.addresses[i]));
    }
    if (done != nullptr) m->gate.run([&] { done(arg, jids.data(), addresses.data(), jids.size()); });
    m->storage_in_flight.fetch_sub(1);
  };
  m->storage_in_flight.fetch_add(1);
  auto jid = Jid::parse(from_pstr(bare_jid));
  std::vector<SessionRef> refs;
  std::string bare;
  if (jid && jid->has_local() && jid->domain() == m->host) {
    bare = jid->bare_str();
    refs = ctx->sessions.sessions_of(bare);
  }
  if (refs.empty()) {
    here->loop.post([gather, complete] { complete(*gather); });
    return;
  }
  gather->pending = refs.size();
  for (const SessionRef& ref : refs) {
    LoopContext* owner = ctx->loops[loop_of(ref.id)].get();
    SessionId id = ref.id;
    std::string full = bare + "/" + ref.resource;
    owner->loop.post([owner, here, id, full = std::move(full), gather, complete]() mutable {
      Session* session = owner->find(id);
      bool found = session != nullptr;
      std::string address = found ? session->peer_ip() : std::string();
      here->loop.post([gather, complete, found, full = std::move(full), address = std::move(address)]() mutable {
        if (found) {
          gather->jids.push_back(std::move(full));
          gather->addresses.push_back(std::move(address));
        }
        if (--gather->pending == 0) complete(*gather);
      });
    });
  }
}

}  // namespace parley::host_account_admin
