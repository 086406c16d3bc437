// core/tls/stream.hpp - one connection's TLS state machine over byte buffers, no socket.
//
// The core owns the libuv socket: it hands feed() what it read and sends what lands in
// `outgoing`. Nothing is buffered in the Stream between calls: a custom BIO reads straight
// from the span given to feed() and writes straight into the caller's `outgoing`. The only
// bytes OpenSSL holds between calls are a partial TLS record (its own read buffer, until the
// rest of the record arrives; released as soon as the record completes, thanks to
// SSL_MODE_RELEASE_BUFFERS). An idle stream therefore holds no I/O buffer at all.
//
// Not thread-safe: a Stream lives on its connection's loop. OpenSSL's error queue is per
// thread and every call leaves it empty.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "parley/result.hpp"

namespace parley::tls {

class ContextStore;

class Stream {
 public:
  // SNI picks the context through the store's servername callback; no SNI or an unknown
  // name keeps default_host's. Error when default_host has no certificate. The store must
  // outlive the handshake (it serves the SNI callback).
  static Result<std::unique_ptr<Stream>, std::string> server(const ContextStore& store, std::string_view default_host);
  // For tests and the load generator. The Stream takes its own reference on client_ctx.
  // sni (may be empty) is sent as server_name and, when client_ctx verifies the peer, is
  // the name the certificate must carry.
  static Result<std::unique_ptr<Stream>, std::string> client(SSL_CTX* client_ctx, std::string_view sni);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Consumes all of `ciphertext` (bytes read from the network; may be empty, and for a
  // client an empty feed() produces the ClientHello). Decrypted application data is appended
  // to `plaintext`; bytes to send (handshake, session ticket, key update, alerts) are appended
  // to `outgoing`. On error the stream is dead; `outgoing` may still hold an alert worth
  // sending before closing. Data after the peer's close_notify is ignored (see peer_closed()).
  Result<void, std::string> feed(std::string_view ciphertext, std::string& plaintext, std::string& outgoing);

  // Encrypts into `outgoing`. Only after handshake_done(): before that it returns an error
  // and buffers nothing (XMPP never has application data to send mid-handshake, and a
  // buffer here would cost memory on every connection).
  Result<void, std::string> write(std::string_view plaintext, std::string& outgoing);

  // Appends our close_notify alert (once; nothing before the handshake is done).
  void close_notify(std::string& outgoing);

  bool handshake_done() const;
  bool peer_closed() const;  // the peer's close_notify arrived
  bool failed() const { return failed_; }

  // RFC 9266 tls-exporter: 32 bytes of keying material, label "EXPORTER-Channel-Binding",
  // no context. Empty unless the handshake is done with TLS 1.3.
  std::string channel_binding_tls_exporter() const;
  // RFC 5929 section 4.1 tls-server-end-point: hash of the server certificate (DER), with
  // the certificate signature's hash, SHA-256 when that is MD5 or SHA-1 or when the
  // signature has no separate hash (Ed25519). Empty when there is no server certificate.
  std::string channel_binding_tls_server_end_point() const;
  // RFC 5929 section 3.1 tls-unique: the first Finished message of the latest handshake
  // (the client's in a full handshake, the server's when the session was resumed). Empty
  // on TLS 1.3, where it is not defined (RFC 9266 section 3: clients use tls-exporter);
  // gloox 1.0 (GnuTLS, TLS 1.2 only) and slixmpp 1.8 over TLS 1.2 still bind with it.
  std::string channel_binding_tls_unique() const;

  std::string server_name() const;  // the SNI the client sent, lowercased; empty if none
  std::string protocol() const;     // "TLSv1.3"
  bool tls13() const;               // the handshake is done and negotiated TLS 1.3 or later
  std::string cipher() const;       // "TLS_AES_128_GCM_SHA256"
  std::string alpn() const;         // the negotiated ALPN protocol, empty if none

 private:
  explicit Stream(SSL* ssl) : ssl_(ssl) {}
  Result<void, std::string> fail(int ssl_error, std::string_view during);
  friend struct StreamBio;

  SSL* ssl_;
  // Valid only during feed()/write()/close_notify(): the custom BIO's source and sink.
  std::string_view in_;
  std::string* out_ = nullptr;
  bool failed_ = false;
  bool close_sent_ = false;
};

}  // namespace parley::tls
