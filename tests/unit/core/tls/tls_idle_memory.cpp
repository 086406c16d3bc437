// Heap bytes per idle server Stream (not a test: a measurement to read).
//
//   tls_idle_memory [N=2000]
//
// For N connections: a client and a server Stream handshake in memory, exchange a stream
// header and features, then the client is destroyed and the server Stream kept, idle.
// Reported: the growth of malloc'd bytes in use (mallinfo2: uordblks + hblkhd) divided by N,
// and the RSS growth for comparison (RSS also counts allocator slack and fragmentation).
#include <malloc.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "core/tls/client_context.hpp"
#include "tls_test_support.hpp"

using namespace parley::tls;
using namespace parley::tls::test;

namespace {

size_t heap_in_use() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::unique_ptr<Stream> idle_server(const ContextStore& store, SSL_CTX* cctx) {
  auto s = Stream::server(store, "example.org");
  auto c = Stream::client(cctx, "example.org");
  if (!s || !c) std::abort();
  Pair p;
  p.server = std::move(*s);
  p.client = std::move(*c);
  if (!p.start()) {
    std::fprintf(stderr, "handshake: %s\n", p.error.c_str());
    std::exit(1);
  }
  if (!p.client->write("<stream:stream to='example.org' xmlns='jabber:client'>", p.to_server) ||
      !p.server->write("<stream:features><mechanisms/></stream:features>", p.to_client) || !p.pump()) {
    std::exit(1);
  }
  return std::move(p.server);
}

void measure(const char* label, const ContextStore& store, SSL_CTX* cctx, size_t n) {
  idle_server(store, cctx);  // warm up: lazy OpenSSL state (providers, method tables)
  std::vector<std::unique_ptr<Stream>> kept;
  kept.reserve(n);
  malloc_trim(0);
  const size_t heap0 = heap_in_use(), rss0 = rss_bytes();
  for (size_t i = 0; i < n; ++i) kept.push_back(idle_server(store, cctx));
  malloc_trim(0);
  const size_t heap1 = heap_in_use(), rss1 = rss_bytes();
  std::printf("%-34s %s  heap %7.0f B/stream (%.2f KiB)   rss %7.0f B/stream\n", label,
              kept.front()->protocol().c_str(), double(heap1 - heap0) / double(n), double(heap1 - heap0) / double(n) / 1024,
              double(rss1 - rss0) / double(n));
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 2000;
  TempDir dir;
  const std::string pem = self_signed(dir, "example.org", "server.pem");
  auto store = ContextStore::load({pem}, {"example.org"});
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().c_str());
    return 1;
  }
  auto c13 = make_client_context();
  ClientOptions o12;
  o12.max_version = TLS1_2_VERSION;
  auto c12 = make_client_context(o12);
  if (!c13 || !c12) return 1;

  std::printf("N = %zu idle server streams, sizeof(Stream) = %zu\n", n, sizeof(Stream));
  measure("TLS 1.3 (as configured)", **store, c13->get(), n);
  measure("TLS 1.2 (as configured)", **store, c12->get(), n);
  // A peer that stops in the middle of a record pins OpenSSL's read buffer until the rest
  // arrives (the handshake timeout / idle policy of the core bounds this).
  {
    std::vector<std::unique_ptr<Stream>> kept;
    std::vector<std::string> halves;
    kept.reserve(200);
    for (size_t i = 0; i < 200; ++i) {
      auto s = Stream::server(**store, "example.org");
      auto c = Stream::client(c13->get(), "example.org");
      Pair p;
      p.server = std::move(*s);
      p.client = std::move(*c);
      if (!p.start() || !p.client->write("<presence/>", p.to_server)) return 1;
      halves.push_back(p.to_server.substr(0, p.to_server.size() / 2));
      p.to_server.clear();
      kept.push_back(std::move(p.server));
    }
    const size_t before = heap_in_use();
    std::string plain, out;
    for (size_t i = 0; i < kept.size(); ++i) (void)kept[i]->feed(halves[i], plain, out);
    std::printf("%-34s          +%.0f B/stream while a record is incomplete\n", "partial record pending",
                double(heap_in_use() - before) / double(kept.size()));
  }
  // For comparison: other suites, and no session tickets.
  SslCtxPtr chacha(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_ciphersuites(chacha.get(), "TLS_CHACHA20_POLY1305_SHA256");
  measure("TLS 1.3 ChaCha20-Poly1305", **store, chacha.get(), n);
  SslCtxPtr aes256(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_ciphersuites(aes256.get(), "TLS_AES_256_GCM_SHA384");
  measure("TLS 1.3 AES-256-GCM", **store, aes256.get(), n);
  SSL_CTX_set_num_tickets((*store)->context_for("example.org"), 0);
  measure("TLS 1.3 without tickets", **store, c13->get(), n);
  return 0;
}
