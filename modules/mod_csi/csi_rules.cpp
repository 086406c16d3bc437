#include "csi_rules.hpp"

#include <cstdio>
#include <ctime>

#include "parley/sdk/stamp.hpp"

namespace parley::csi {

namespace {

// Payloads that make a message urgent whatever the configuration.
//  - End-to-end encryption: the body is inside, or absent (OMEMO sends only
//    the <encrypted/> element when there is no fallback text).
//  - Jingle Message Initiation (XEP-0353): a call ringing; held, the caller
//    waits for nothing (users' main complaint about CSI: delayed calls).
const Payload builtin[] = {
    {"urn:xmpp:eme:0", "encryption"},                 // XEP-0380 explicit message encryption
    {"eu.siacs.conversations.axolotl", "encrypted"},  // OMEMO (XEP-0384, legacy namespace)
    {"urn:xmpp:omemo:2", "encrypted"},                // OMEMO 0.8+
    {"urn:xmpp:openpgp:0", "openpgp"},                // XEP-0373 OpenPGP for XMPP
    {"jabber:x:encrypted", "x"},                      // XEP-0027 legacy OpenPGP
    {"urn:xmpp:jingle-message:0", ""},                // XEP-0353 propose/retract/accept/proceed/reject
    {"urn:xmpp:jingle-message:1", ""},
};

bool has(const std::vector<ChildName>& children, std::string_view name, std::string_view ns) {
  for (const ChildName& c : children)
    if (c.name == name && c.ns == ns) return true;
  return false;
}

}  // namespace

std::optional<Payload> parse_payload(std::string_view clark) {
  if (clark.size() < 3 || clark.front() != '{') return std::nullopt;
  auto close = clark.find('}');
  if (close == std::string_view::npos || close == 1) return std::nullopt;
  std::string_view name = clark.substr(close + 1);
  if (name.find_first_of("{}<>/ ") != std::string_view::npos) return std::nullopt;
  return Payload{std::string(clark.substr(1, close - 1)), std::string(name)};
}

Rules::Rules(std::vector<Payload> extra) {
  for (const Payload& p : builtin) payloads_.push_back(p);
  for (Payload& p : extra) payloads_.push_back(std::move(p));
}

bool Rules::urgent_payload(const ChildName& child) const {
  for (const Payload& p : payloads_)
    if (child.ns == p.ns && (p.name.empty() || child.name == p.name)) return true;
  return false;
}

bool Rules::urgent_message(std::string_view type, const std::vector<ChildName>& children) const {
  // A message error says that something the user sent did not arrive.
  if (type == "error") return true;
  for (const ChildName& c : children)
    if (urgent_payload(c)) return true;
  // Headlines (PEP notifications, announcements) wait, with a body or not:
  // fire and forget by definition (RFC 6121 5.2.2).
  if (type == "headline") return false;
  // Text for the user (OTR included: it travels in the body), and a room's
  // new subject.
  return has(children, "body", ns_client) || has(children, "subject", ns_client);
}

Urgency Rules::classify(const StanzaShape& s) const {
  if (s.name == "iq") {
    // A request must be answered (the requester times out); an answer is for
    // a request the client just made, so it is awake: no reason to flush.
    if (s.type == "result" || s.type == "error") return Urgency::pass;
    return Urgency::urgent;
  }
  if (s.name == "presence") {
    // Status updates wait (the latest per contact survives); subscription
    // requests and answers, errors and probes are for the user or need an
    // answer.
    if (s.type.empty() || s.type == "unavailable") return Urgency::hold;
    return Urgency::urgent;
  }
  if (s.name == "message") {
    // A carbon copy is judged by the message it carries.
    if (s.forwarded) return urgent_message(s.forwarded_type, s.forwarded_children) ? Urgency::urgent : Urgency::hold;
    return urgent_message(s.type, s.children) ? Urgency::urgent : Urgency::hold;
  }
  // Not a stanza of jabber:client: not ours to judge.
  return Urgency::urgent;
}

std::string presence_key(std::string_view name, std::string_view type, std::string_view from) {
  if (name != "presence" || !(type.empty() || type == "unavailable")) return {};
  return std::string(from);
}

std::string delay_stamp(std::chrono::system_clock::time_point when) { return parley::xep0082_stamp(when); }

}  // namespace parley::csi
