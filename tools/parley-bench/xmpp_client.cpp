#include "xmpp_client.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include "core/sasl/base64.hpp"
#include "xml/serializer.hpp"

namespace parley::bench {

namespace {

constexpr std::string_view kTlsNs = "urn:ietf:params:xml:ns:xmpp-tls";
constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";
constexpr std::string_view kBindNs = "urn:ietf:params:xml:ns:xmpp-bind";
constexpr std::string_view kSessionNs = "urn:ietf:params:xml:ns:xmpp-session";
constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";
constexpr std::string_view kPingNs = "urn:xmpp:ping";
constexpr std::string_view kSmNs = "urn:xmpp:sm:3";
constexpr std::string_view kClientNs = "jabber:client";
constexpr double kCloseGraceSeconds = 5;

const xml::Limits& parser_limits() {
  static const xml::Limits limits = [] {
    xml::Limits l;
    l.max_stanza_bytes = 1 << 20;
    l.max_depth = 64;
    return l;
  }();
  return limits;
}

// Per thread: every client of a worker reuses them in its read and write paths.
thread_local std::string t_plain;
thread_local std::string t_out;
thread_local std::string t_send;

struct WriteReq {
  uv_write_t req;
  std::string data;
};

std::string escaped(std::string_view text) {
  std::string out;
  xml::escape_text_to(out, text);
  return out;
}

std::string first_child_name(const xml::Element& e) {
  const xml::Element* child = e.first_child();
  return child ? child->name() : std::string("(none)");
}

}  // namespace

std::string_view mechanism_name(Mechanism m) {
  switch (m) {
    case Mechanism::scram_sha256: return "SCRAM-SHA-256";
    case Mechanism::scram_sha1: return "SCRAM-SHA-1";
    case Mechanism::plain: return "PLAIN";
  }
  return "?";
}

std::string_view tls_mode_name(TlsMode m) {
  switch (m) {
    case TlsMode::none: return "none";
    case TlsMode::starttls: return "starttls";
    case TlsMode::direct: return "direct";
  }
  return "?";
}

XmppClient::XmppClient(Worker& worker, const Target& target, Listener& listener)
    : worker_(worker), target_(target), listener_(listener) {}

XmppClient::~XmppClient() = default;

void XmppClient::start(Mode mode, std::string user, std::string password, std::string resource,
                       const sockaddr_in* source) {
  if (disposed_ || (phase_ != Phase::idle && phase_ != Phase::closed)) return;
  mode_ = mode;
  user_ = std::move(user);
  password_ = std::move(password);
  resource_ = std::move(resource);
  full_jid_.clear();
  phase_ = Phase::negotiating;
  step_ = Step::connecting;
  registration_ = Registration::none;
  secure_ = authenticated_ = session_required_ = false;
  tls_.reset();
  scram_.reset();
  parser_ = std::make_unique<xml::StreamParser>(static_cast<xml::StreamParser::Handler&>(*this), parser_limits());
  started_ns_ = uv_hrtime();
  online_ns_ = 0;

  if (!timer_ready_) {
    uv_timer_init(worker_.loop(), &timer_);
    timer_.data = this;
    timer_ready_ = true;
  }
  arm_timer(target_.login_timeout_s);

  uv_tcp_init_ex(worker_.loop(), &tcp_, AF_INET);
  tcp_.data = this;
  tcp_open_ = true;
  uv_tcp_nodelay(&tcp_, 1);
  if (source != nullptr) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
      // Let connect() pick the port per 4-tuple, so that each source address has the whole
      // ephemeral range towards each server port.
      int one = 1;
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    }
    if (int rc = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(source), 0); rc != 0) {
      fail(std::string("bind: ") + uv_strerror(rc));
      return;
    }
  }
  connect_req_.data = this;
  if (int rc = uv_tcp_connect(&connect_req_, &tcp_, reinterpret_cast<const sockaddr*>(&target_.server), &on_connect);
      rc != 0) {
    fail(std::string("connect: ") + uv_strerror(rc));
  }
}

void XmppClient::arm_timer(double seconds) {
  uv_timer_start(&timer_, &on_timer, static_cast<uint64_t>(seconds * 1000), 0);
}

std::string XmppClient::tls_description() const {
  if (!tls_ || !secure_) return {};
  return tls_->protocol() + " " + tls_->cipher();
}

void XmppClient::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<XmppClient*>(req->data);
  if (status == UV_ECANCELED || self->phase_ != Phase::negotiating) return;
  if (status != 0) {
    self->fail(std::string("connect: ") + uv_strerror(status));
    return;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), &on_alloc, &on_read);
  if (self->target_.tls == TlsMode::direct) {
    self->begin_tls();
  } else {
    self->step_ = Step::features;
    self->open_stream();
  }
}

void XmppClient::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<XmppClient*>(handle->data);
  buf->base = self->worker_.read_buffer();
  buf->len = Worker::kReadBufferSize;
}

void XmppClient::on_read(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<XmppClient*>(stream->data);
  if (n < 0) {
    if (self->phase_ == Phase::closing) {
      self->close_socket();
    } else {
      self->fail(n == UV_EOF ? std::string("connection closed by the server")
                             : std::string("read: ") + uv_strerror(static_cast<int>(n)));
    }
    return;
  }
  if (n > 0) {
    ++self->reads_;
    self->on_bytes(std::string_view(buf->base, static_cast<size_t>(n)));
  }
}

void XmppClient::on_bytes(std::string_view data) {
  if (!tls_) {
    if (parser_) parser_->feed(data);
    return;
  }
  std::string& plain = t_plain;
  std::string& out = t_out;
  plain.clear();
  out.clear();
  auto fed = tls_->feed(data, plain, out);
  if (!out.empty()) write_raw(out);
  if (!fed) {
    fail("TLS: " + fed.error());
    return;
  }
  if (!secure_ && tls_->handshake_done()) {
    secure_ = true;
    step_ = Step::features;  // the parser was reset at <proceed/> (or is fresh for direct TLS)
    open_stream();
  }
  if (!plain.empty() && parser_ && phase_ != Phase::closed) {
    // The parser's callbacks may send (t_send, t_out) but never read: `plain` stays intact.
    parser_->feed(plain);
  }
}

void XmppClient::begin_tls() {
  auto stream = tls::Stream::client(target_.ssl_ctx, target_.domain);
  if (!stream) {
    fail("TLS: " + stream.error());
    return;
  }
  tls_ = std::move(*stream);
  step_ = Step::tls_handshake;
  std::string& out = t_out;
  std::string plain;
  out.clear();
  if (auto fed = tls_->feed({}, plain, out); !fed) {
    fail("TLS: " + fed.error());
    return;
  }
  write_raw(out);
}

void XmppClient::open_stream() {
  send_text("<?xml version='1.0'?><stream:stream to='" + escaped(target_.domain) +
            "' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
}

void XmppClient::send(std::string_view xml) {
  if (phase_ == Phase::online) send_text(xml);
}

void XmppClient::send_text(std::string_view text) {
  if (!tcp_open_) return;
  if (!tls_) {
    write_raw(text);
    return;
  }
  std::string& out = t_send;
  out.clear();
  if (auto written = tls_->write(text, out); !written) {
    fail("TLS write: " + written.error());
    return;
  }
  write_raw(out);
}

void XmppClient::write_raw(std::string_view bytes) {
  if (!tcp_open_ || bytes.empty() || uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  uv_buf_t buf = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
  int n = uv_try_write(stream, &buf, 1);
  if (n == static_cast<int>(bytes.size())) return;
  if (n < 0 && n != UV_EAGAIN) {
    fail(std::string("write: ") + uv_strerror(n));
    return;
  }
  if (n > 0) bytes.remove_prefix(static_cast<size_t>(n));
  auto* req = new WriteReq;
  req->data.assign(bytes);
  req->req.data = this;
  buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  int rc = uv_write(&req->req, stream, &buf, 1, [](uv_write_t* r, int status) {
    auto* w = reinterpret_cast<WriteReq*>(r);
    if (status != 0 && status != UV_ECANCELED) {
      auto* self = static_cast<XmppClient*>(r->data);
      if (self->phase_ == Phase::negotiating || self->phase_ == Phase::online)
        self->fail(std::string("write: ") + uv_strerror(status));
    }
    delete w;
  });
  if (rc != 0) {
    delete req;
    fail(std::string("write: ") + uv_strerror(rc));
  }
}

void XmppClient::on_stream_open(const xml::StreamHeader& header) {
  if (header.name != "stream" || header.xmlns != kStreamsNs) fail("not an XMPP stream");
}

void XmppClient::on_stanza(xml::Element&& stanza) {
  if (phase_ != Phase::negotiating && phase_ != Phase::online) return;
  const std::string& name = stanza.name();
  const std::string& ns = stanza.xmlns();
  if (ns == kStreamsNs) {
    if (name == "features" && phase_ == Phase::negotiating && step_ == Step::features) {
      on_features(stanza);
    } else if (name == "error") {
      fail("stream error: " + first_child_name(stanza));
    }
    return;
  }
  if (phase_ == Phase::online) {
    if (ns == kSmNs) {
      // XEP-0198: h is what we handled since <enable/>, modulo 2^32.
      if (name == "r") {
        const uint32_t h = static_cast<uint32_t>(stanzas_in_ - sm_base_);
        send_text("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(h) + "'/>");
        ++acks_sent_;
      } else if (name == "enabled") {
        // The server counts from here: what came before <enabled/> it sent before it processed
        // <enable/> (one connection keeps the order).
        sm_base_ = stanzas_in_;
      } else if (name == "failed") {
        fail("stream management refused: <" + first_child_name(stanza) + "/>");
      }
      return;  // <a/>
    }
    if (ns == kClientNs) ++stanzas_in_;
    if (name == "iq" && (stanza.attr("type") == "get" || stanza.attr("type") == "set")) {
      on_iq(stanza);
      return;
    }
    listener_.on_stanza(*this, stanza);
    return;
  }
  if (ns == kTlsNs) {
    if (name == "proceed" && step_ == Step::proceed) {
      parser_->reset(true);  // nothing sent in the clear after <proceed/> may be processed
      begin_tls();
    } else {
      fail("STARTTLS refused: <" + name + "/>");
    }
    return;
  }
  if (ns == kSaslNs) {
    on_sasl(stanza);
    return;
  }
  if (name == "iq") {
    on_iq(stanza);
    return;
  }
  // Anything else before we are online (presence, message) is ignored.
}

void XmppClient::on_features(const xml::Element& features) {
  if (!secure_ && target_.tls == TlsMode::starttls) {
    if (features.find_child("starttls", kTlsNs) == nullptr) {
      fail("the server offers no STARTTLS");
      return;
    }
    step_ = Step::proceed;
    send_text("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    return;
  }
  if (!authenticated_ && mode_ == Mode::register_account) {
    step_ = Step::registering;
    send_text("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>" + escaped(user_) +
              "</username><password>" + escaped(password_) + "</password></query></iq>");
    return;
  }
  if (!authenticated_) {
    const std::string_view wanted = mechanism_name(target_.mechanism);
    bool offered = false;
    if (const xml::Element* mechanisms = features.find_child("mechanisms", kSaslNs)) {
      for (const xml::Element* m : mechanisms->children()) offered = offered || m->text() == wanted;
    }
    if (!offered) {
      fail("the server does not offer " + std::string(wanted));
      return;
    }
    std::string initial;
    if (target_.mechanism == Mechanism::plain) {
      initial = std::string(1, '\0') + user_ + std::string(1, '\0') + password_;
    } else {
      const auto hash = target_.mechanism == Mechanism::scram_sha1 ? sasl::Hash::sha1 : sasl::Hash::sha256;
      scram_ = std::make_unique<ScramClient>(hash, user_, password_, *target_.scram_cache);
      initial = scram_->first();
    }
    step_ = Step::sasl;
    send_text("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + std::string(wanted) + "'>" +
              sasl::base64_encode(initial) + "</auth>");
    return;
  }
  if (features.find_child("bind", kBindNs) == nullptr) {
    fail("the server offers no resource binding");
    return;
  }
  const xml::Element* session = features.find_child("session", kSessionNs);
  session_required_ = session != nullptr && session->find_child("optional") == nullptr;
  step_ = Step::bind;
  send_text("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
            escaped(resource_) + "</resource></bind></iq>");
}

void XmppClient::on_sasl(const xml::Element& stanza) {
  if (step_ != Step::sasl) {
    fail("unexpected SASL element <" + stanza.name() + "/>");
    return;
  }
  const std::string& name = stanza.name();
  if (name == "failure") {
    fail("SASL failure: " + first_child_name(stanza));
    return;
  }
  std::string data;
  std::string text = stanza.text();
  if (!text.empty() && text != "=") {
    auto decoded = sasl::base64_decode(text);
    if (!decoded) {
      fail("SASL: bad base64 from the server");
      return;
    }
    data = std::move(*decoded);
  }
  if (name == "challenge") {
    if (!scram_) {
      fail("SASL: unexpected challenge");
      return;
    }
    auto response = scram_->final(data);
    if (!response) {
      fail("SCRAM: " + response.error());
      return;
    }
    send_text("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + sasl::base64_encode(*response) + "</response>");
    return;
  }
  if (name == "success") {
    if (scram_ && !scram_->verify(data)) {
      fail("SCRAM: the server's signature does not verify");
      return;
    }
    authenticated_ = true;
    step_ = Step::features;
    parser_->reset(false);
    open_stream();
    return;
  }
  fail("unexpected SASL element <" + name + "/>");
}

void XmppClient::on_iq(const xml::Element& iq) {
  std::string_view type = iq.attr("type");
  std::string_view id = iq.attr("id");
  if (type == "get" || type == "set") {
    // A request from the server (a ping, most likely): answer it so that it keeps us.
    std::string reply = "<iq type='";
    const xml::Element* payload = iq.first_child();
    const bool ping = payload != nullptr && payload->name() == "ping" && payload->xmlns() == kPingNs;
    reply += ping ? "result" : "error";
    reply += "' id='";
    xml::escape_attr_to(reply, id);
    reply += "'";
    if (std::string_view from = iq.attr("from"); !from.empty()) {
      reply += " to='";
      xml::escape_attr_to(reply, from);
      reply += "'";
    }
    reply += ping ? "/>" : "><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
    send_text(reply);
    return;
  }
  if (step_ == Step::registering && id == "reg1") {
    if (type == "result") {
      registration_ = Registration::created;
    } else {
      const xml::Element* error = iq.find_child("error");
      const bool conflict = error != nullptr && error->find_child("conflict") != nullptr;
      if (!conflict) {
        fail("registration refused: " + (error ? first_child_name(*error) : std::string("?")));
        return;
      }
      registration_ = Registration::existed;
    }
    go_online();
    return;
  }
  if (step_ == Step::bind && id == "bind1") {
    if (type != "result") {
      fail("bind refused");
      return;
    }
    if (const xml::Element* bind = iq.find_child("bind", kBindNs)) full_jid_ = bind->child_text("jid");
    if (full_jid_.empty()) full_jid_ = user_ + "@" + target_.domain + "/" + resource_;
    if (session_required_) {
      step_ = Step::session;
      send_text("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
      return;
    }
    go_online();
    return;
  }
  if (step_ == Step::session && id == "sess1") {
    if (type != "result") {
      fail("session establishment refused");
      return;
    }
    go_online();
  }
}

void XmppClient::go_online() {
  step_ = Step::online;
  phase_ = Phase::online;
  online_ns_ = uv_hrtime();
  uv_timer_stop(&timer_);
  if (mode_ == Mode::login && target_.stream_management) {
    send_text("<enable xmlns='urn:xmpp:sm:3'/>");
  }
  if (mode_ == Mode::login && target_.csi_inactive) send_text("<inactive xmlns='urn:xmpp:csi:0'/>");
  if (mode_ == Mode::login && target_.initial_presence) send_text("<presence/>");
  listener_.on_online(*this);
}

void XmppClient::on_stream_close() {
  if (phase_ == Phase::closing) {
    close_socket();
  } else {
    fail("the server closed the stream");
  }
}

void XmppClient::on_parse_error(xml::ParseError error, std::string_view detail) {
  fail("XML from the server: " + std::string(xml::condition_name(error)) + " " + std::string(detail));
}

void XmppClient::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<XmppClient*>(timer->data);
  if (self->phase_ == Phase::negotiating) {
    static const char* kSteps[] = {"connect", "TLS handshake", "stream features", "STARTTLS proceed",
                                   "SASL", "registration", "bind", "session", "online"};
    self->fail(std::string("timed out waiting for ") + kSteps[static_cast<int>(self->step_)]);
  } else if (self->phase_ == Phase::closing) {
    self->close_socket();
  }
}

void XmppClient::close() {
  if (phase_ != Phase::online && phase_ != Phase::negotiating) return;
  const bool can_say_goodbye = step_ != Step::connecting && step_ != Step::tls_handshake;
  phase_ = Phase::closing;
  if (!can_say_goodbye) {
    close_socket();
    return;
  }
  send_text("</stream:stream>");
  if (tls_ && secure_) {
    std::string& out = t_send;
    out.clear();
    tls_->close_notify(out);
    write_raw(out);
  }
  arm_timer(kCloseGraceSeconds);
}

void XmppClient::abort(std::string_view why) {
  if (phase_ == Phase::negotiating || phase_ == Phase::online) {
    fail(std::string(why));
  } else if (phase_ == Phase::closing) {
    close_socket();
  }
}

void XmppClient::fail(std::string why) {
  if (phase_ != Phase::negotiating && phase_ != Phase::online) return;
  phase_ = Phase::closing;
  if (parser_) parser_->stop();
  close_socket();
  listener_.on_failed(*this, why);
}

void XmppClient::close_socket() {
  if (timer_ready_) uv_timer_stop(&timer_);
  if (!tcp_open_) {
    if (phase_ == Phase::closing) phase_ = Phase::closed;
    return;
  }
  auto* handle = reinterpret_cast<uv_handle_t*>(&tcp_);
  if (!uv_is_closing(handle)) uv_close(handle, &on_tcp_closed);
}

void XmppClient::on_tcp_closed(uv_handle_t* handle) {
  auto* self = static_cast<XmppClient*>(handle->data);
  self->tcp_open_ = false;
  self->phase_ = Phase::closed;
  // The parser is not inside a callback here (close callbacks run from the loop), so it can go.
  self->parser_.reset();
  self->tls_.reset();
  self->scram_.reset();
  if (!self->disposed_) self->listener_.on_closed(*self);
}

void XmppClient::dispose() {
  if (disposed_) return;
  disposed_ = true;
  if (tcp_open_) {
    auto* handle = reinterpret_cast<uv_handle_t*>(&tcp_);
    if (!uv_is_closing(handle)) uv_close(handle, &on_tcp_closed);
  }
  if (timer_ready_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    timer_ready_ = false;
  }
}

}  // namespace parley::bench
