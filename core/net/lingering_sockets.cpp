#include "core/net/lingering_sockets.hpp"

#include <unistd.h>

namespace parley {

LingeringSockets::~LingeringSockets() = default;

bool LingeringSockets::add(uv_loop_t* loop, uv_os_fd_t fd, uint64_t linger_ms, size_t max) {
  if (entries_.size() >= max) {
    ::close(fd);
    return false;
  }
  auto entry = std::make_unique<Entry>();
  Entry* e = entry.get();
  e->owner = this;
  uv_tcp_init(loop, &e->tcp);
  e->tcp.data = e;
  ++e->open_handles;
  if (uv_tcp_open(&e->tcp, fd) != 0) {
    ::close(fd);  // never adopted by the handle
    uv_close(reinterpret_cast<uv_handle_t*>(&e->tcp), &on_close);
    entries_.emplace(e, std::move(entry));
    update_count();
    return false;
  }
  uv_timer_init(loop, &e->timer);
  e->timer.data = e;
  ++e->open_handles;
  entries_.emplace(e, std::move(entry));
  update_count();
  uv_timer_start(&e->timer, [](uv_timer_t* t) { finish(static_cast<Entry*>(t->data)); }, linger_ms, 0);
  // The FIN follows what the kernel holds; nothing of ours is queued.
  uv_shutdown(&e->shutdown, reinterpret_cast<uv_stream_t*>(&e->tcp), [](uv_shutdown_t*, int) {});
  // What the peer sends meanwhile is read and dropped (its end of stream
  // ends the wait): a socket with unread input would be reset at close.
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&e->tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char sink[4096];
        buf->base = sink;
        buf->len = sizeof sink;
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        if (nread < 0) finish(static_cast<Entry*>(s->data));
      });
  return true;
}

void LingeringSockets::finish(Entry* e) {
  if (e->finishing) return;
  e->finishing = true;
  auto* tcp = reinterpret_cast<uv_handle_t*>(&e->tcp);
  auto* timer = reinterpret_cast<uv_handle_t*>(&e->timer);
  if (!uv_is_closing(tcp)) uv_close(tcp, &on_close);
  if (!uv_is_closing(timer)) uv_close(timer, &on_close);
}

void LingeringSockets::on_close(uv_handle_t* handle) {
  auto* e = static_cast<Entry*>(handle->data);
  if (--e->open_handles > 0) return;
  LingeringSockets* owner = e->owner;
  owner->entries_.erase(e);  // frees e
  owner->update_count();
}

}  // namespace parley
