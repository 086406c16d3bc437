#include "core/tls/stream.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>

#include "core/tls/context_store.hpp"
#include "core/tls/openssl_ptr.hpp"

namespace parley::tls {

// The BIO between OpenSSL and the caller's buffers. Reading pulls from the span passed to
// feed(); when it is exhausted the read "would block", which OpenSSL reports as
// SSL_ERROR_WANT_READ. Writing appends to the caller's `outgoing` and never blocks, so
// OpenSSL never holds a pending write between calls.
struct StreamBio {
  static int write_ex(BIO* b, const char* data, size_t len, size_t* written) {
    BIO_clear_retry_flags(b);
    auto* s = static_cast<Stream*>(BIO_get_data(b));
    if (!s || !s->out_) return 0;  // OpenSSL writing outside feed/write: a bug, fail loudly
    s->out_->append(data, len);
    *written = len;
    return 1;
  }

  static int read_ex(BIO* b, char* data, size_t len, size_t* read) {
    BIO_clear_retry_flags(b);
    auto* s = static_cast<Stream*>(BIO_get_data(b));
    *read = 0;
    if (!s || s->in_.empty()) {
      BIO_set_retry_read(b);
      return 0;
    }
    const size_t n = std::min(len, s->in_.size());
    std::memcpy(data, s->in_.data(), n);
    s->in_.remove_prefix(n);
    *read = n;
    return 1;
  }

  static long ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static int destroy(BIO* b) {
    BIO_set_data(b, nullptr);
    return 1;
  }

  // One method table for the process; built on first use (thread-safe static init).
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "parley stream");
      if (!bm) return bm;
      BIO_meth_set_write_ex(bm, write_ex);
      BIO_meth_set_read_ex(bm, read_ex);
      BIO_meth_set_ctrl(bm, ctrl);
      BIO_meth_set_create(bm, create);
      BIO_meth_set_destroy(bm, destroy);
      return bm;
    }();
    return m;
  }

  // Points the BIO at the caller's buffers for the length of one call, with the thread's
  // error queue empty before it (SSL_get_error reads the queue) and after. The queue is
  // peeked at first: clearing an empty one walks all its slots, and was 1,500 of a chat
  // message's 44,000 instructions (callgrind, BENCHMARKS.md "Session 19").
  class Scope {
   public:
    Scope(Stream& s, std::string_view in, std::string& out) : s_(s) {
      s_.in_ = in;
      s_.out_ = &out;
      clear_errors();
    }
    ~Scope() {
      s_.in_ = {};
      s_.out_ = nullptr;
      clear_errors();
    }
    static void clear_errors() {
      if (ERR_peek_error() != 0) ERR_clear_error();
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Stream& s_;
  };
};

namespace {

Result<std::unique_ptr<Stream>, std::string> attach_bio(std::unique_ptr<Stream> s, SSL* ssl) {
  BIO* bio = BIO_new(StreamBio::method());
  if (!bio) return unexpected(openssl_error("cannot create BIO"));
  BIO_set_data(bio, s.get());
  SSL_set_bio(ssl, bio, bio);  // the SSL owns the BIO (one reference for both directions)
  return s;
}

}  // namespace

Result<std::unique_ptr<Stream>, std::string> Stream::server(const ContextStore& store, std::string_view default_host) {
  ERR_clear_error();
  SSL* ssl = store.new_server_ssl(default_host);
  if (!ssl) {
    ERR_clear_error();
    return unexpected("no certificate for host '" + std::string(default_host) + "'");
  }
  std::unique_ptr<Stream> s(new Stream(ssl));
  SSL_set_accept_state(ssl);
  return attach_bio(std::move(s), ssl);
}

Result<std::unique_ptr<Stream>, std::string> Stream::client(SSL_CTX* client_ctx, std::string_view sni) {
  ERR_clear_error();
  if (!client_ctx) return unexpected(std::string("no client context"));
  SSL* ssl = SSL_new(client_ctx);
  if (!ssl) return unexpected(openssl_error("SSL_new"));
  std::unique_ptr<Stream> s(new Stream(ssl));
  if (!sni.empty()) {
    const std::string name(sni);
    if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1 || SSL_set1_host(ssl, name.c_str()) != 1) {
      return unexpected(openssl_error("invalid server name '" + name + "'"));
    }
  }
  SSL_set_connect_state(ssl);
  return attach_bio(std::move(s), ssl);
}

Stream::~Stream() { SSL_free(ssl_); }

Result<void, std::string> Stream::fail(int ssl_error, std::string_view during) {
  failed_ = true;
  std::string what = "TLS " + std::string(during) + " failed";
  const long verify = SSL_get_verify_result(ssl_);
  if (verify != X509_V_OK) what += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
  switch (ssl_error) {
    case SSL_ERROR_SSL: return unexpected(openssl_error(what));
    case SSL_ERROR_SYSCALL: return unexpected(openssl_error(what + ": I/O error"));
    case SSL_ERROR_ZERO_RETURN: return unexpected(what + ": the peer closed the TLS session");
    default: return unexpected(openssl_error(what + ": SSL error " + std::to_string(ssl_error)));
  }
}

Result<void, std::string> Stream::feed(std::string_view ciphertext, std::string& plaintext, std::string& outgoing) {
  if (failed_) return unexpected(std::string("TLS stream already failed"));
  StreamBio::Scope scope(*this, ciphertext, outgoing);
  if (!SSL_is_init_finished(ssl_)) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      const int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ) return {};  // all input consumed, the rest of the flight is to come
      return fail(e, "handshake");
    }
  }
  // Records left in the input (application data right behind the handshake, tickets, key
  // updates) are decrypted now: the span is gone after this call.
  char buf[16384];
  for (;;) {
    size_t n = 0;
    const int r = SSL_read_ex(ssl_, buf, sizeof buf, &n);
    if (r == 1) {
      plaintext.append(buf, n);
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_ZERO_RETURN) break;
    return fail(e, "read");
  }
  return {};
}

Result<void, std::string> Stream::write(std::string_view plaintext, std::string& outgoing) {
  if (failed_) return unexpected(std::string("TLS stream already failed"));
  if (!SSL_is_init_finished(ssl_)) return unexpected(std::string("TLS handshake not complete"));
  if (plaintext.empty()) return {};
  StreamBio::Scope scope(*this, {}, outgoing);
  size_t written = 0;
  const int r = SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &written);
  if (r != 1) return fail(SSL_get_error(ssl_, r), "write");
  return {};
}

void Stream::close_notify(std::string& outgoing) {
  if (failed_ || close_sent_ || !SSL_is_init_finished(ssl_)) return;
  StreamBio::Scope scope(*this, {}, outgoing);
  SSL_shutdown(ssl_);
  close_sent_ = true;
}

bool Stream::handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }

bool Stream::peer_closed() const { return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0; }

std::string Stream::channel_binding_tls_exporter() const {
  if (!handshake_done() || SSL_version(ssl_) != TLS1_3_VERSION) return {};
  static constexpr char kLabel[] = "EXPORTER-Channel-Binding";
  unsigned char out[32];
  if (SSL_export_keying_material(ssl_, out, sizeof out, kLabel, sizeof kLabel - 1, nullptr, 0, 0) != 1) {
    ERR_clear_error();
    return {};
  }
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

bool Stream::tls13() const { return handshake_done() && SSL_version(ssl_) >= TLS1_3_VERSION; }

std::string Stream::channel_binding_tls_unique() const {
  // RFC 9266: undefined for TLS 1.3 (its Finished messages do not bind the
  // connection the way RFC 5929 assumed), so neither offered nor accepted there.
  if (!handshake_done() || SSL_version(ssl_) >= TLS1_3_VERSION) return {};
  unsigned char out[EVP_MAX_MD_SIZE];
  bool own = (SSL_session_reused(ssl_) != 0) == (SSL_is_server(ssl_) != 0);
  size_t len = own ? SSL_get_finished(ssl_, out, sizeof out) : SSL_get_peer_finished(ssl_, out, sizeof out);
  if (len == 0 || len > sizeof out) return {};
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Stream::channel_binding_tls_server_end_point() const {
  X509* cert = SSL_is_server(ssl_) ? SSL_get_certificate(ssl_) : SSL_get0_peer_certificate(ssl_);
  if (!cert) return {};
  int md_nid = NID_undef;
  if (X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) != 1) md_nid = NID_undef;
  const EVP_MD* md = nullptr;
  if (md_nid != NID_undef && md_nid != NID_md5 && md_nid != NID_sha1) md = EVP_get_digestbynid(md_nid);
  if (!md) md = EVP_sha256();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (X509_digest(cert, md, out, &len) != 1) {
    ERR_clear_error();
    return {};
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Stream::server_name() const {
  const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
  std::string out = name ? name : "";
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Stream::protocol() const { return handshake_done() ? SSL_get_version(ssl_) : ""; }

std::string Stream::cipher() const {
  const char* name = handshake_done() ? SSL_get_cipher_name(ssl_) : nullptr;
  return name ? name : "";
}

std::string Stream::alpn() const {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &p, &len);
  return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string();
}

}  // namespace parley::tls
