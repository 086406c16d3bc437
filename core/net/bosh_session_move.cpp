// A BOSH session moving to another loop with its stream (a stream
// management resume onto a detached session there: Connection::migrate_out /
// migrate_in), and the routing of requests that follows it: its sid names
// the loop that created it, which keeps receiving its requests first.
#include <algorithm>

#include "core/net/bosh_table.hpp"
#include "core/net/connection.hpp"
#include "core/server/server_context.hpp"

namespace parley {

namespace {

// Sessions that moved from this loop to another: their requests go on there.
// Removed when the session ends.
thread_local std::unordered_map<std::string, unsigned> t_bosh_forward;
// Sessions leaving this loop, not arrived yet: their requests wait here
// (at most kMaxParked each; a client has at most 'requests' + 1 out).
thread_local std::unordered_map<std::string, std::vector<std::shared_ptr<BoshRequest>>> t_bosh_moving;
constexpr size_t kMaxParked = 8;

}  // namespace

namespace bosh_table {

// Each hop follows a later move: the chain ends.
void route(ServerContext& ctx, std::shared_ptr<BoshRequest> r, const std::string& sid, size_t hops) {
  if (auto it = sessions.find(sid); it != sessions.end()) {
    it->second->request(std::move(*r));
    return;
  }
  if (auto it = t_bosh_moving.find(sid); it != t_bosh_moving.end()) {
    if (it->second.size() < kMaxParked) {
      it->second.push_back(std::move(r));
      return;
    }
  } else if (auto f = t_bosh_forward.find(sid); f != t_bosh_forward.end() && hops < ctx.loops.size()) {
    ctx.loops[f->second]->loop.post(
        [&ctx, r, sid, hops]() mutable { route(ctx, std::move(r), sid, hops + 1); });
    return;
  }
  bosh_answer(ctx, r->reply, terminal("item-not-found", false));
}

void forget_forwards(ServerContext& ctx, const std::string& sid, const std::vector<unsigned>& loops) {
  for (unsigned loop : loops) ctx.loops[loop]->loop.post([sid] { t_bosh_forward.erase(sid); });
}

}  // namespace bosh_table

void BoshSession::leave() {
  if (timer_ != nullptr) {
    auto* h = reinterpret_cast<uv_handle_t*>(timer_);
    timer_ = nullptr;
    if (!uv_is_closing(h)) {
      h->data = nullptr;
      uv_close(h, [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
    }
  }
  auto it = bosh_table::sessions.find(p_.sid);
  if (it != bosh_table::sessions.end() && it->second == this) bosh_table::sessions.erase(it);
  t_bosh_moving[p_.sid];  // requests wait here until it arrived
  t_bosh_forward.erase(p_.sid);
}

void BoshSession::arrive(unsigned from) {
  unsigned here = conn_.loop().loop.index();
  bosh_table::sessions[p_.sid] = this;
  t_bosh_forward.erase(p_.sid);  // it may come back to a loop it left
  if (from != here && std::find(forwarders_.begin(), forwarders_.end(), from) == forwarders_.end())
    forwarders_.push_back(from);
  // Tasks posted on the old loop found nothing there.
  flush_posted_ = false;
  resume_posted_ = false;
  ServerContext* ctx = &ctx_;
  std::string sid = p_.sid;
  // The old loop forwards what waited there, and what comes later.
  ctx_.loops[from]->loop.post([ctx, sid, here] {
    std::vector<std::shared_ptr<BoshRequest>> parked;
    if (auto it = t_bosh_moving.find(sid); it != t_bosh_moving.end()) {
      parked = std::move(it->second);
      t_bosh_moving.erase(it);
    }
    t_bosh_forward[sid] = here;
    for (auto& r : parked)
      ctx->loops[here]->loop.post([ctx, r, sid]() mutable { bosh_table::route(*ctx, std::move(r), sid, 0); });
  });
  // Here, once the stream is settled (after the resume that moved it): the
  // held requests' timers, and what waited.
  conn_.loop().loop.post([sid] {
    auto it = bosh_table::sessions.find(sid);
    if (it == bosh_table::sessions.end()) return;
    BoshSession* self = it->second;
    self->pump();
    if (!self->terminated_) self->flush();
  });
}

}  // namespace parley
