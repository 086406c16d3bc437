// xml/element_pool.hpp - where element trees get their memory: a free list per thread (so per loop:
// each loop is one thread) of small blocks, in front of the heap (issue 18, allocation-free delivery).
//
// A chat message's tree is two elements, two child lists and an attribute list, built by expat's
// callbacks on the reading loop and dropped after the write, often on another loop. From glibc's heap
// each block cost a malloc and a cross-thread free (about 250 instructions per pair on the chat path,
// its per-thread cache holding only 7 blocks of a size); from here a pop and a push.
//
// Lifetime across loops: a block is plain heap memory (::operator new) that belongs to no loop. Freed
// on any thread it goes to that thread's list (or back to the heap when the list is full), and any
// element of that thread reuses it. So an element built on one loop and dropped on another stays valid
// for as long as it has an owner, as with the heap; nothing is tied to the loop that built it, and
// nothing is shared between threads (no lock, no atomic). A thread's cached blocks go back to the heap
// when the thread ends; a block freed after that (a thread_local destroyed later) goes straight there.
//
// Bounded (house rule 6): at most kPoolCachedBytes of free blocks per thread; blocks above kPoolMaxBlock
// bytes are never cached. Under AddressSanitizer cached blocks are poisoned (and a block's unused tail
// while in use), so a use after free is still reported.
#pragma once

#include <cstddef>
#include <type_traits>

namespace parley::xml {

inline constexpr size_t kPoolMaxBlock = 512;             // larger requests go to the heap (a Delivery fits)
inline constexpr size_t kPoolCachedBytes = 256 * 1024;   // free blocks kept per thread, at most

namespace pool {
void* allocate(size_t bytes);
void deallocate(void* p, size_t bytes) noexcept;
// Bytes of free blocks this thread holds (for tests).
size_t cached_bytes() noexcept;
}  // namespace pool

// The pool as a standard allocator, for the child and attribute lists. Stateless: lists move and swap
// between elements (and threads) by pointer, as with std::allocator.
template <class T>
struct PoolAllocator {
  static_assert(alignof(T) <= alignof(std::max_align_t), "pool blocks are heap-aligned only");
  using value_type = T;
  using is_always_equal = std::true_type;
  PoolAllocator() noexcept = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}  // NOLINT: rebinding, as std::allocator
  T* allocate(size_t n) { return static_cast<T*>(pool::allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { pool::deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace parley::xml
