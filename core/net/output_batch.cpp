#include "core/net/output_batch.hpp"

#include "core/net/connection.hpp"
#include "core/router/router.hpp"

namespace parley {

namespace {
// A loop runs on one thread, and a thread runs one loop at a time: the batch
// is the thread's. It outlives its handles (closed with the loop).
thread_local OutputBatch batch;

// Buffers kept for the next turn: a burst to many connections or a big
// write does not leave its memory behind.
constexpr size_t kKeepEntries = 256;
constexpr size_t kKeepCapacity = 2 * OutputBatch::flush_at;
}  // namespace

OutputBatch* OutputBatch::of(uv_loop_t* loop) {
  if (batch.loop_ != loop) {
    // Another loop's batch on this thread, still open: never the case for a
    // connection (touched by its own loop's thread only); written at once.
    if (batch.loop_ != nullptr && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&batch.check_))) return nullptr;
    // First use on this thread, or a new loop (the old one, closed, took
    // our handles with it).
    batch.init(loop);
  } else if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&batch.check_))) {
    return nullptr;  // the loop is stopping
  }
  return &batch;
}

OutputBatch* OutputBatch::current(uv_loop_t* loop) { return batch.loop_ == loop ? &batch : nullptr; }

void OutputBatch::init(uv_loop_t* loop) {
  loop_ = loop;
  entries_.clear();
  used_ = 0;
  flushing_ = false;
  prepare_ = uv_prepare_t{};
  check_ = uv_check_t{};
  uv_prepare_init(loop, &prepare_);
  uv_check_init(loop, &check_);
  prepare_.data = this;
  check_.data = this;
  // Neither keeps the loop alive; the loop closes them when it stops.
  uv_prepare_start(&prepare_, &OutputBatch::on_prepare);
  uv_check_start(&check_, &OutputBatch::on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
}

uint32_t OutputBatch::add(Connection* connection) {
  if (used_ == entries_.size()) entries_.emplace_back();
  Entry& e = entries_[used_++];
  e.connection = connection;
  return static_cast<uint32_t>(used_);
}

void OutputBatch::recycle(uint32_t slot, std::string&& bytes, std::vector<Entry::Held>&& held) {
  if (slot > used_ || bytes.capacity() > kKeepCapacity) return;
  bytes.clear();
  held.clear();
  Entry& e = entries_[slot - 1];
  e.bytes.swap(bytes);
  e.held.swap(held);
}

void OutputBatch::on_prepare(uv_prepare_t* handle) { static_cast<OutputBatch*>(handle->data)->flush_all(); }
void OutputBatch::on_check(uv_check_t* handle) { static_cast<OutputBatch*>(handle->data)->flush_all(); }

void OutputBatch::flush_all() {
  if (used_ == 0 || flushing_) return;
  flushing_ = true;
  // A flush may make another connection write (a write error ends a session,
  // whose presence goes out): new entries are appended and flushed here too.
  for (size_t i = 0; i < used_; ++i)
    if (Connection* c = entries_[i].connection) c->flush_output();
  used_ = 0;
  if (entries_.size() > kKeepEntries) entries_.resize(kKeepEntries);
  flushing_ = false;
}

}  // namespace parley
