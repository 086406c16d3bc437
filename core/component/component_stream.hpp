// The component stream kind (XEP-0114, jabber:component:accept) over a
// Connection: the stream header naming the component's domain, the
// <handshake/> (SHA-1 of stream id + secret), then stanzas both ways.
//
// Inbound: every stanza must carry a 'to' and a 'from' whose domain is the
// component's own (XEP-0114 §3; a 'from' elsewhere ends the stream with
// <invalid-from/>, as ejabberd and Prosody do), and is routed by the route
// table like a client's, to any JID. Outbound: stanzas for the domain wait in
// this stream's own queue, bounded by limits.max_component_queue(_bytes), and
// go to the connection while its unwritten bytes stay under a small window:
// a component that stops reading fills its queue, then what comes for it is
// answered with <resource-constraint/>; the loop never waits.
//
// Owned by its loop's ComponentLinks; freed once its connection closed.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "core/config/config.hpp"
#include "core/net/connection.hpp"
#include "core/session/session_table.hpp"
#include "xml/element.hpp"
#include "xml/stream_parser.hpp"

namespace parley {

class ServerContext;
struct LoopContext;
struct Delivery;
struct ComponentEntry;

inline constexpr std::string_view kComponentNs = "jabber:component:accept";

class ComponentStream final : private xml::StreamParser::Handler, public ConnectionOwner {
 public:
  ComponentStream(ServerContext& ctx, LoopContext& loop, const config::Listener& listener, SessionId log_id);
  ~ComponentStream() override;
  ComponentStream(const ComponentStream&) = delete;
  ComponentStream& operator=(const ComponentStream&) = delete;

  // Accepts the pending connection of `server`.
  void start(uv_stream_t* server);
  // Without a socket (unit tests, the fuzz target): bytes through feed().
  void start_without_socket(std::string peer_ip);
  void feed(std::string_view bytes);

  // A stanza routed to the component's domain, on this loop: written, queued,
  // or answered with an error (not connected, queue full).
  void enqueue(std::shared_ptr<Delivery> delivery);

  void close_with_stream_error(std::string_view condition, std::string_view text = {});
  void end_throttle() { conn_.end_throttle(); }

  SessionId log_id() const { return log_id_; }
  bool online() const { return state_ == State::online; }
  const std::string& domain() const { return domain_; }
  size_t queue_length() const { return queue_.size(); }

  // Unwritten bytes past which queued stanzas wait for the socket.
  static constexpr size_t kWriteWindow = 64 * 1024;

 private:
  enum class State : uint8_t { wait_stream, handshake, online, closing };

  // xml::StreamParser::Handler
  void on_stream_open(const xml::StreamHeader& header) override;
  void on_stanza(xml::Element&& element) override;
  void on_stream_close() override;
  void on_parse_error(xml::ParseError error, std::string_view detail) override;

  // ConnectionOwner
  void on_connection_bytes(std::string_view bytes) override;
  void on_connection_secured() override {}
  void on_connection_deadline() override;
  void on_connection_flood() override;
  void on_connection_lost() override;
  void on_unwritten(std::shared_ptr<Delivery> delivery) override;
  void on_connection_closed() override;
  void on_connection_written() override { flush(); }

  void begin();
  void send_stream_header(std::string_view from);
  void handle_handshake(const xml::Element& element);
  void handle_stanza(xml::Element&& stanza);
  // An error about the component's own stanza, written to it directly.
  void reply_error(const xml::Element& stanza, std::string_view condition, std::string_view text = {});
  void flush();
  bool write_delivery(const std::shared_ptr<Delivery>& delivery);
  void begin_close();
  // The domain is no longer served from here: what waits is answered.
  void release_domain();
  void publish_queue_length();

  ServerContext& ctx_;
  LoopContext& loop_;
  const config::Listener& listener_;
  SessionId log_id_;
  Connection conn_;
  xml::StreamParser parser_;

  State state_ = State::wait_stream;
  bool header_sent_ = false;
  std::string stream_id_;
  std::string domain_;              // from the stream header, once accepted
  std::string password_;            // the configured secret of domain_
  ComponentEntry* entry_ = nullptr;  // set while this stream serves domain_

  std::deque<std::shared_ptr<Delivery>> queue_;
  size_t queue_bytes_ = 0;
};

}  // namespace parley
