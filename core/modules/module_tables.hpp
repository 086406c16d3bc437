// What the modules registered, as one immutable snapshot. Each loop holds its
// own pointer and swaps it only on its own thread (a post from the manager),
// so the stanza path reads hooks without locks or atomics.
#pragma once

#include <array>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/modules/http_route_entry.hpp"
#include "parley/module.h"

namespace parley {

struct HookEntry {
  int32_t priority;
  parley_module* instance;
  parley_hook_fn fn;
  // PARLEY_HOOKS_PER_SESSION (an outgoing filter): runs only for the sessions
  // that turned it on (Session::filter_out_on).
  bool per_session = false;
};

struct IqEntry {
  parley_module* instance;
  parley_iq_fn fn;
};

// A domain served by a module (ABI 1.2 register_route).
struct ServiceEntry {
  parley_module* instance;
  parley_route_fn fn;
  std::string host;  // the served host whose instance registered it
  std::string name;
};

struct ModuleTables {
  // hooks[event][host], in priority order.
  std::array<std::map<std::string, std::vector<HookEntry>, std::less<>>, PARLEY_EVENT_COUNT_> hooks;
  // (host, scope, type, xmlns) -> handler
  std::map<std::tuple<std::string, uint32_t, std::string, std::string>, IqEntry, std::less<>> iq;
  // host -> disco#info features declared by the modules of that host
  std::map<std::string, std::vector<std::string>, std::less<>> features;
  // host -> stream features offered before authentication, as XML (ABI 1.1)
  std::map<std::string, std::string, std::less<>> preauth_features;
  // host -> stream features offered after authentication, as XML (ABI 1.1)
  std::map<std::string, std::string, std::less<>> session_features;
  // service domain -> the module serving it (ABI 1.2)
  std::map<std::string, ServiceEntry, std::less<>> services;
  // Every started instance, in load order (/metrics reads their metrics).
  std::vector<parley_module*> instances;
  // HTTP routes of the modules (issue 13), longest prefix first.
  std::vector<HttpRouteEntry> http_routes;

  const HttpRouteEntry* http_route_for(std::string_view path, uint32_t port) const {
    for (const HttpRouteEntry& r : http_routes)
      if (r.matches(path, port)) return &r;
    return nullptr;
  }

  // No allocation: the router asks this for every stanza to a domain that is
  // not a served host.
  const ServiceEntry* service_for(std::string_view domain) const {
    auto it = services.find(domain);
    return it == services.end() ? nullptr : &it->second;
  }

  const std::vector<HookEntry>* hooks_for(parley_event event, std::string_view host) const {
    const auto& by_host = hooks[event];
    auto it = by_host.find(host);
    return it == by_host.end() ? nullptr : &it->second;
  }
  std::string_view preauth_features_for(std::string_view host) const {
    auto it = preauth_features.find(host);
    return it == preauth_features.end() ? std::string_view() : std::string_view(it->second);
  }
  std::string_view session_features_for(std::string_view host) const {
    auto it = session_features.find(host);
    return it == session_features.end() ? std::string_view() : std::string_view(it->second);
  }
  const IqEntry* iq_for(std::string_view host, uint32_t scope, std::string_view type, std::string_view xmlns) const {
    auto it = iq.find(std::make_tuple(std::string(host), scope, std::string(type), std::string(xmlns)));
    return it == iq.end() ? nullptr : &it->second;
  }
};

}  // namespace parley
