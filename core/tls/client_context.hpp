// core/tls/client_context.hpp - a client-side SSL_CTX for tests and the load generator.
#pragma once

#include <string>

#include "core/tls/openssl_ptr.hpp"
#include "parley/result.hpp"

namespace parley::tls {

struct ClientOptions {
  std::string ca_file;      // PEM of trusted certificates; empty = do not verify the server
  int min_version = 0;      // e.g. TLS1_2_VERSION; 0 = TLS 1.2
  int max_version = 0;      // e.g. TLS1_2_VERSION to force 1.2; 0 = highest
  bool alpn_xmpp = false;   // offer ALPN "xmpp-client" (XEP-0368 direct TLS)
};

Result<SslCtxPtr, std::string> make_client_context(const ClientOptions& options = {});

}  // namespace parley::tls
