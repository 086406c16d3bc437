#include "core/tls/context_store.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "core/tls/openssl_ptr.hpp"
#include "core/tls/pem_material.hpp"

namespace parley::tls {

struct ContextStore::Generation {
  std::vector<SslCtxPtr> contexts;                      // one per set of leaves served together
  std::vector<std::pair<std::string, SSL_CTX*>> hosts;  // host -> its context, nullptr if none

  SSL_CTX* find(std::string_view host) const {
    for (const auto& [name, ctx] : hosts) {
      if (name == host) return ctx;
    }
    return nullptr;
  }
};

namespace {

// TLS 1.2 suites: forward secret and AEAD only (Mozilla "intermediate"). TLS 1.3 keeps
// OpenSSL's default suites, which are all of that kind.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// X25519 first: the cheapest key exchange, and the smallest per-handshake state.
constexpr const char* kGroups = "X25519:P-256:P-384";

std::string normalize_host(std::string_view host) {
  std::string out(host);
  if (!out.empty() && out.back() == '.') out.pop_back();
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen,
                void*) {
  const std::string_view want = ContextStore::kAlpn;
  for (unsigned i = 0; i < inlen;) {
    const unsigned len = in[i];
    if (i + 1 + len > inlen) break;
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == want) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  // XMPP clients that send no "xmpp-client" still get TLS, just without ALPN.
  return SSL_TLSEXT_ERR_NOACK;
}

bool currently_valid(X509* cert) {
  return X509_cmp_current_time(X509_get0_notBefore(cert)) <= 0 && X509_cmp_current_time(X509_get0_notAfter(cert)) >= 0;
}

// Prefers an exact name over a wildcard, a currently valid certificate over one that is
// not, then the one expiring last (a renewed certificate next to the old one wins).
// `key_type`: only leaves whose key is of that type (EVP_PKEY_get_base_id); 0: any.
const detail::Leaf* pick_leaf(const std::vector<detail::Leaf>& leaves, const std::string& host, int key_type = 0) {
  const detail::Leaf* best = nullptr;
  int best_rank = -1;
  for (const detail::Leaf& l : leaves) {
    if (key_type != 0 && EVP_PKEY_get_base_id(l.key) != key_type) continue;
    int rank = -1;
    if (X509_check_host(l.cert, host.data(), host.size(), X509_CHECK_FLAG_NO_WILDCARDS, nullptr) == 1) {
      rank = 2;
    } else if (X509_check_host(l.cert, host.data(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) ==
               1) {
      rank = 0;
    }
    if (rank < 0) continue;
    if (currently_valid(l.cert)) rank += 1;
    if (rank > best_rank ||
        (rank == best_rank && ASN1_TIME_compare(X509_get0_notAfter(l.cert), X509_get0_notAfter(best->cert)) > 0)) {
      best = &l;
      best_rank = rank;
    }
  }
  ERR_clear_error();
  return best;
}

// What a host's context serves: the best leaf for the host, and beside it the best of
// each other kind of key (an ECDSA certificate next to an RSA one, as nginx and Apache
// take them). OpenSSL keeps one certificate per kind of key in a context and gives
// each client one its signature algorithms accept: ECDSA to nearly every client (a
// signature about 13 times cheaper than RSA-2048's), RSA to one that offers no ECDSA.
// A kind is added only when its best leaf is as currently valid as the host's best:
// an expired ECDSA certificate never reaches the clients that would prefer it.
// Sorted by position in `leaves` (the key of the contexts shared between hosts).
std::vector<size_t> pick_leaves(const std::vector<detail::Leaf>& leaves, const std::string& host) {
  std::vector<size_t> out;
  const detail::Leaf* best = pick_leaf(leaves, host);
  if (best == nullptr) return out;
  const bool best_valid = currently_valid(best->cert);
  const int best_type = EVP_PKEY_get_base_id(best->key);
  out.push_back(static_cast<size_t>(best - leaves.data()));
  std::vector<int> types;
  for (const detail::Leaf& l : leaves) {
    const int type = EVP_PKEY_get_base_id(l.key);
    if (type == best_type || std::find(types.begin(), types.end(), type) != types.end()) continue;
    types.push_back(type);
    const detail::Leaf* other = pick_leaf(leaves, host, type);
    if (other != nullptr && currently_valid(other->cert) == best_valid)
      out.push_back(static_cast<size_t>(other - leaves.data()));
  }
  ERR_clear_error();
  std::sort(out.begin(), out.end());
  return out;
}

Result<SslCtxPtr, std::string> make_server_context(const std::vector<const detail::Leaf*>& leaves, ContextStore* store,
                                                   int (*servername_cb)(SSL*, int*, void*)) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return unexpected(openssl_error("SSL_CTX_new"));
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // Renegotiation is a DoS lever and XMPP never needs it; compression invites CRIME.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // The headline: an idle connection holds no 16 KiB read or write buffer.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1 || SSL_CTX_set1_groups_list(c, kGroups) != 1) {
    return unexpected(openssl_error("cannot set ciphers"));
  }
  // Resumption: stateless tickets only. The server keeps no per-session cache (its memory
  // would grow with every client ever seen); the client carries the encrypted state, so a
  // reconnecting mobile client skips the public-key work at no memory cost here. One ticket
  // rather than OpenSSL's two: XMPP clients hold one connection at a time.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 1);

  // Each leaf fills its kind of key's slot; the chain added after it is that slot's.
  for (const detail::Leaf* leaf : leaves) {
    if (SSL_CTX_use_certificate(c, leaf->cert) != 1 || SSL_CTX_use_PrivateKey(c, leaf->key) != 1 ||
        SSL_CTX_check_private_key(c) != 1) {
      return unexpected(openssl_error(leaf->file + ": cannot use certificate"));
    }
    for (X509* x : leaf->chain) {
      if (SSL_CTX_add1_chain_cert(c, x) != 1) return unexpected(openssl_error(leaf->file + ": cannot add chain"));
    }
  }
  SSL_CTX_set_tlsext_servername_callback(c, servername_cb);
  SSL_CTX_set_tlsext_servername_arg(c, store);
  SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
  return ctx;
}

}  // namespace

ContextStore::~ContextStore() = default;

Result<std::shared_ptr<const ContextStore::Generation>, std::string> ContextStore::build(
    ContextStore* self, const std::vector<std::string>& certfiles, const std::vector<std::string>& hosts) {
  ERR_clear_error();
  if (certfiles.empty()) return unexpected(std::string("no certfiles given"));
  auto material = detail::read_pem_files(certfiles);
  if (!material) return unexpected(material.error());
  auto leaves = detail::pair_leaves(*material);
  if (!leaves) return unexpected(leaves.error());
  if (leaves->empty()) return unexpected(std::string("no certificate with its private key in the certfiles"));

  auto gen = std::make_shared<Generation>();
  // Hosts served by the same leaves share one context.
  std::map<std::vector<size_t>, SSL_CTX*> by_leaves;
  for (const std::string& raw : hosts) {
    const std::string host = normalize_host(raw);
    const std::vector<size_t> picked = pick_leaves(*leaves, host);
    SSL_CTX* ctx = nullptr;
    if (!picked.empty()) {
      SSL_CTX*& shared = by_leaves[picked];
      if (!shared) {
        std::vector<const detail::Leaf*> use;
        for (size_t i : picked) use.push_back(&(*leaves)[i]);
        auto made = make_server_context(use, self, &ContextStore::on_servername);
        if (!made) return unexpected(made.error());
        shared = made->get();
        gen->contexts.push_back(std::move(*made));
      }
      ctx = shared;
    }
    gen->hosts.emplace_back(host, ctx);
  }
  ERR_clear_error();
  return std::shared_ptr<const Generation>(std::move(gen));
}

Result<std::unique_ptr<ContextStore>, std::string> ContextStore::load(const std::vector<std::string>& certfiles,
                                                                      const std::vector<std::string>& hosts) {
  std::unique_ptr<ContextStore> store(new ContextStore());
  store->certfiles_ = certfiles;
  store->hosts_ = hosts;
  auto gen = build(store.get(), certfiles, hosts);
  if (!gen) return unexpected(gen.error());
  store->current_ = std::move(*gen);
  return store;
}

Result<void, std::string> ContextStore::reload() {
  auto gen = build(this, certfiles_, hosts_);
  if (!gen) return unexpected(gen.error());
  std::shared_ptr<const Generation> retired;
  {
    std::unique_lock lock(mutex_);
    retired = std::move(previous_);
    previous_ = std::move(current_);
    current_ = std::move(*gen);
  }
  // `retired` frees its contexts here, outside the lock; connections still using one keep
  // it alive through their own reference.
  return {};
}

SSL_CTX* ContextStore::context_for(std::string_view host) const {
  const std::string h = normalize_host(host);
  std::shared_lock lock(mutex_);
  return current_->find(h);
}

std::vector<std::string> ContextStore::hosts_without_certificate() const {
  std::vector<std::string> out;
  std::shared_lock lock(mutex_);
  for (const auto& [name, ctx] : current_->hosts) {
    if (!ctx) out.push_back(name);
  }
  return out;
}

SSL* ContextStore::new_server_ssl(std::string_view default_host) const {
  const std::string h = normalize_host(default_host);
  std::shared_lock lock(mutex_);
  SSL_CTX* ctx = current_->find(h);
  return ctx ? SSL_new(ctx) : nullptr;
}

int ContextStore::on_servername(SSL* ssl, int* alert, void* arg) {
  const auto* self = static_cast<const ContextStore*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  // No SNI, or a name we do not serve: carry on with the default host's certificate; the
  // XMPP stream header will then name the host and the core decides.
  if (!name || !self) return SSL_TLSEXT_ERR_OK;
  const std::string host = normalize_host(name);
  std::shared_lock lock(self->mutex_);
  SSL_CTX* ctx = self->current_->find(host);
  if (ctx && ctx != SSL_get_SSL_CTX(ssl) && !SSL_set_SSL_CTX(ssl, ctx)) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace parley::tls
