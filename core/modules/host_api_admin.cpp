#include "core/modules/host_api_admin.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/server/server_context.hpp"
#include "storage/account_store.hpp"

namespace parley::host_admin {

namespace {

// The admins are kept as the configuration wrote them (lowercased ASCII); both
// sides go through the server's JID preparation before they are compared.
bool listed_admin(const std::vector<std::string>& admins, const std::string& bare) {
  return std::any_of(admins.begin(), admins.end(), [&](const std::string& admin) {
    auto prepared = Jid::parse(admin);
    return prepared && prepared->bare_str() == bare;
  });
}

}  // namespace

int is_admin(parley_module* m, parley_str jid_text) {
  auto jid = Jid::parse(from_pstr(jid_text));
  if (!jid || !jid->has_local()) return 0;
  std::string bare = jid->bare_str();
  const config::Config& config = m->ctx->config;
  if (listed_admin(config.admins, bare)) return 1;
  auto it = config.host_admins.find(m->host);
  return it != config.host_admins.end() && listed_admin(it->second, bare) ? 1 : 0;
}

size_t host_sessions(parley_module* m, parley_session_fn each, void* arg) {
  // Copied out first: `each` is module code and must not run under a shard lock.
  struct Found {
    std::string full;
    SessionId id;
    bool available;
    int priority;
  };
  std::vector<Found> found;
  m->ctx->sessions.for_each_in_domain(m->host, [&](std::string_view bare, const SessionRef& ref) {
    found.push_back(Found{std::string(bare) + "/" + ref.resource, ref.id, ref.available, ref.priority});
  });
  if (each != nullptr)
    for (const Found& f : found) each(arg, f.id, to_pstr(f.full), f.available ? 1 : 0, f.priority);
  return found.size();
}

void account_count(parley_module* m, void (*done)(void* arg, int64_t count, parley_str condition), void* arg) {
  LoopContext* loop = LoopContext::current();
  if (loop == nullptr) loop = m->ctx->loops.front().get();
  // Counted like a storage call: the module is not unloaded while its callback is owed.
  m->storage_in_flight.fetch_add(1);
  std::string host = m->host;
  m->ctx->accounts->read([m, loop, done, arg, host](storage::AccountBackend& db) {
    auto users = db.list_users(host);
    int64_t count = users ? static_cast<int64_t>(users->size()) : -1;
    if (!users) spdlog::error("event=storage_error what=account_count host={} error=\"{}\"", host, users.error().message);
    loop->loop.post([m, done, arg, count] {
      std::string condition = count < 0 ? "internal-server-error" : "";
      if (done != nullptr) m->gate.run([&] { done(arg, count, to_pstr(condition)); });
      m->storage_in_flight.fetch_sub(1);
    });
  });
}

int server_stop(parley_module* m) {
  spdlog::info("module {} asks for a shutdown", m->library->name);
  if (m->ctx->request_stop) m->ctx->request_stop();
  return 1;
}

}  // namespace parley::host_admin
