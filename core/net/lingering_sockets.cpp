#include "core/net/lingering_sockets.hpp"

#include <sys/socket.h>
#include <unistd.h>

namespace parley {

LingeringSockets::~LingeringSockets() {
  // Left when the loop stopped (it closed every handle): the descriptors are ours.
  for (auto& [entry, owned] : entries_) ::close(entry->fd);
}

bool LingeringSockets::add(uv_loop_t* loop, uv_os_fd_t fd, uint64_t linger_ms, size_t max) {
  if (entries_.size() >= max) {
    ::close(fd);
    return false;
  }
  auto entry = std::make_unique<Entry>();
  Entry* e = entry.get();
  e->owner = this;
  e->fd = fd;
  if (uv_poll_init_socket(loop, &e->poll, fd) != 0) {
    ::close(fd);
    return false;
  }
  e->poll.data = e;
  ++e->open_handles;
  uv_timer_init(loop, &e->timer);
  e->timer.data = e;
  ++e->open_handles;
  entries_.emplace(e, std::move(entry));
  update_count();
  // The FIN goes out after what the kernel holds; nothing of ours is queued.
  ::shutdown(fd, SHUT_WR);
  uv_poll_start(&e->poll, UV_DISCONNECT, [](uv_poll_t* p, int, int) { finish(static_cast<Entry*>(p->data)); });
  uv_timer_start(&e->timer, [](uv_timer_t* t) { finish(static_cast<Entry*>(t->data)); }, linger_ms, 0);
  return true;
}

void LingeringSockets::finish(Entry* e) {
  if (e->finishing) return;
  e->finishing = true;
  uv_poll_stop(&e->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&e->poll), &on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&e->timer), &on_close);
}

void LingeringSockets::on_close(uv_handle_t* handle) {
  auto* e = static_cast<Entry*>(handle->data);
  if (--e->open_handles > 0) return;
  ::close(e->fd);  // a poll handle leaves its descriptor open
  LingeringSockets* owner = e->owner;
  owner->entries_.erase(e);  // frees e
  owner->update_count();
}

}  // namespace parley
