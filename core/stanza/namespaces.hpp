#pragma once

#include <string_view>

namespace parley::ns {

constexpr std::string_view client = "jabber:client";
constexpr std::string_view streams = "http://etherx.jabber.org/streams";
constexpr std::string_view stream_errors = "urn:ietf:params:xml:ns:xmpp-streams";
constexpr std::string_view stanza_errors = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr std::string_view tls = "urn:ietf:params:xml:ns:xmpp-tls";
constexpr std::string_view sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
constexpr std::string_view sasl_channel_binding = "urn:xmpp:sasl-cb:0";  // XEP-0440
constexpr std::string_view bind = "urn:ietf:params:xml:ns:xmpp-bind";
constexpr std::string_view session = "urn:ietf:params:xml:ns:xmpp-session";
constexpr std::string_view disco_info = "http://jabber.org/protocol/disco#info";
constexpr std::string_view disco_items = "http://jabber.org/protocol/disco#items";
constexpr std::string_view ping = "urn:xmpp:ping";
constexpr std::string_view delay = "urn:xmpp:delay";
// XEP-0198's nonzas are a module's (mod_stream_mgmt) once the stream is
// authenticated; before that the core answers them (c2s_stream.cpp).
constexpr std::string_view stream_management = "urn:xmpp:sm:3";

}  // namespace parley::ns
