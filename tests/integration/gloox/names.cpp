#include "names.hpp"

#include <array>
#include <utility>

namespace parley_gloox {

std::string stream_error_name(gloox::StreamError e) {
  using namespace gloox;
  switch (e) {
    case StreamErrorBadFormat: return "bad-format";
    case StreamErrorBadNamespacePrefix: return "bad-namespace-prefix";
    case StreamErrorConflict: return "conflict";
    case StreamErrorConnectionTimeout: return "connection-timeout";
    case StreamErrorHostGone: return "host-gone";
    case StreamErrorHostUnknown: return "host-unknown";
    case StreamErrorImproperAddressing: return "improper-addressing";
    case StreamErrorInternalServerError: return "internal-server-error";
    case StreamErrorInvalidFrom: return "invalid-from";
    case StreamErrorInvalidId: return "invalid-id";
    case StreamErrorInvalidNamespace: return "invalid-namespace";
    case StreamErrorInvalidXml: return "invalid-xml";
    case StreamErrorNotAuthorized: return "not-authorized";
    case StreamErrorPolicyViolation: return "policy-violation";
    case StreamErrorRemoteConnectionFailed: return "remote-connection-failed";
    case StreamErrorResourceConstraint: return "resource-constraint";
    case StreamErrorRestrictedXml: return "restricted-xml";
    case StreamErrorSeeOtherHost: return "see-other-host";
    case StreamErrorSystemShutdown: return "system-shutdown";
    case StreamErrorUndefinedCondition: return "undefined-condition";
    case StreamErrorUnsupportedEncoding: return "unsupported-encoding";
    case StreamErrorUnsupportedStanzaType: return "unsupported-stanza-type";
    case StreamErrorUnsupportedVersion: return "unsupported-version";
    case StreamErrorXmlNotWellFormed: return "not-well-formed";
    case StreamErrorUndefined: return "none";
  }
  return "unknown";
}

std::string stanza_error_name(gloox::StanzaError e) {
  using namespace gloox;
  switch (e) {
    case StanzaErrorBadRequest: return "bad-request";
    case StanzaErrorConflict: return "conflict";
    case StanzaErrorFeatureNotImplemented: return "feature-not-implemented";
    case StanzaErrorForbidden: return "forbidden";
    case StanzaErrorGone: return "gone";
    case StanzaErrorInternalServerError: return "internal-server-error";
    case StanzaErrorItemNotFound: return "item-not-found";
    case StanzaErrorJidMalformed: return "jid-malformed";
    case StanzaErrorNotAcceptable: return "not-acceptable";
    case StanzaErrorNotAllowed: return "not-allowed";
    case StanzaErrorNotAuthorized: return "not-authorized";
    case StanzaErrorNotModified: return "not-modified";
    case StanzaErrorPaymentRequired: return "payment-required";
    case StanzaErrorRecipientUnavailable: return "recipient-unavailable";
    case StanzaErrorRedirect: return "redirect";
    case StanzaErrorRegistrationRequired: return "registration-required";
    case StanzaErrorRemoteServerNotFound: return "remote-server-not-found";
    case StanzaErrorRemoteServerTimeout: return "remote-server-timeout";
    case StanzaErrorResourceConstraint: return "resource-constraint";
    case StanzaErrorServiceUnavailable: return "service-unavailable";
    case StanzaErrorSubscribtionRequired: return "subscription-required";
    case StanzaErrorUndefinedCondition: return "undefined-condition";
    case StanzaErrorUnexpectedRequest: return "unexpected-request";
    case StanzaErrorUnknownSender: return "unknown-sender";
    case StanzaErrorUndefined: return "none";
  }
  return "unknown";
}

std::string auth_error_name(gloox::AuthenticationError e) {
  using namespace gloox;
  switch (e) {
    case AuthErrorUndefined: return "none";
    case SaslAborted: return "aborted";
    case SaslIncorrectEncoding: return "incorrect-encoding";
    case SaslInvalidAuthzid: return "invalid-authzid";
    case SaslInvalidMechanism: return "invalid-mechanism";
    case SaslMalformedRequest: return "malformed-request";
    case SaslMechanismTooWeak: return "mechanism-too-weak";
    case SaslNotAuthorized: return "not-authorized";
    case SaslTemporaryAuthFailure: return "temporary-auth-failure";
    case NonSaslConflict: return "non-sasl-conflict";
    case NonSaslNotAcceptable: return "non-sasl-not-acceptable";
    case NonSaslNotAuthorized: return "non-sasl-not-authorized";
  }
  return "unknown";
}

std::string connection_error_name(gloox::ConnectionError e) {
  using namespace gloox;
  switch (e) {
    case ConnNoError: return "none";
    case ConnStreamError: return "stream-error";
    case ConnStreamVersionError: return "stream-version-error";
    case ConnStreamClosed: return "stream-closed";
    case ConnProxyAuthRequired: return "proxy-auth-required";
    case ConnProxyAuthFailed: return "proxy-auth-failed";
    case ConnProxyNoSupportedAuth: return "proxy-no-supported-auth";
    case ConnIoError: return "io-error";
    case ConnParseError: return "parse-error";
    case ConnConnectionRefused: return "connection-refused";
    case ConnDnsError: return "dns-error";
    case ConnOutOfMemory: return "out-of-memory";
    case ConnNoSupportedAuth: return "no-supported-auth";
    case ConnTlsFailed: return "tls-failed";
    case ConnTlsNotAvailable: return "tls-not-available";
    case ConnCompressionFailed: return "compression-failed";
    case ConnAuthenticationFailed: return "authentication-failed";
    case ConnUserDisconnected: return "user-disconnected";
    case ConnNotConnected: return "not-connected";
  }
  return "unknown";
}

std::string message_type_name(gloox::Message::MessageType t) {
  using M = gloox::Message;
  switch (t) {
    case M::Chat: return "chat";
    case M::Error: return "error";
    case M::Groupchat: return "groupchat";
    case M::Headline: return "headline";
    case M::Normal: return "normal";
    case M::Invalid: return "invalid";
  }
  return "unknown";
}

std::string presence_type_name(gloox::Presence::PresenceType t) {
  using P = gloox::Presence;
  switch (t) {
    case P::Available: return "available";
    case P::Chat: return "chat";
    case P::Away: return "away";
    case P::DND: return "dnd";
    case P::XA: return "xa";
    case P::Unavailable: return "unavailable";
    case P::Probe: return "probe";
    case P::Error: return "error";
    case P::Invalid: return "invalid";
  }
  return "unknown";
}

gloox::Message::MessageType parse_message_type(const std::string& s) {
  using M = gloox::Message;
  static const std::array<std::pair<const char*, M::MessageType>, 4> table{{
      {"chat", M::Chat}, {"normal", M::Normal}, {"headline", M::Headline}, {"groupchat", M::Groupchat}}};
  for (const auto& [name, type] : table)
    if (s == name) return type;
  return M::Invalid;
}

gloox::Presence::PresenceType parse_show(const std::string& s) {
  using P = gloox::Presence;
  static const std::array<std::pair<const char*, P::PresenceType>, 5> table{{
      {"available", P::Available}, {"chat", P::Chat}, {"away", P::Away}, {"dnd", P::DND}, {"xa", P::XA}}};
  for (const auto& [name, type] : table)
    if (s == name) return type;
  return P::Invalid;
}

std::string escape_line(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace parley_gloox
