// tools/parley-bench/xmpp_client.hpp - one client connection of the load generator.
//
// TCP (optionally from a chosen 127.0.0.X source address), TLS (STARTTLS or direct), SASL
// (SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN), resource binding and initial presence; or, in register mode,
// an in-band registration (XEP-0077) after STARTTLS. Once online it hands every stanza to its
// Listener. It lives on one Worker and is touched only from that worker's thread.
//
// Life cycle: start() -> online (Listener::on_online) or failure (Listener::on_failed) -> close() or
// abort() -> Listener::on_closed, after which start() may be called again (churn). dispose() closes
// the handles for good; delete the object only after its worker has stopped.
#pragma once

#include <netinet/in.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/tls/stream.hpp"
#include "scram_client.hpp"
#include "worker.hpp"
#include "xml/stream_parser.hpp"

namespace parley::bench {

enum class TlsMode { none, starttls, direct };
enum class Mechanism { scram_sha256, scram_sha1, plain };

std::string_view mechanism_name(Mechanism m);  // "SCRAM-SHA-256"
std::string_view tls_mode_name(TlsMode m);     // "starttls"

// Where and how every client of a run connects. Shared read-only by all workers.
struct Target {
  std::string domain = "localhost";  // the XMPP domain (stream to=, JIDs, SNI)
  sockaddr_in server{};              // the c2s listener
  TlsMode tls = TlsMode::starttls;
  Mechanism mechanism = Mechanism::scram_sha256;
  SSL_CTX* ssl_ctx = nullptr;        // the client TLS context (not owned)
  SaltedPasswordCache* scram_cache = nullptr;
  double login_timeout_s = 60;       // connect to online (or registered)
  bool initial_presence = true;
  bool stream_management = false;  // <enable/> (XEP-0198) once bound; the server's <r/> answered
  bool csi_inactive = false;       // <inactive/> (XEP-0352) once bound
};

class XmppClient final : private xml::StreamParser::Handler {
 public:
  enum class Mode { login, register_account };
  enum class Phase : uint8_t { idle, negotiating, online, closing, closed };
  enum class Registration : uint8_t { none, created, existed };

  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void on_online(XmppClient& client) = 0;  // logged in and bound, or registered
    virtual void on_failed(XmppClient& client, std::string_view why) = 0;  // before or after online
    virtual void on_stanza(XmppClient& client, const xml::Element& stanza) {}  // online only
    virtual void on_closed(XmppClient& client) {}  // the socket is closed; start() may be called again
  };

  XmppClient(Worker& worker, const Target& target, Listener& listener);
  ~XmppClient() override;
  XmppClient(const XmppClient&) = delete;
  XmppClient& operator=(const XmppClient&) = delete;

  // Connects and negotiates. Only when idle or closed. `source` (may be null) is bound before connect.
  void start(Mode mode, std::string user, std::string password, std::string resource, const sockaddr_in* source);
  // Sends raw XML (a serialized stanza). Ignored unless online.
  void send(std::string_view xml);
  // Graceful: </stream:stream>, then the socket closes when the server closes its stream (or after 5 s).
  void close();
  // Immediate close. Reports on_failed(why) unless already closing.
  void abort(std::string_view why);
  // Closes the handles for good (worker thread); the object may be deleted once the worker stopped.
  void dispose();

  Phase phase() const { return phase_; }
  Registration registration() const { return registration_; }
  const std::string& user() const { return user_; }
  const std::string& full_jid() const { return full_jid_; }
  uint64_t started_ns() const { return started_ns_; }
  uint64_t online_ns() const { return online_ns_; }
  Worker& worker() { return worker_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" once TLS is up, else "".
  std::string tls_description() const;

  // Counts since the client was created (worker thread): socket reads that brought bytes (the
  // client's wake-ups), stanzas of jabber:client received online, XEP-0198 <r/> answered.
  uint64_t reads() const { return reads_; }
  uint64_t stanzas_in() const { return stanzas_in_; }
  uint64_t acks_sent() const { return acks_sent_; }

  // Free for the owner (the scenario's index of this client).
  uint32_t tag = 0;

 private:
  enum class Step : uint8_t { connecting, tls_handshake, features, proceed, sasl, registering, bind, session, online };

  void on_stream_open(const xml::StreamHeader& header) override;
  void on_stanza(xml::Element&& stanza) override;
  void on_stream_close() override;
  void on_parse_error(xml::ParseError error, std::string_view detail) override;

  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf);
  static void on_timer(uv_timer_t* timer);
  static void on_tcp_closed(uv_handle_t* handle);

  void on_bytes(std::string_view data);
  void begin_tls();
  void open_stream();
  void send_text(std::string_view text);
  void write_raw(std::string_view bytes);
  void on_features(const xml::Element& features);
  void on_sasl(const xml::Element& stanza);
  void on_iq(const xml::Element& iq);
  void go_online();
  void fail(std::string why);
  void close_socket();
  void arm_timer(double seconds);

  Worker& worker_;
  const Target& target_;
  Listener& listener_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_connect_t connect_req_{};
  bool timer_ready_ = false;
  bool tcp_open_ = false;
  bool disposed_ = false;

  Mode mode_ = Mode::login;
  Phase phase_ = Phase::idle;
  Step step_ = Step::connecting;
  Registration registration_ = Registration::none;
  bool secure_ = false;         // TLS is up
  bool authenticated_ = false;
  bool session_required_ = false;
  std::string user_, password_, resource_, full_jid_;
  uint64_t started_ns_ = 0;
  uint64_t online_ns_ = 0;
  uint64_t reads_ = 0;
  uint64_t stanzas_in_ = 0;
  uint64_t sm_base_ = 0;  // stanzas_in_ when <enabled/> came
  uint64_t acks_sent_ = 0;

  std::unique_ptr<xml::StreamParser> parser_;
  std::unique_ptr<tls::Stream> tls_;
  std::unique_ptr<ScramClient> scram_;
};

}  // namespace parley::bench
