// What mod_csi holds for an inactive client (XEP-0352) and what it lets
// through, kept apart from the module so that the rules are tested without a
// host. The model is Prosody's mod_csi_simple: hold what only updates state
// the user is not looking at (presence, chat states, receipts, PEP), never
// hold what the user must see or the client must answer.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::csi {

inline constexpr std::string_view ns_csi = "urn:xmpp:csi:0";
inline constexpr std::string_view ns_client = "jabber:client";
inline constexpr std::string_view ns_delay = "urn:xmpp:delay";
inline constexpr std::string_view ns_carbons = "urn:xmpp:carbons:2";
inline constexpr std::string_view ns_forward = "urn:xmpp:forward:0";

// What the outgoing filter does with a stanza for an inactive session.
enum class Urgency {
  hold,    // kept in the session's buffer until a flush
  urgent,  // the buffer is flushed first (in order), then the stanza goes out
  pass,    // goes out at once and leaves the buffer alone (an answer the client waits for)
};

// A direct child of a stanza: its local name and namespace.
struct ChildName {
  std::string_view name;
  std::string_view ns;
};

// What the rules look at: the stanza's name and type, its children and, for
// a carbon copy (XEP-0280 <received/> or <sent/>), the type and children of
// the forwarded message (`forwarded` set).
struct StanzaShape {
  std::string_view name;  // message, presence or iq
  std::string_view type;  // the type attribute, "" when absent
  std::vector<ChildName> children;
  bool forwarded = false;
  std::string_view forwarded_type;
  std::vector<ChildName> forwarded_children;
};

// A payload that makes a message urgent: an element `name` in `ns`, or any
// element in `ns` when `name` is empty.
struct Payload {
  std::string ns;
  std::string name;
};

// Clark notation, as the option important_payloads takes it:
// "{urn:example}" (any element of the namespace) or "{urn:example}name".
// nullopt if malformed.
std::optional<Payload> parse_payload(std::string_view clark);

class Rules {
 public:
  // The built-in urgent payloads (encryption, Jingle message initiation) and
  // `extra` (the option important_payloads).
  explicit Rules(std::vector<Payload> extra = {});

  Urgency classify(const StanzaShape& stanza) const;

  // Whether one of the message's children is an urgent payload.
  bool urgent_message(std::string_view type, const std::vector<ChildName>& children) const;

 private:
  bool urgent_payload(const ChildName& child) const;
  std::vector<Payload> payloads_;
};

// The key under which only the latest presence survives in the buffer: the
// sender's full JID ('from') for available and unavailable presence; "" for
// anything else (never superseded).
std::string presence_key(std::string_view name, std::string_view type, std::string_view from);

// An XEP-0082 DateTime in UTC with milliseconds: "2002-09-10T23:08:25.123Z".
std::string delay_stamp(std::chrono::system_clock::time_point when);

}  // namespace parley::csi
