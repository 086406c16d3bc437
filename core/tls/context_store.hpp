// core/tls/context_store.hpp - the server's certificates, one SSL_CTX per certificate.
//
// Thread safety: one store serves every worker loop. context_for(), Stream::server() and the
// SNI callback may run on any thread while reload() runs on another.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "parley/result.hpp"

namespace parley::tls {

class Stream;

class ContextStore {
 public:
  // certfiles: PEM files, each holding certificates and/or private keys in any order
  // (ejabberd style: a chain and its key in one file, or spread over several). Keys are
  // paired with certificates by public key; a certificate with a key is a leaf, the others
  // are intermediates chained to it by issuer. Each host gets the leaf whose SAN (or CN
  // without SAN) matches it exactly, else by wildcard; among several, a currently valid one
  // expiring last. Errors name the file and the reason. A host no certificate matches is no
  // error (see hosts_without_certificate()); the caller decides.
  static Result<std::unique_ptr<ContextStore>, std::string> load(const std::vector<std::string>& certfiles,
                                                                 const std::vector<std::string>& hosts);
  ~ContextStore();
  ContextStore(const ContextStore&) = delete;
  ContextStore& operator=(const ContextStore&) = delete;

  // SIGHUP: re-read the same files. On error the old contexts stay in use. Connections keep
  // the SSL_CTX they started with (OpenSSL reference-counts it); new ones get the new.
  Result<void, std::string> reload();

  // nullptr if no certificate matches `host` (case-insensitive). The pointer is borrowed:
  // it stays valid until the second reload() after this call (the previous generation is
  // kept for one reload); take SSL_CTX_up_ref() to hold it longer.
  SSL_CTX* context_for(std::string_view host) const;

  std::vector<std::string> hosts_without_certificate() const;

  // ALPN protocol the server accepts (XEP-0368 direct TLS); a client offering only others
  // proceeds without ALPN.
  static constexpr std::string_view kAlpn = "xmpp-client";

 private:
  struct Generation;
  ContextStore() = default;
  static Result<std::shared_ptr<const Generation>, std::string> build(ContextStore* self,
                                                                      const std::vector<std::string>& certfiles,
                                                                      const std::vector<std::string>& hosts);
  static int on_servername(SSL* ssl, int* alert, void* arg);
  // Creates the SSL for Stream::server() under the lock, so a concurrent reload cannot free
  // the context between lookup and SSL_new().
  SSL* new_server_ssl(std::string_view default_host) const;
  friend class Stream;

  std::vector<std::string> certfiles_;
  std::vector<std::string> hosts_;
  mutable std::shared_mutex mutex_;
  std::shared_ptr<const Generation> current_;
  std::shared_ptr<const Generation> previous_;
};

}  // namespace parley::tls
