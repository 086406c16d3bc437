#include "core/modules/module_accounts.hpp"

#include <spdlog/spdlog.h>

#include <string>

#include "core/addr/jid.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/session/session.hpp"
#include "core/control/account_commands.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/server/log_format.hpp"
#include "core/server/server_context.hpp"
#include "storage/storage_pool.hpp"

namespace parley {

void announce_account_change(ServerContext& ctx, const Jid& account, bool removed) {
  // Modules hear of it on a worker loop, like every other event.
  LoopContext* loop = ctx.loops.front().get();
  // An entry point like any other: it waits while modules are swapped.
  auto announce = [loop, account, removed] {
    parley_event_args args{};
    args.user = to_pstr(account.local());
    args.host = to_pstr(account.domain());
    run_hooks(*loop->modules, removed ? PARLEY_EVENT_USER_REMOVED : PARLEY_EVENT_USER_REGISTERED, account.domain(),
              args);
  };
  loop->loop.post([loop, announce] { run_or_defer(loop->module_pause, announce); });
  if (!removed) return;
  ctx.known_accounts.remove(account.bare_str());
  for (const SessionRef& ref : ctx.sessions.sessions_of(account.bare_str())) {
    LoopContext* owner = ctx.loops[loop_of(ref.id)].get();
    SessionId id = ref.id;
    owner->loop.post([owner, id] {
      if (Session* session = owner->find(id)) session->close("not-authorized", "Account removed");
    });
  }
}

void close_account_sessions(ServerContext& ctx, const Jid& account, std::string_view text) {
  for (const SessionRef& ref : ctx.sessions.sessions_of(account.bare_str())) {
    LoopContext* owner = ctx.loops[loop_of(ref.id)].get();
    SessionId id = ref.id;
    owner->loop.post([owner, id, text = std::string(text)] {
      if (Session* session = owner->find(id)) session->close("not-authorized", text);
    });
  }
}

namespace {

enum class Operation { create, set_password, remove };

std::string_view condition_of(control::AccountFailure failure) {
  switch (failure) {
    case control::AccountFailure::invalid_user:
      return "jid-malformed";
    case control::AccountFailure::invalid_password:
      return "not-acceptable";
    case control::AccountFailure::exists:
      return "conflict";
    case control::AccountFailure::missing:
      return "item-not-found";
    case control::AccountFailure::invalid_host:
    case control::AccountFailure::storage:
      break;
  }
  return "internal-server-error";
}

// Passwords longer than this are refused before any key derivation: SASLprep
// and PBKDF2 of a megabyte would hold the writer for nothing.
constexpr size_t kMaxPasswordBytes = 1024;

void run(parley_module* m, Operation op, parley_str user_in, parley_str password_in, parley_account_fn done,
         void* arg) {
  LoopContext* loop = LoopContext::current();
  if (loop == nullptr) loop = m->ctx->loops.front().get();
  std::string user(from_pstr(user_in));
  std::string password(from_pstr(password_in));
  std::string host = m->host;
  ServerContext* ctx = m->ctx;
  auto finish = [m, loop, done, arg](std::string condition, std::string account, bool changed, bool removed) {
    loop->loop.post([m, done, arg, condition = std::move(condition), account = std::move(account), changed,
                     removed] {
      if (changed) {
        if (auto jid = Jid::parse(account)) announce_account_change(*m->ctx, *jid, removed);
      }
      if (done != nullptr) m->gate.run([&] { done(arg, parley_str{condition.data(), condition.size()}); });
      m->storage_in_flight.fetch_sub(1);
    });
  };
  // Counted like a storage call: the module is not unloaded while its callback is owed.
  m->storage_in_flight.fetch_add(1);
  if (op != Operation::remove && password.size() > kMaxPasswordBytes) {
    finish("not-acceptable", {}, false, false);
    return;
  }
  ctx->accounts->write([ctx, op, user = std::move(user), password = std::move(password), host = std::move(host),
                        finish](storage::AccountBackend& db) {
    Result<std::string, control::AccountError> result =
        op == Operation::create         ? control::create_account(db, ctx->config, user, host, password)
        : op == Operation::set_password ? control::set_account_password(db, ctx->config, user, host, password)
                                        : control::delete_account(db, ctx->config, user, host);
    if (!result) {
      if (result.error().kind == control::AccountFailure::storage)
        spdlog::error("event=storage_error what=accounts error={}", log_value(result.error().message));
      finish(std::string(condition_of(result.error().kind)), {}, false, false);
      return;
    }
    finish({}, *result, op != Operation::set_password, op == Operation::remove);
  });
}

}  // namespace

void module_account_create(parley_module* m, parley_str user, parley_str password, parley_account_fn done, void* arg) {
  run(m, Operation::create, user, password, done, arg);
}

void module_account_set_password(parley_module* m, parley_str user, parley_str password, parley_account_fn done,
                                 void* arg) {
  run(m, Operation::set_password, user, password, done, arg);
}

void module_account_remove(parley_module* m, parley_str user, parley_account_fn done, void* arg) {
  run(m, Operation::remove, user, parley_str{nullptr, 0}, done, arg);
}

}  // namespace parley
