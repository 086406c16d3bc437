// RFC 7395 framing: what an XMPP-over-WebSocket connection exchanges in its
// messages, turned into what the c2s stream reads and writes on TCP (and
// back), so the c2s state machine runs over WebSocket unchanged.
//
// In: <open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to=... version=.../>
//   becomes a stream header; <close/> becomes </stream:stream>; any other
//   message (one stanza or nonza) is passed as it is.
// Out: the stream header becomes <open/>, </stream:stream> becomes <close/>,
//   every top-level element goes in a message of its own and declares its
//   namespace (jabber:client, or the streams prefix for stream:features and
//   stream:error), as each message is a document of its own (§3.3.3).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace parley::framing {

inline constexpr std::string_view kFramingNs = "urn:ietf:params:xml:ns:xmpp-framing";

enum class InKind { open, close, stanza, ignore, invalid };

struct Inbound {
  InKind kind = InKind::stanza;
  std::string translated;  // open: the stream header; close: </stream:stream>
};

// Classifies one received message. An <open/> or <close/> in another
// namespace, or one that is not well-formed, is `invalid`; whitespace only
// is `ignore`.
Inbound translate_in(std::string_view message);

// Splits what the c2s stream wrote into the messages to send. Server-written
// XML only (well-formed, escaped): a top-level element cut between two
// writes waits in `pending` for its end.
class Outbound {
 public:
  // Appends the complete messages found in `bytes` to `messages`.
  void split(std::string_view bytes, std::vector<std::string>& messages);
  bool empty() const { return pending_.empty(); }

 private:
  std::string pending_;
};

}  // namespace parley::framing
