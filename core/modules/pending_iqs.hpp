// Iqs that modules sent with send_iq (ABI 1.2) and whose answer they wait
// for: one table per loop, owned and touched by that loop only. The id the
// host gives such an iq names the loop that waits ("piq.<loop>.<serial>.<nonce>"),
// so an answer routed on another loop is posted to the right one.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "parley/module.h"
#include "xml/element.hpp"

namespace parley {

struct LoopContext;
class Jid;

class PendingIqs {
 public:
  explicit PendingIqs(LoopContext& loop);
  ~PendingIqs();
  PendingIqs(const PendingIqs&) = delete;
  PendingIqs& operator=(const PendingIqs&) = delete;

  // Registers an iq about to be sent to `to` (prepared; `to_is_bare`: a user's
  // bare JID, whose server or resources may answer) and returns the id to put
  // on it. `done` runs once, on this loop, with the answer or null.
  std::string add(parley_module* module, std::string to, bool to_is_bare, uint64_t timeout_ms,
                  parley_iq_reply_fn done, void* arg);

  // The loop an answer with this id belongs to, if the id is one of ours.
  static std::optional<unsigned> owner_loop(std::string_view id);

  // On the owning loop: hands `reply` (a result or error whose 'from' is
  // `from`, prepared) to the module waiting for it. False if no iq with this
  // id waits, or the answer did not come from where the iq went (then the
  // iq keeps waiting: anybody can send a stanza with a guessed id).
  bool complete(const xml::Element& reply, const Jid& from);

  size_t size() const { return pending_.size(); }

  // Shutdown, on the owning loop while the modules are still loaded: every
  // iq still waiting is answered as timed out (null), so that its module
  // frees what it keeps for the answer (the SDK's waiter); so are the ones
  // those callbacks send, for a few rounds.
  void expire_all();

 private:
  struct Entry {
    uv_timer_t timer;
    PendingIqs* owner;
    std::string id;
    parley_module* module;
    std::string to;
    bool to_is_bare;
    parley_iq_reply_fn done;
    void* arg;
  };
  static void on_timeout(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);
  // Takes the entry out of the table, runs its module callback (through the
  // instance's gate) and frees it once its timer is closed.
  void finish(std::map<std::string, std::unique_ptr<Entry>, std::less<>>::iterator it, const xml::Element* reply);

  LoopContext& loop_;
  uint64_t next_serial_ = 1;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> pending_;
};

}  // namespace parley
