// parley/sdk/broadcast.hpp - Host::route_shared (module.h route_shared, issues
// 15 and 18): one stanza to many full JIDs, only 'to' differing, serialized
// once by the host. Included by host.hpp after class Host.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <string>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/out_bytes.hpp"

namespace parley {

inline bool Host::supports_route_shared() const noexcept { return supports(PARLEY_HOST_ENTRY_END(route_shared)); }

inline void Host::route_shared(Element&& stanza, const std::vector<std::string>& to) const {
  if (!stanza) detail::fail("parley: route_shared of a null element");
  if (!supports_route_shared()) {
    for (const std::string& jid : to) {
      Element copy = stanza.clone();
      copy.set_attr("to", jid);
      route(std::move(copy));
    }
    return;
  }
  std::vector<parley_str> jids;
  jids.reserve(to.size());
  for (const std::string& jid : to) jids.push_back(detail::to_c(jid));
  table()->route_shared(m_, stanza.release(), jids.data(), jids.size());
}

// The bytes `stanza` (a PARLEY_EVENT_STANZA_OUT hook's event stanza) is written
// as, for a filter that keeps them: a broadcast's that no filter changed shares
// the host's one serialization (ABI 1.7); anything else, or an older host,
// serializes it now.
inline bool supports_out_bytes(const Host& host) noexcept {
  return host.supports(PARLEY_HOST_ENTRY_END(out_bytes_release));
}
inline OutBytes stanza_out_bytes(const Host& host, const ElementView& stanza) {
  if (!stanza) detail::fail("parley: stanza_out_bytes of a null element");
  if (!supports_out_bytes(host)) return OutBytes(stanza.serialize());
  return OutBytes(host.api(), host.api()->stanza_out_bytes(host.handle(), stanza.raw()));
}

}  // namespace parley
