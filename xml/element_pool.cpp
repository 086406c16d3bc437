#include "xml/element_pool.hpp"

#include <new>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define PARLEY_POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define PARLEY_POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define PARLEY_POOL_POISON(p, n) ((void)(p), (void)(n))
#define PARLEY_POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace parley::xml {

namespace {

constexpr size_t kGrain = 16;  // size classes 16, 32, ..., kPoolMaxBlock bytes
constexpr size_t kClasses = kPoolMaxBlock / kGrain;

struct FreeBlock {
  FreeBlock* next;
};

struct Cache {
  FreeBlock* heads[kClasses] = {};
  size_t bytes = 0;
  ~Cache();
};

// Trivially destructible, so still readable while (and after) the thread's destructors run: a block
// freed once the cache is gone goes straight to the heap.
thread_local bool t_cache_gone = false;
thread_local Cache t_cache;

Cache::~Cache() {
  t_cache_gone = true;
  for (size_t c = 0; c < kClasses; ++c) {
    while (FreeBlock* b = heads[c]) {
      PARLEY_POOL_UNPOISON(b, (c + 1) * kGrain);
      heads[c] = b->next;
      ::operator delete(b);
    }
  }
  bytes = 0;
}

size_t class_of(size_t bytes) { return (bytes + kGrain - 1) / kGrain - 1; }

}  // namespace

namespace pool {

void* allocate(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes > kPoolMaxBlock || t_cache_gone) return ::operator new(bytes);
  const size_t c = class_of(bytes);
  const size_t size = (c + 1) * kGrain;
  Cache& cache = t_cache;
  if (FreeBlock* b = cache.heads[c]) {
    PARLEY_POOL_UNPOISON(b, sizeof(FreeBlock));
    cache.heads[c] = b->next;
    cache.bytes -= size;
    PARLEY_POOL_UNPOISON(b, bytes);  // the tail of the class stays poisoned while in use
    return b;
  }
  // Always the whole class, so that any request of the class can reuse it later.
  void* p = ::operator new(size);
  PARLEY_POOL_POISON(static_cast<char*>(p) + bytes, size - bytes);
  return p;
}

void deallocate(void* p, size_t bytes) noexcept {
  if (p == nullptr) return;
  if (bytes == 0) bytes = 1;
  if (bytes > kPoolMaxBlock || t_cache_gone) {
    // A block of a class was allocated with the class's size; the heap does not care (unsized delete).
    PARLEY_POOL_UNPOISON(p, bytes > kPoolMaxBlock ? bytes : (class_of(bytes) + 1) * kGrain);
    ::operator delete(p);
    return;
  }
  const size_t c = class_of(bytes);
  const size_t size = (c + 1) * kGrain;
  Cache& cache = t_cache;
  if (cache.bytes + size > kPoolCachedBytes) {
    PARLEY_POOL_UNPOISON(p, size);
    ::operator delete(p);
    return;
  }
  PARLEY_POOL_UNPOISON(p, size);
  auto* b = static_cast<FreeBlock*>(p);
  b->next = cache.heads[c];
  cache.heads[c] = b;
  cache.bytes += size;
  PARLEY_POOL_POISON(p, size);
}

size_t cached_bytes() noexcept { return t_cache_gone ? 0 : t_cache.bytes; }

}  // namespace pool

}  // namespace parley::xml
