// mod_carbons' rules (XEP-0280 Message Carbons), apart from the SDK so that
// unit tests can drive them: which messages are copied, and which of a user's
// sessions get a copy. Standard library only; no state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace parley::mod_carbons {

// What the rules need to know of a message (the module reads it off the stanza).
struct MessageFacts {
  std::string_view type;  // the 'type' attribute; "" (absent) is "normal" (RFC 6121 5.2.2)
  bool has_body = false;  // a <body/> child
  bool is_private = false;  // <private xmlns='urn:xmpp:carbons:2'/> (XEP-0280 section 9)
  bool no_copy = false;     // <no-copy xmlns='urn:xmpp:hints'/> (XEP-0334)
  bool is_carbon = false;   // carries <received/> or <sent/> of urn:xmpp:carbons:2: a copy already
  // A payload "typically used in IM" (section 6.1): a XEP-0184 receipt
  // (<request/>, <received/>), a XEP-0085 chat state, a XEP-0333 chat marker.
  bool im_payload = false;
  bool from_muc = false;    // <x xmlns='http://jabber.org/protocol/muc#user'/>: MUC traffic
  // A MUC invitation: XEP-0249's <x xmlns='jabber:x:conference'/>, or a
  // mediated one (XEP-0045 7.8.2: muc#user <x/> holding <invite/>).
  bool muc_invitation = false;
  // The other party's address has a resource: for a received message its
  // 'from', for a sent one its 'to' (an occupant JID, for MUC traffic).
  bool peer_is_full = false;
};

enum class Direction { received, sent };

// XEP-0280 1.0.1 section 6.1, the recommended rules, which this module
// follows (and so advertises urn:xmpp:carbons:rules:0, section 6.2, which
// makes them binding). Never a message with <private/> (or XEP-0334
// <no-copy/>), nor a copy again. Otherwise eligible if it is
//   - of type chat;
//   - of type normal (or none) with a <body/>;
//   - carrying an IM payload (receipt, chat state, chat marker);
//   - an error answering an eligible message (the module applies this one: it
//     needs to know what was sent, mod_carbons.cpp; here an error is not);
// and the MUC rules: a groupchat message is not; an invitation, direct or
// mediated, is; a private message from the user to an occupant (muc#user <x/>,
// to a full JID) is; one from an occupant (muc#user <x/>, from a full JID) is
// not. Other muc#user traffic follows the general rules.
bool eligible(const MessageFacts& message, Direction direction);

// One bound session of the user, as the host reports it.
struct UserSession {
  uint64_t id = 0;
  std::string resource;
  bool available = false;
  int priority = 0;
};

// The sessions that get a <received/> copy of a message the router delivered
// to session `delivered_to` of the user (XEP-0280 section 7: every
// Carbons-enabled resource that did not receive it under RFC 6121; whether a
// session enabled Carbons is checked on its own loop afterwards).
//
// `to_resource` is the resource of the message's 'to' ("" for the bare JID).
// Addressed to the session's own resource, only that session got it. Otherwise
// (the bare JID, or a resource that is not bound: RFC 6121 8.5.3.2.1 handles a
// chat message to it as if to the bare JID) the router gave it to each
// available session of the highest non-negative priority (8.5.2.1.1), every
// one of which runs this: only the one with the lowest id sends copies, and
// none goes to a session that got the original.
//
// `sender_resource` is the resource of the sender when the sender is this same
// user (a message to oneself), else "": the sender gets no copy of its own
// message.
std::vector<uint64_t> received_copy_targets(const std::vector<UserSession>& sessions, uint64_t delivered_to,
                                            std::string_view to_resource, std::string_view sender_resource);

// The sessions that get a <sent/> copy of a message session `sender` sent
// (XEP-0280 section 8: every other Carbons-enabled resource, whether or not the
// sender enabled Carbons). A message to the user's own account gets none:
// its delivery makes <received/> copies (to every resource but the one that got
// it and the sender), so that no resource gets the message twice.
std::vector<uint64_t> sent_copy_targets(const std::vector<UserSession>& sessions, uint64_t sender,
                                        bool to_own_account);

}  // namespace parley::mod_carbons
