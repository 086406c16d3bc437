// External components (XEP-0114) as routes of the route table: which
// component domains are configured, which loop's stream serves each right
// now, and the per-loop list of component streams.
//
// A component's stream lives on the loop that accepted its connection. A
// stanza for its domain routed on any loop is posted there (counted on the
// route between the two loops, as for a session) and waits in the stream's
// own bounded queue (ComponentStream): one component that does not read never
// blocks a loop, and never another component or session.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/config/config.hpp"
#include "core/session/session_table.hpp"
#include "xml/element.hpp"

namespace parley {

class ServerContext;
class ComponentStream;
struct LoopContext;

namespace component {

// SHA-1 of stream id + secret, lowercase hex (XEP-0114 §3).
std::string handshake_digest(std::string_view stream_id, std::string_view secret);
// Whether `given` (the component's <handshake/> text) is that digest; hex
// digits of either case, compared in constant time.
bool handshake_matches(std::string_view given, std::string_view stream_id, std::string_view secret);

}  // namespace component

// One configured component domain. The map of entries is fixed at start;
// `loop` changes as the component connects and goes (any thread reads it).
struct ComponentEntry {
  std::string domain;
  // The worker loop whose stream serves the domain; -1 while none does.
  std::atomic<int> loop{-1};
  // Written by the serving loop only (a plain store), read by `status`.
  std::atomic<int64_t> queued{0};        // stanzas waiting in its queue
  std::atomic<int64_t> refused_full{0};  // answered resource-constraint (queue full)
};

class ComponentDirectory {
 public:
  explicit ComponentDirectory(const config::Config& config);

  // The configured component of `domain` (prepared), or nullptr.
  ComponentEntry* find(std::string_view domain) const;
  bool empty() const { return entries_.empty(); }
  // Every configured entry, in domain order (status, disco).
  std::vector<const ComponentEntry*> entries() const;

 private:
  std::map<std::string, std::unique_ptr<ComponentEntry>, std::less<>> entries_;
};

// The component streams of one loop (LoopContext::components). Touched only
// on that loop's thread.
struct ComponentLinks {
  ComponentLinks();
  ~ComponentLinks();
  // Every stream of the loop, handshaken or not, until its connection closed.
  std::unordered_map<ComponentStream*, std::unique_ptr<ComponentStream>> streams;
  // The stream serving each domain served from this loop.
  std::unordered_map<std::string, ComponentStream*> serving;

  ComponentStream* by_log_id(SessionId id) const;
  // The loop's throttle timer: a component's read may go on.
  void end_throttle(SessionId id);
  // Shutdown: every stream gets `condition` and closes.
  void close_all(std::string_view condition);
};

// The route table's component route. True if `to` is at a configured
// component's domain: the stanza was taken (queued for it, posted to its
// loop, or answered with an error). False: not a component domain (the
// stanza is untouched).
bool route_to_component(ServerContext& ctx, xml::Element& stanza, const Jid& to, unsigned loop);

}  // namespace parley
