// A multi-producer single-consumer queue (Dmitry Vyukov's node-based design).
//
// Loop inboxes are fed by every other loop and drained by one; a mutex here
// would be exactly the cross-loop contention ARCHITECTURE.md forbids. Producers
// do one atomic exchange; the consumer never blocks producers.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <utility>

namespace parley {

template <class T>
class MpscQueue {
 public:
  MpscQueue() : head_(new Node()), tail_(head_.load(std::memory_order_relaxed)) {}
  ~MpscQueue() {
    while (pop()) {
    }
    delete tail_;
  }
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  // Any thread. Returns true when the queue held nothing the consumer had not
  // finished with (length went 0 -> 1): only then does the consumer need a
  // wake-up (h2o's multithread queue does the same). A consumer that stops
  // draining while length() > 0 must look again (WorkerLoop::drain does), or
  // an item pushed during its last pop could wait for the next wake-up.
  bool push(T value) {
    Node* node = new Node(std::move(value));
    bool was_empty = length_.fetch_add(1, std::memory_order_seq_cst) == 0;
    Node* prev = head_.exchange(node, std::memory_order_acq_rel);
    prev->next.store(node, std::memory_order_release);
    return was_empty;
  }

  // Consumer thread only. Returns nothing when empty, or when a producer is
  // between its exchange and its link (it will be seen on the next drain).
  std::optional<T> pop() {
    Node* tail = tail_;
    Node* next = tail->next.load(std::memory_order_acquire);
    if (next == nullptr) return std::nullopt;
    tail_ = next;
    std::optional<T> value(std::move(*next->value));
    next->value.reset();
    delete tail;
    length_.fetch_sub(1, std::memory_order_seq_cst);
    return value;
  }

  // Items pushed and not yet popped (counted from the start of push()).
  size_t length() const { return length_.load(std::memory_order_seq_cst); }

 private:
  struct Node {
    Node() = default;
    explicit Node(T v) : value(std::move(v)) {}
    std::atomic<Node*> next{nullptr};
    std::optional<T> value;
  };
  std::atomic<Node*> head_;
  Node* tail_;
  std::atomic<size_t> length_{0};
};

}  // namespace parley
