#include "core/tls/client_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace parley::tls {

Result<SslCtxPtr, std::string> make_client_context(const ClientOptions& options) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return unexpected(openssl_error("SSL_CTX_new"));
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, options.min_version ? options.min_version : TLS1_2_VERSION);
  if (options.max_version) SSL_CTX_set_max_proto_version(c, options.max_version);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c, options.ca_file.c_str(), nullptr) != 1) {
      return unexpected(openssl_error(options.ca_file + ": cannot load CA file"));
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  if (options.alpn_xmpp) {
    static const unsigned char kProtos[] = "\x0bxmpp-client";
    if (SSL_CTX_set_alpn_protos(c, kProtos, sizeof kProtos - 1) != 0) return unexpected(openssl_error("ALPN"));
  }
  return ctx;
}

}  // namespace parley::tls
