// storage/op_queue.hpp: the order of what the store's thread takes, the bound, the
// batches' buffers traded with the queue's, putting a cut batch back and draining.
#include "storage/op_queue.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using parley::storage::OpBatch;
using parley::storage::OpQueue;

namespace {

struct TestOp {
  int n = 0;
  std::string payload;  // moved with the op: a moved-from op must not be what runs
};

std::vector<int> numbers(const std::vector<TestOp>& ops) {
  std::vector<int> out;
  for (const auto& op : ops) out.push_back(op.n);
  return out;
}

TestOp op(int n) { return TestOp{n, "payload " + std::to_string(n) + " long enough to be on the heap"}; }

}  // namespace

TEST_CASE("OpQueue: batches come in push order, at most max each, and past the bound a push is refused") {
  OpQueue<TestOp> queue(5);
  for (int i = 1; i <= 5; ++i) CHECK(queue.push(op(i)));
  CHECK_FALSE(queue.push(op(6)));
  CHECK(queue.length() == 5);
  OpBatch<TestOp> batch;
  queue.take(2, batch);
  CHECK(numbers(batch) == std::vector<int>{1, 2});
  CHECK(batch[0].payload == op(1).payload);
  CHECK(queue.length() == 3);
  CHECK(queue.push(op(6)));
  queue.take(10, batch);  // emptied first, then everything waiting
  CHECK(numbers(batch) == std::vector<int>{3, 4, 5, 6});
  CHECK(batch[3].payload == op(6).payload);
  CHECK(queue.length() == 0);
}

TEST_CASE("OpQueue: the queue pushes into the buffer of the batch before (no allocation at a steady state)") {
  OpQueue<TestOp> queue(100);
  OpBatch<TestOp> batch;
  for (int i = 0; i < 8; ++i) queue.push(op(i));
  queue.take(16, batch);
  const TestOp* first_buffer = batch.data();
  for (int i = 8; i < 12; ++i) queue.push(op(i));
  queue.take(16, batch);
  CHECK(numbers(batch) == std::vector<int>{8, 9, 10, 11});
  for (int i = 12; i < 16; ++i) queue.push(op(i));
  queue.take(16, batch);
  // The third batch is in the buffer the first one ran in: the queue took it at the second take.
  CHECK(batch.data() == first_buffer);
  CHECK(numbers(batch) == std::vector<int>{12, 13, 14, 15});
}

TEST_CASE("OpQueue: a buffer grown past twice max by a backlog is not kept") {
  OpQueue<TestOp> queue(1000);
  OpBatch<TestOp> batch;
  for (int i = 0; i < 100; ++i) queue.push(op(i));
  queue.take(100, batch);  // the whole backlog, in the queue's buffer
  CHECK(batch.capacity() >= 100);
  queue.push(op(100));
  queue.take(10, batch);  // max 10: the 100-op buffer is given back before the take
  CHECK(numbers(batch) == std::vector<int>{100});
  CHECK(batch.capacity() < 100);
}

TEST_CASE("OpQueue: put_back puts a cut batch's ops back at the head in their order, less those dropped") {
  OpQueue<TestOp> queue(100);
  for (int i = 1; i <= 6; ++i) queue.push(op(i));
  OpBatch<TestOp> batch;
  queue.take(4, batch);  // 1..4 taken, 5 and 6 wait
  queue.push(op(7));
  int kept = 0;
  auto dropped = queue.put_back(
      batch, 1, [](const TestOp& o) { return o.n == 3; }, [&kept](TestOp&) { ++kept; });
  CHECK(numbers(dropped) == std::vector<int>{3});
  CHECK(kept == 2);
  CHECK(queue.length() == 5);
  queue.take(100, batch);
  CHECK(numbers(batch) == std::vector<int>{2, 4, 5, 6, 7});
  CHECK(batch[0].payload == op(2).payload);
}

TEST_CASE("OpQueue: take_if takes what matches in order; drain gives what is left after stop") {
  OpQueue<TestOp> queue(100);
  for (int i = 1; i <= 6; ++i) queue.push(op(i));
  auto even = queue.take_if([](const TestOp& o) { return o.n % 2 == 0; });
  CHECK(numbers(even) == std::vector<int>{2, 4, 6});
  queue.stop(std::chrono::hours(1));
  CHECK_FALSE(queue.push(op(7)));
  CHECK_FALSE(queue.done_stopping());  // ops wait, and the grace is not over
  auto left = queue.drain();
  CHECK(numbers(left) == std::vector<int>{1, 3, 5});
  CHECK(queue.done_stopping());
  OpBatch<TestOp> batch;
  queue.take(10, batch);  // stopping and empty: returns at once, empty
  CHECK(batch.empty());
}

TEST_CASE("OpQueue: a take waits for a push from another thread") {
  OpQueue<TestOp> queue(100);
  OpBatch<TestOp> batch;
  std::thread producer([&queue] { queue.push(op(42)); });
  queue.take(10, batch);
  producer.join();
  CHECK(numbers(batch) == std::vector<int>{42});
}

namespace {

// An operation whose buffer goes round (OpQueue::push_built).
struct BufferOp {
  int n = 0;
  std::string bytes;
  std::string take_buffer() { return std::move(bytes); }
};

BufferOp built(int n, std::string buffer, std::size_t size = 100) {
  buffer.assign(size, static_cast<char>('a' + n % 26));
  return BufferOp{n, std::move(buffer)};
}

bool push_built(OpQueue<BufferOp>& queue, int n, std::size_t size = 100) {
  return queue.push_built([&](std::string b) { return built(n, std::move(b), size); }, [](BufferOp&) {});
}

}  // namespace

TEST_CASE("OpQueue: push_built builds in the buffers of the batch before, not in new ones") {
  OpQueue<BufferOp> queue(100, 8);
  OpBatch<BufferOp> batch;
  for (int i = 0; i < 4; ++i) CHECK(push_built(queue, i, 300));
  queue.take(16, batch);
  std::vector<const char*> first;
  for (const auto& op : batch) first.push_back(op.bytes.data());
  CHECK(push_built(queue, 4));  // before the next take collected them: a new buffer
  queue.take(16, batch);        // collects the four, then takes op 4
  CHECK(batch[0].bytes.capacity() < 300);
  CHECK(push_built(queue, 5));
  queue.take(16, batch);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].n == 5);
  CHECK(batch[0].bytes == std::string(100, 'f'));
  // Built in one of the first batch's buffers (a new one would hold 100 bytes' worth).
  CHECK(batch[0].bytes.capacity() >= 300);
  CHECK(std::find(first.begin(), first.end(), batch[0].bytes.data()) != first.end());
}

TEST_CASE("OpQueue: spares are bounded in number and in size") {
  OpQueue<BufferOp> queue(100, 2);  // two spares at most
  OpBatch<BufferOp> batch;
  for (int i = 0; i < 5; ++i) CHECK(push_built(queue, i, 300));
  queue.take(16, batch);
  const std::size_t big = 2 * OpQueue<BufferOp>::kMaxSpareBytes;
  CHECK(push_built(queue, 5, big));
  queue.take(16, batch);  // the five buffers of 300 given back: two kept
  for (int i = 6; i < 9; ++i) CHECK(push_built(queue, i, 100));
  queue.take(16, batch);  // the big buffer given back: not kept
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].bytes.capacity() >= 300);  // recycled
  CHECK(batch[1].bytes.capacity() >= 300);  // recycled
  CHECK(batch[2].bytes.capacity() < 300);   // none left: a new one
  CHECK(batch[2].bytes == std::string(100, 'i'));
  // What the take before collected was the big buffer alone, and it was freed: op 9
  // gets a new one, not memory of that size.
  CHECK(push_built(queue, 9, 100));
  queue.take(16, batch);
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].bytes.capacity() < big);
}
