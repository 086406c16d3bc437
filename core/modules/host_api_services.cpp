#include "core/modules/host_api_services.hpp"
#include "core/modules/host_api_support.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>

#include "core/addr/jid.hpp"
#include "core/addr/prep.hpp"
#include "core/component/component_directory.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/module_manager.hpp"
#include "core/modules/pending_iqs.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"

namespace parley::host12 {

namespace {

constexpr uint64_t default_iq_timeout_ms = 30'000;
constexpr uint64_t max_iq_timeout_ms = 600'000;

using host_support::el;

// Runs a posted task through the instance's gate: never once stop() began.
void run_task(parley_module* m, parley_task_fn fn, void* arg, uint32_t loop) {
  if (m->gate.starting()) {  // posted from start(), which has not returned: next turn
    m->ctx->loops[loop]->loop.post([m, fn, arg, loop] { run_task(m, fn, arg, loop); });
    return;
  }
  m->gate.run([&] {
    try {
      fn(m->state, arg);
    } catch (...) {
      spdlog::error("module {}: exception escaped a posted task", m->library->name);
    }
  });
  m->tasks_in_flight.fetch_sub(1);
}

}  // namespace

int register_route(parley_module* m, parley_str domain, parley_str name, parley_route_fn fn) {
  // From start() only: the tables that route to it are built after start().
  if (m->started || fn == nullptr) return 0;
  auto prepared = nameprep_domain(from_pstr(domain));
  if (!prepared) {
    spdlog::error("module {}: cannot serve '{}': not a valid domain", m->library->name, from_pstr(domain));
    return 0;
  }
  if (m->ctx->is_local_host(*prepared) || m->manager->serves_route(*prepared) ||
      (m->ctx->components && m->ctx->components->find(*prepared) != nullptr) ||
      std::any_of(m->routes.begin(), m->routes.end(), [&](const ModuleRoute& r) { return r.domain == *prepared; })) {
    spdlog::error("module {}: cannot serve {}: already served", m->library->name, *prepared);
    return 0;
  }
  m->routes.push_back(ModuleRoute{std::move(*prepared), std::string(from_pstr(name)), fn});
  return 1;
}

size_t host_routes(parley_module* m, parley_route_info_fn each, void* arg) {
  LoopContext* loop = LoopContext::current();
  if (loop == nullptr) loop = m->ctx->loops.front().get();
  size_t count = 0;
  for (const auto& [domain, service] : loop->modules->services) {
    if (service.host != m->host) continue;
    ++count;
    if (each) each(arg, to_pstr(domain), to_pstr(service.name));
  }
  // The external components (XEP-0114) connected now on the host's
  // subdomains, as ejabberd lists them (its routes under the host).
  if (m->ctx->components) {
    for (const ComponentEntry* c : m->ctx->components->entries()) {
      if (c->loop.load(std::memory_order_acquire) < 0) continue;
      const std::string& d = c->domain;
      if (d.size() <= m->host.size() + 1 || d.compare(d.size() - m->host.size(), m->host.size(), m->host) != 0 ||
          d[d.size() - m->host.size() - 1] != '.')
        continue;
      ++count;
      if (each) each(arg, to_pstr(d), to_pstr(std::string_view()));  // no name: a component names itself
    }
  }
  return count;
}

uint32_t loop_count(parley_module* m) { return static_cast<uint32_t>(m->ctx->loops.size()); }

int32_t current_loop(parley_module*) {
  LoopContext* loop = LoopContext::current();
  return loop ? static_cast<int32_t>(loop->loop.index()) : -1;
}

int post(parley_module* m, uint32_t loop, parley_task_fn fn, void* arg) {
  if (fn == nullptr || loop >= m->ctx->loops.size()) return 0;
  m->tasks_in_flight.fetch_add(1);
  m->ctx->loops[loop]->loop.post([m, fn, arg, loop] { run_task(m, fn, arg, loop); });
  return 1;
}

int post_to_session(parley_module* m, parley_session_id session, parley_task_fn fn, void* arg) {
  if (session == 0) return 0;
  return post(m, loop_of(session), fn, arg);
}

int send_iq(parley_module* m, parley_element* iq, uint64_t timeout_ms, parley_iq_reply_fn done, void* arg) {
  std::unique_ptr<xml::Element> owned(el(iq));
  LoopContext* loop = LoopContext::current();
  if (!owned || done == nullptr || loop == nullptr || owned->name() != "iq") return 0;
  std::string_view type = owned->attr("type");
  if (type != "get" && type != "set") return 0;
  auto from = Jid::parse(owned->attr("from"));
  auto to = Jid::parse(owned->attr("to"));
  if (!from || !to) return 0;
  // The module speaks for its host, its own services, or an account of its
  // host: never for a client's full JID (the answer would go to the client).
  bool own_domain = !from->has_local() && from->is_bare() &&
                    (from->domain() == m->host ||
                     std::any_of(m->routes.begin(), m->routes.end(),
                                 [&](const ModuleRoute& r) { return r.domain == from->domain(); }));
  bool own_account = from->has_local() && from->is_bare() && from->domain() == m->host;
  if (!own_domain && !own_account) return 0;
  if (timeout_ms == 0) timeout_ms = default_iq_timeout_ms;
  timeout_ms = std::min(timeout_ms, max_iq_timeout_ms);
  std::string id = loop->pending_iqs->add(m, to->full(), to->is_bare() && to->has_local(), timeout_ms, done, arg);
  owned->set_attr("id", id);
  m->ctx->router->route(std::move(*owned), *from, *to, loop->loop.index());
  return 1;
}

uint32_t metric_register(parley_module* m, parley_str name, uint32_t kind, parley_str help) {
  if (m->started) return 0;  // declarations are fixed once start() returned
  return m->metrics.declare(from_pstr(name), kind, from_pstr(help));
}

void metric_record(parley_module* m, uint32_t metric, int64_t value) {
  // Declarations end at the first record (in start(), on the main thread).
  if (!m->started) m->metrics.freeze(m->ctx->loops.size());
  m->metrics.record(metric, value, current_loop(m));
}

}  // namespace parley::host12
