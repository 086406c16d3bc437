// RFC condition names for gloox's enums, so the test output speaks the
// protocol's words and a Python test can assert `stream-error=conflict`.
#pragma once

#include <gloox/gloox.h>
#include <gloox/message.h>
#include <gloox/presence.h>

#include <string>

namespace parley_gloox {

std::string stream_error_name(gloox::StreamError e);
std::string stanza_error_name(gloox::StanzaError e);
std::string auth_error_name(gloox::AuthenticationError e);
std::string connection_error_name(gloox::ConnectionError e);
std::string message_type_name(gloox::Message::MessageType t);
std::string presence_type_name(gloox::Presence::PresenceType t);

// Parses "chat", "normal", ...; returns Message::Invalid when unknown.
gloox::Message::MessageType parse_message_type(const std::string& s);
// Parses "available", "chat", "away", "dnd", "xa"; returns Presence::Invalid when unknown.
gloox::Presence::PresenceType parse_show(const std::string& s);

// One line per event: newlines and backslashes in free text are escaped so
// that a line reader on the other side never splits an event.
std::string escape_line(const std::string& s);

}  // namespace parley_gloox
