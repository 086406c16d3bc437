// A Session is the XMPP entity a client stream creates: its id (which module
// code keeps), its host and JID (bare after SASL, full once bound), its own
// presence, the modules' per-session slots and its outbound path. Its stream
// (the c2s state machine over a Connection) is attached or, after a module
// kept it on a lost connection (PARLEY_EVENT_SESSION_CLOSING), detached: then
// stanzas for it wait in a bounded queue until a new connection re-attaches
// (session_attach), the detach timeout passes, or the queue overflows.
//
// A session lives on one loop for its whole life (its id encodes the loop) and
// is owned by that loop's LoopContext::sessions. A connection that resumes it
// from another loop migrates here (core/session/session_attach.cpp).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/session/session_table.hpp"
#include "parley/module.h"
#include "xml/element.hpp"

namespace parley {

class ServerContext;
struct LoopContext;
struct Delivery;
struct HookEntry;
class C2sStream;

class Session {
 public:
  enum class State : uint8_t {
    unbound,   // a stream negotiating (pre-authentication iqs, SASL, binding)
    bound,     // online with a connection
    detached,  // bound, its connection gone; waiting for a new one
    ended,     // SESSION_CLOSED ran; the object goes with its connection
  };

  Session(ServerContext& ctx, LoopContext& loop, SessionId id);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  SessionId id() const { return id_; }
  State state() const { return state_; }
  bool online() const { return state_ == State::bound || state_ == State::detached; }
  const Jid& jid() const { return jid_; }
  const std::string& host() const { return host_; }
  LoopContext& loop() const { return loop_; }
  C2sStream* stream() const { return stream_.get(); }
  // The client's address: of the connection, or the last one while detached.
  const std::string& peer_ip() const;

  // ---- the stream's side (c2s_stream.cpp and friends) ----
  void set_host(std::string host) { host_ = std::move(host); }
  void set_jid(Jid jid) { jid_ = std::move(jid); }
  void adopt_stream(std::unique_ptr<C2sStream> stream);
  // SESSION_OPENED (once, at the first stream header that names a served host).
  void announce();
  // Resource bound: the session is online.
  void bind(Jid full);
  // The stream ends it (a closed stream, a stream error, shutdown): SESSION_CLOSED,
  // out of the session table, contacts told. What waited is routed again.
  // `handing_back`: its connection ended abruptly and hands back, right after
  // this call, what it accepted and did not write (leave_session_table).
  void end(bool handing_back = false);
  // The stream's connection ended without a closed stream: a module may keep
  // the session (SESSION_CLOSING -> detached). True if it is detached now.
  bool connection_lost();
  // A module takes the session from its open connection (session_detach): the
  // connection gets `condition` (empty: </stream:stream>) and closes, the
  // session is detached (SESSION_DETACHED). False if not bound with a
  // connection that is open.
  bool detach_connection(std::string_view condition);
  // The stream's connection closed for good: the session goes too unless it is
  // detached (then the stream is dropped). Last call on this object from the stream.
  void stream_closed(C2sStream* stream);

  // ---- outbound ----
  // A routed stanza. False: not taken (the router routes it again).
  bool deliver(const std::shared_ptr<Delivery>& delivery);
  // A stanza the core or a module sends to the bound client (a reply, an
  // error, send_to_session): through the outgoing filters. False: not taken.
  bool send_stanza(xml::Element&& stanza);
  // Goes on with the outgoing filters after `after` (a module's), then
  // writes (session_send_after).
  bool send_after(xml::Element&& stanza, parley_module* after);
  // Through the outgoing filters, like every stanza to the client (stream
  // management counts what is written, CSI may hold it); a filter that takes
  // it settles the send as written (the filter owns it then).
  bool send_tracked(xml::Element&& stanza, parley_module* owner, parley_sent_fn done, void* arg);
  void drop_tracked(parley_module* owner);
  // As is, no filters: pre-authentication answers, nonza answers.
  bool write_element(const xml::Element& element);

  // ---- input ----
  void process_stanza(xml::Element&& stanza);  // replay after a module swap
  void hold_input();
  bool release_input();
  void end_throttle();
  // Closes with a stream error (attached), or ends at once (detached).
  void close(std::string_view condition, std::string_view text = {});
  // An attached, bound session's connection ends as lost (session_cut), on a
  // later turn of this loop. False: not bound, detached or closing.
  bool cut_connection();

  // ---- presence (the session's own, RFC 6121 §4) ----
  bool available() const { return available_; }
  int priority() const { return priority_; }
  // Stanzas the bound client sent, modulo 2^32 (session_stanzas_in: XEP-0198's h).
  uint32_t stanzas_in() const { return stanzas_in_; }
  void count_stanza_in() { ++stanzas_in_; }
  void set_presence(bool available, int priority);

  // ---- module slots ----
  void set_module_data(parley_module* owner, void* data, void (*free_fn)(void*));
  void* module_data(parley_module* owner) const;
  void drop_module_data(parley_module* owner);
  // A module's per-session outgoing filter (PARLEY_HOOKS_PER_SESSION) on or
  // off for this session; kept in the module's slot, so it goes with it
  // (unload, reload, the session's end).
  void set_filter_out(parley_module* owner, bool on);
  bool filter_out_on(const parley_module* owner) const {
    if (filters_out_on_ == 0) return false;
    for (const auto& slot : module_slots_)
      if (slot.owner == owner) return slot.filter_out;
    return false;
  }
  struct ModuleSlot {
    parley_module* owner;
    void* data;
    void (*free_fn)(void*);
    bool filter_out = false;  // its PER_SESSION outgoing filter runs for this session
  };
  std::vector<ModuleSlot>& module_slots() { return module_slots_; }

  // ---- detach and re-attach (session_attach.cpp) ----
  // Reserved for a connection on its way here: the timeout and a second
  // attach wait.
  bool attaching() const { return attaching_; }
  void reserve_for_attach() { attaching_ = true; }
  void cancel_attach();
  // The migrated (or same-loop) stream becomes this session's.
  void reattach(std::unique_ptr<C2sStream> stream);

  // After the REATTACHED hooks and the attach completion: what waited is
  // written (through the filters), in order.
  void flush_waiting();
  // Gives up the stream (it resumes another session); this session ends.
  std::unique_ptr<C2sStream> release_stream();
  // Erased from its loop from the loop, not from inside a call on it.
  void dispose_later();

  parley_result run_hook(parley_event event, xml::Element* stanza);

 private:
  void detach(bool announce);  // announce: run SESSION_DETACHED now
  // SESSION_CLOSING: whether a module keeps the session.
  bool closing_kept();
  void stop_detach_timer();
  // Waits for the next connection (detached). False: the queue is full; the
  // session is closed then (the stanza is not taken).
  bool wait(const std::shared_ptr<Delivery>& delivery, size_t filter_from, bool routed);
  bool deliver_now(const std::shared_ptr<Delivery>& delivery, size_t filter_from, bool routed);
  // While modules are swapped (hot reload), output that meets module hooks
  // waits for the new code (module_pause.hpp).
  bool has_output_hooks() const;
  // Whether any of the outgoing filters `hooks` runs for this session: one
  // for every session, or a per-session one this session turned on.
  bool out_filters_apply(const std::vector<HookEntry>* hooks) const;
  void defer_output(const std::shared_ptr<Delivery>& delivery, size_t filter_from, bool routed);
  // Outgoing filters from position `from` (0: all); false: a filter took it.
  bool run_out_filters(xml::Element& stanza, size_t from);
  bool write_stanza(xml::Element&& stanza, size_t filter_from);
  bool write_now(xml::Element&& stanza);
  // The same; what the connection did not take comes back (nullptr: taken).
  std::shared_ptr<Delivery> try_write(xml::Element&& stanza);
  void reroute_waiting();
  // `handing_back`: stanzas this session held are routed again from here
  // (what waited while detached, or what the connection hands back).
  void leave_session_table(bool handing_back);

  ServerContext& ctx_;
  LoopContext& loop_;
  const SessionId id_;
  State state_ = State::unbound;
  bool announced_ = false;  // SESSION_OPENED ran; SESSION_CLOSED is owed
  bool available_ = false;
  bool attaching_ = false;
  int priority_ = 0;
  uint32_t stanzas_in_ = 0;  // modulo 2^32 (XEP-0198 h); +8 B (tests/unit/core/c2s/session_size_test.cpp)
  // How many slots have filter_out set (in the padding after stanzas_in_):
  // 0, and no outgoing filter for every session, is the path without dispatch.
  uint8_t filters_out_on_ = 0;
  std::string host_;  // the served domain the stream is for
  Jid jid_;           // after SASL: bare; after bind: full

  std::unique_ptr<C2sStream> stream_;  // null while detached
  std::vector<ModuleSlot> module_slots_;  // usually empty: no cost for sessions modules ignore

  // Only while detached: what waits for the next connection, and the timeout.
  struct Waiting;
  std::unique_ptr<Waiting> waiting_;
};

}  // namespace parley
