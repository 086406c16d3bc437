// A fake parleyd for the SDK tests: a parley_host_api table over a tiny element
// tree, recording what a module does (logs, routed stanzas, bounces, timers).
// No core code: the SDK must work against any host that honours module.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "parley/module.h"

struct parley_element {
  parley_element();
  ~parley_element();
  parley_element(const parley_element&) = delete;
  parley_element& operator=(const parley_element&) = delete;

  std::string name;
  std::string xmlns;
  std::vector<std::pair<std::string, std::string>> attrs;
  std::vector<std::variant<std::unique_ptr<parley_element>, std::string>> nodes;
};

using FakeOption = std::variant<std::string, int64_t, bool, std::vector<std::string>>;

struct FakeTimer {
  uint64_t delay_ms;
  uint64_t repeat_ms;
  parley_timer_fn fn;
  void* arg;
};

// A storage call the test completes by hand (as the storage thread would).
struct FakeQuery {
  std::string sql;
  std::vector<FakeOption> params;  // NULL as an empty list, INT as int64_t, TEXT/BLOB as string
  std::vector<uint32_t> param_types;
  bool write;
  parley_rows_fn done;
  void* arg;
};

// A tracked send (ABI 1.2) the test completes by hand (as the socket would).
struct FakeSend {
  parley_session_id session;
  std::string stanza;  // serialized
  parley_sent_fn done;
  void* arg;
};

// A session_attach (ABI 1.2) the test completes by hand (as the loops would).
struct FakeAttach {
  parley_session_id detached;
  parley_session_id stream;
  parley_attach_fn done;
  void* arg;
  bool completed = false;
};

// A module's slot of one session, freed as the host frees it.
struct FakeSlot {
  void* data = nullptr;
  void (*free_fn)(void*) = nullptr;
  FakeSlot(void* d, void (*f)(void*)) : data(d), free_fn(f) {}
  ~FakeSlot() {
    if (free_fn) free_fn(data);
  }
  FakeSlot(const FakeSlot&) = delete;
  FakeSlot& operator=(const FakeSlot&) = delete;
};

struct parley_rows {
  size_t columns = 0;
  std::vector<std::vector<parley_value>> rows;
  int64_t changes = 0;
};

// Two worker loops at once (loops_test.cpp): each test thread plays one loop
// (fake::ThreadLoop sets what current_loop() answers on it), and what it asks
// of the host is recorded in that loop's lane, which no other thread touches.
// The fake takes no lock, so TSan sees only the SDK's own synchronisation.
struct FakeLane {
  int32_t loop = 0;
  std::map<uint64_t, FakeTimer> timers;  // ids: (loop + 1) << 32 | n, to tell the lanes apart
  uint64_t next_timer = 1;
  std::vector<uint64_t> cancelled;  // timer_cancel asked on this loop (ids of any lane)
  std::vector<FakeQuery> queries;
  std::vector<FakeSend> tracked;

  // As the loop would: fire a timer (a one-shot is forgotten first), complete
  // a storage call, report a tracked send.
  void fire(void* state, uint64_t timer_id);
  void complete(void* state, size_t i, const parley_rows& rows);
  void sent_done(void* state, size_t i, bool written);
};

struct FakeBounce {
  std::string stanza;
  std::string condition;
  std::string text;
};

// The host's handle of one module instance, with everything the module did.
struct parley_module {
  std::string host = "example.org";
  std::map<std::string, FakeOption> options;
  std::vector<std::string> features;     // server_features()
  std::set<parley_session_id> sessions;  // live sessions

  void* state = nullptr;  // what start() returned, handed to timer callbacks
  std::vector<std::pair<int, std::string>> logs;
  std::vector<std::string> routed;  // serialized
  std::vector<FakeBounce> bounces;
  std::vector<std::pair<parley_session_id, std::string>> sent;
  std::map<std::string, int64_t> counters;
  std::map<uint64_t, FakeTimer> timers;
  uint64_t next_timer = 1;
  std::vector<uint64_t> cancelled;
  std::vector<FakeQuery> queries;
  std::vector<FakeSend> tracked;  // session_send_tracked, in order

  // ABI 1.2: services registered, posted tasks (run by the test), iqs sent
  // (answered by the test), metrics declared and recorded.
  struct Route {
    std::string domain, name;
    parley_route_fn fn;
  };
  std::vector<Route> routes;
  bool starting = true;  // register_route and metric_register only then
  struct Task {
    uint32_t loop;
    parley_task_fn fn;
    void* arg;
  };
  std::vector<Task> posted;
  struct SentIq {
    std::string iq;  // serialized, with the id the host gave it
    parley_iq_reply_fn done;
    void* arg;
  };
  std::vector<SentIq> iqs;
  std::vector<std::pair<std::string, uint32_t>> metric_decls;  // name, kind
  std::map<uint32_t, int64_t> metric_values;                   // summed
  uint32_t loops = 2;
  int32_t loop = 0;  // current_loop()

  // ABI 1.2 sessions: slots (session_set_data keeps them for live sessions),
  // raw writes, releases through the later filters, closes, attaches.
  std::map<parley_session_id, std::unique_ptr<FakeSlot>> slots;
  std::map<parley_session_id, int> states;  // session_state; a live session not listed is bound
  std::vector<std::pair<parley_session_id, std::string>> written;     // session_write
  std::vector<std::pair<parley_session_id, std::string>> sent_after;  // session_send_after
  std::vector<std::pair<parley_session_id, std::string>> closed;      // session_close: condition
  std::vector<parley_session_id> cut;                                  // session_cut
  std::vector<FakeAttach> attaches;

  // Lanes (per loop, see FakeLane): when not empty, a timer, storage call or
  // tracked send asked on a thread playing loop i goes to lanes[i]; asked
  // elsewhere (off the loops), to the fields above.
  std::vector<FakeLane> lanes;
  void use_lanes(uint32_t count);

  bool logged(std::string_view needle) const;
  // Runs a pending timer as the loop would; a one-shot is forgotten first.
  void fire(uint64_t timer_id);
  // Completes queries[i] as the loop would (error non-empty: it failed).
  void complete(size_t i, const parley_rows& rows, std::string_view error = {});
  // Completes tracked[i] as the session would (written or the connection ended).
  void sent_done(size_t i, bool written);
  // Completes attaches[i] as the host would: attached to `detached`, or not
  // (then the completion names the stream).
  void attach_done(size_t i, bool attached);
};

namespace fake {

// Makes current_loop() answer `loop` on the calling thread while it lives
// (-1: off the worker loops); other threads keep parley_module::loop.
class ThreadLoop {
 public:
  explicit ThreadLoop(int32_t loop);
  ~ThreadLoop();
  ThreadLoop(const ThreadLoop&) = delete;
  ThreadLoop& operator=(const ThreadLoop&) = delete;

 private:
  bool had_;
  int32_t previous_;
};

// Elements alive right now (the RAII tests count them).
long live_elements();
const parley_host_api* api();
// A table claiming an older host: only `size` bytes of it are valid.
parley_host_api api_with_size(size_t size);

std::string serialize(const parley_element* e);
// One element; nullptr if malformed. Owned by the caller (element_free).
parley_element* parse(std::string_view xml);

}  // namespace fake
