#include "core/c2s/idle_parser_sweep.hpp"

namespace parley {

void IdleParserSweep::init(uv_loop_t* loop, uint64_t period_ms, Visit visit, void* context) {
  period_ms_ = period_ms;
  visit_ = visit;
  context_ = context;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
  ready_ = true;
}

void IdleParserSweep::watch(SessionId id) {
  watched_.push_back(id);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_)))
    uv_timer_start(&timer_, &IdleParserSweep::on_tick, period_ms_, period_ms_);
}

void IdleParserSweep::on_tick(uv_timer_t* timer) {
  auto* self = static_cast<IdleParserSweep*>(timer->data);
  // A visit may watch() again (it does not: it says so by returning true);
  // the swap keeps the walk off a vector that could grow under it.
  std::vector<SessionId> list;
  list.swap(self->watched_);
  size_t kept = 0;
  for (SessionId id : list)
    if (self->visit_(self->context_, id)) list[kept++] = id;
  list.resize(kept);
  if (self->watched_.empty()) {
    self->watched_.swap(list);
  } else {
    self->watched_.insert(self->watched_.end(), list.begin(), list.end());
  }
  if (self->watched_.empty()) uv_timer_stop(timer);
}

}  // namespace parley
