#include "push_logic.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

namespace parley::push {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

namespace {

void field(std::string& out, std::string_view var, std::string_view value) {
  out += "<field var='";
  out += escape(var);
  out += "'><value>";
  out += escape(value);
  out += "</value></field>";
}

}  // namespace

std::string notification_iq(std::string_view from, std::string_view service, std::string_view node,
                            const Summary& summary, std::string_view publish_options) {
  std::string out = "<iq xmlns='jabber:client' type='set' from='";
  out += escape(from);
  out += "' to='";
  out += escape(service);
  out += "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish";
  if (!node.empty()) {
    out += " node='";
    out += escape(node);
    out += "'";
  }
  out += "><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'>";
  field(out, "FORM_TYPE", summary_form_type);
  field(out, "message-count", std::to_string(summary.message_count));
  if (!summary.last_sender.empty()) field(out, "last-message-sender", summary.last_sender);
  if (summary.last_body) field(out, "last-message-body", *summary.last_body);
  out += "</x></notification></item></publish>";
  if (!publish_options.empty()) {
    out += "<publish-options>";
    out += publish_options;  // the client's form, serialized by the host: passed through as it was
    out += "</publish-options>";
  }
  out += "</pubsub></iq>";
  return out;
}

std::optional<std::string> check_enable(std::string_view jid_attr, bool jid_valid, bool has_form,
                                        std::string_view form_type) {
  if (jid_attr.empty() || !jid_valid) return std::string("bad-request");
  if (has_form && form_type != publish_options_form_type) return std::string("bad-request");
  return std::nullopt;
}

ErrorAction classify_error(std::string_view error_type, std::string_view condition) {
  if (error_type == "wait" || condition == "remote-server-timeout" || condition == "resource-constraint")
    return ErrorAction::retry;
  if (error_type == "modify") return ErrorAction::keep;
  // cancel, auth, and an error without a usable type: disabled (XEP-0357 §7.1's default).
  return ErrorAction::remove;
}

bool notice_disables(const AffiliationNotice& notice, std::string_view user_bare, std::string_view server) {
  if (!notice.node) return false;
  if (!notice.jid.empty() && notice.jid != user_bare && notice.jid != server) return false;
  std::string_view a = notice.affiliation;
  return !a.empty() && a != "owner" && a != "publisher" && a != "publish-only";
}

bool worth_waking(std::string_view type, bool has_body, const std::vector<ChildName>& children, bool groupchat) {
  if (type.empty()) type = "normal";
  if (type != "chat" && type != "normal" && !(groupchat && type == "groupchat")) return false;
  if (has_body) return true;
  static constexpr ChildName wake[] = {
      {"eu.siacs.conversations.axolotl", "encrypted"},  // OMEMO (XEP-0384, legacy namespace)
      {"urn:xmpp:omemo:2", "encrypted"},                // OMEMO 0.8+
      {"urn:xmpp:openpgp:0", "openpgp"},                // XEP-0373
      {"jabber:x:encrypted", "x"},                      // XEP-0027
      {"urn:xmpp:eme:0", "encryption"},                 // XEP-0380
      {"urn:xmpp:jingle-message:0", "propose"},         // XEP-0353: a call rings
      {"urn:xmpp:jingle-message:1", "propose"},
  };
  for (const ChildName& c : children)
    for (const ChildName& w : wake)
      if (c.ns == w.ns && c.name == w.name) return true;
  return false;
}

int64_t backoff_ms(int attempt, int64_t base_ms, int64_t max_ms) {
  if (attempt < 1) attempt = 1;
  int64_t wait = base_ms;
  for (int i = 1; i < attempt && wait < max_ms; ++i) wait *= 2;
  return std::min(wait, max_ms);
}

int64_t RateLimit::delay(const std::string& device, int64_t now_ms) {
  if (interval_ms_ <= 0) return 0;
  auto it = last_.find(device);
  if (it == last_.end() || now_ms - it->second >= interval_ms_) {
    last_[device] = now_ms;
    return 0;
  }
  return interval_ms_ - (now_ms - it->second);
}

std::string json_string(std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out.push_back(ch);  // UTF-8 as it came (the XML parser checked it)
        }
    }
  }
  out += '"';
  return out;
}

std::string webhook_json(std::string_view recipient, const Summary& summary, int64_t unix_seconds) {
  std::string out = "{\"recipient\":";
  out += json_string(recipient);
  out += ",\"message_count\":";
  out += std::to_string(summary.message_count);
  if (!summary.last_sender.empty()) {
    out += ",\"last_message_sender\":";
    out += json_string(summary.last_sender);
  }
  if (summary.last_body) {
    out += ",\"last_message_body\":";
    out += json_string(*summary.last_body);
  }
  out += ",\"timestamp\":";
  out += std::to_string(unix_seconds);
  out += '}';
  return out;
}

std::string hmac_sha256_hex(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len))
    return {};
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 0xf];
  }
  return out;
}

WebhookAction classify_webhook(int status, std::string_view error) {
  if (error == "cancelled") return WebhookAction::give_up;
  if (!error.empty() || status == 0) return WebhookAction::retry;  // timeout, no connection, ...
  if (status >= 200 && status < 300) return WebhookAction::done;
  if (status == 408 || status == 429 || status >= 500) return WebhookAction::retry;
  return WebhookAction::give_up;
}

bool valid_webhook_url(std::string_view url) {
  std::string_view rest;
  if (url.substr(0, 7) == "http://") rest = url.substr(7);
  else if (url.substr(0, 8) == "https://") rest = url.substr(8);
  else return false;
  if (rest.empty() || rest.front() == '/' || url.size() > 2048) return false;
  for (char c : url)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  return true;
}

}  // namespace parley::push
