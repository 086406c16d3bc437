// A multi-producer single-consumer queue (Dmitry Vyukov's intrusive
// node-based design, with a stub node).
//
// Loop inboxes are fed by every other loop and drained by one; a mutex here
// would be exactly the cross-loop contention ARCHITECTURE.md forbids. Producers
// do one atomic exchange; the consumer never blocks producers. Intrusive: the
// queue links nodes the caller owns, so a push allocates nothing (a routed
// stanza crosses loops in a node that is part of its Delivery, issue 18).
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <utility>

namespace parley {

// The link a queued object carries. A node is in at most one queue at a time;
// once pop() returned it the queue no longer touches it.
struct MpscNode {
  std::atomic<MpscNode*> next{nullptr};
};

class IntrusiveMpscQueue {
 public:
  IntrusiveMpscQueue() = default;
  IntrusiveMpscQueue(const IntrusiveMpscQueue&) = delete;
  IntrusiveMpscQueue& operator=(const IntrusiveMpscQueue&) = delete;

  // Any thread. Returns true when the queue held nothing the consumer had not
  // finished with (length went 0 -> 1): only then does the consumer need a
  // wake-up (h2o's multithread queue does the same). A consumer that stops
  // draining while length() > 0 must look again (WorkerLoop::drain does), or
  // an item pushed during its last pop could wait for the next wake-up.
  bool push(MpscNode* node) {
    node->next.store(nullptr, std::memory_order_relaxed);
    bool was_empty = length_.fetch_add(1, std::memory_order_seq_cst) == 0;
    link(node);
    return was_empty;
  }

  // Consumer thread only. Returns nothing when empty, or when a producer is
  // between its exchange and its link (it will be seen on the next drain).
  MpscNode* pop() {
    MpscNode* tail = tail_;
    MpscNode* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) return nullptr;
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      tail_ = next;
      return taken(tail);
    }
    // `tail` is the last node linked, unless a producer has exchanged head_
    // and not linked yet: then wait for it (the next drain).
    if (tail != head_.load(std::memory_order_acquire)) return nullptr;
    // Put the stub behind the last node, so that it can be handed out (its
    // link from its last time through is stale: cleared first, as push does).
    stub_.next.store(nullptr, std::memory_order_relaxed);
    link(&stub_);
    next = tail->next.load(std::memory_order_acquire);
    if (next != nullptr) {
      tail_ = next;
      return taken(tail);
    }
    return nullptr;
  }

  // Items pushed and not yet popped (counted from the start of push()).
  size_t length() const { return length_.load(std::memory_order_seq_cst); }

 private:
  void link(MpscNode* node) {
    MpscNode* prev = head_.exchange(node, std::memory_order_acq_rel);
    prev->next.store(node, std::memory_order_release);
  }
  MpscNode* taken(MpscNode* node) {
    length_.fetch_sub(1, std::memory_order_seq_cst);
    return node;
  }

  MpscNode stub_;
  std::atomic<MpscNode*> head_{&stub_};
  MpscNode* tail_ = &stub_;
  std::atomic<size_t> length_{0};
};

// The same queue holding values (one allocation per push): for callers that
// have no node of their own.
template <class T>
class MpscQueue {
 public:
  MpscQueue() = default;
  ~MpscQueue() {
    while (pop()) {
    }
  }
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  bool push(T value) { return queue_.push(new Node(std::move(value))); }

  std::optional<T> pop() {
    MpscNode* node = queue_.pop();
    if (node == nullptr) return std::nullopt;
    Node* owned = static_cast<Node*>(node);
    std::optional<T> value(std::move(owned->value));
    delete owned;
    return value;
  }

  size_t length() const { return queue_.length(); }

 private:
  struct Node : MpscNode {
    explicit Node(T v) : value(std::move(v)) {}
    T value;
  };
  IntrusiveMpscQueue queue_;
};

}  // namespace parley
