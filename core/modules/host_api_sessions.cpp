#include "core/modules/host_api_sessions.hpp"

#include <memory>
#include <utility>

#include "core/modules/hooks.hpp"
#include "core/modules/host_api_support.hpp"
#include "core/modules/module_instance.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "core/session/session_attach.hpp"
#include "core/session/session_table.hpp"

namespace parley {

namespace host_support {

Session* session_here(parley_module* m, parley_session_id id) {
  LoopContext* loop = LoopContext::current();
  if (loop == nullptr || id == 0 || loop_of(id) != loop->loop.index()) return nullptr;
  (void)m;
  return loop->find(id);
}

}  // namespace host_support

namespace host_sessions {

using host_support::el;
using host_support::session_here;
using host_support::sink_write;

int session_set_data(parley_module* m, parley_session_id session, void* data, void (*free_fn)(void*)) {
  Session* s = session_here(m, session);
  if (s == nullptr) return 0;
  s->set_module_data(m, data, free_fn);
  return 1;
}

void* session_get_data(parley_module* m, parley_session_id session) {
  Session* s = session_here(m, session);
  return s ? s->module_data(m) : nullptr;
}

int session_hold(parley_module* m, parley_session_id session) {
  Session* s = session_here(m, session);
  if (s == nullptr) return 0;
  s->hold_input();
  return 1;
}

int session_release(parley_module* m, parley_session_id session) {
  Session* s = session_here(m, session);
  return s != nullptr && s->release_input() ? 1 : 0;
}

int session_reply(parley_module* m, parley_session_id session, parley_element* stanza) {
  std::unique_ptr<xml::Element> owned(el(stanza));
  Session* s = session_here(m, session);
  if (s == nullptr || !owned) return 0;
  // A reply to a stream that has no address yet carries none.
  if (owned->has_attr("to") && owned->attr("to").empty()) owned->remove_attr("to");
  return s->write_element(*owned) ? 1 : 0;
}

int session_peer_address(parley_module* m, parley_session_id session, parley_sink out) {
  Session* s = session_here(m, session);
  if (s == nullptr) return 0;
  sink_write(out, s->peer_ip());
  return 1;
}

int session_send_tracked(parley_module* m, parley_session_id session, parley_element* stanza, parley_sent_fn done,
                         void* arg) {
  std::unique_ptr<xml::Element> owned(el(stanza));
  Session* s = session_here(m, session);
  if (s == nullptr || !owned || done == nullptr) return 0;
  return s->send_tracked(std::move(*owned), m, done, arg) ? 1 : 0;
}

int session_write(parley_module* m, parley_session_id session, const parley_element* element) {
  Session* s = session_here(m, session);
  if (s == nullptr || element == nullptr) return 0;
  return s->write_element(*reinterpret_cast<const xml::Element*>(element)) ? 1 : 0;
}

int session_send_after(parley_module* m, parley_session_id session, parley_element* stanza) {
  std::unique_ptr<xml::Element> owned(el(stanza));
  Session* s = session_here(m, session);
  if (s == nullptr || !owned || !s->online()) return 0;
  return s->send_after(std::move(*owned), m) ? 1 : 0;
}

int session_close(parley_module* m, parley_session_id session, parley_str condition) {
  Session* s = session_here(m, session);
  if (s == nullptr || s->state() == Session::State::ended) return 0;
  s->close(from_pstr(condition));
  return 1;
}

int session_detach(parley_module* m, parley_session_id session, parley_str condition) {
  Session* s = session_here(m, session);
  return s != nullptr && s->detach_connection(from_pstr(condition)) ? 1 : 0;
}

uint32_t session_stanzas_in(parley_module* m, parley_session_id session) {
  Session* s = session_here(m, session);
  return s != nullptr ? s->stanzas_in() : 0;
}

int session_attach(parley_module* m, parley_session_id detached, parley_session_id stream, parley_attach_fn done,
                   void* arg) {
  if (session_here(m, stream) == nullptr) return 0;
  return start_session_attach(m, detached, stream, done, arg);
}

int session_cut(parley_module* m, parley_session_id session) {
  Session* s = session_here(m, session);
  return s != nullptr && s->cut_connection() ? 1 : 0;
}

int session_filter_out(parley_module* m, parley_session_id session, int on) {
  Session* s = session_here(m, session);
  if (s == nullptr || s->state() == Session::State::ended) return 0;
  s->set_filter_out(m, on != 0);
  return 1;
}

int session_state(parley_module* m, parley_session_id session) {
  Session* s = session_here(m, session);
  if (s == nullptr) return 0;
  switch (s->state()) {
    case Session::State::bound:
      return PARLEY_SESSION_BOUND;
    case Session::State::detached:
      return PARLEY_SESSION_DETACHED;
    case Session::State::unbound:
      return PARLEY_SESSION_UNBOUND;
    case Session::State::ended:
      return 0;
  }
  return 0;
}

}  // namespace host_sessions
}  // namespace parley
