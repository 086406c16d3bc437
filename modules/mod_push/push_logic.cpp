#include "push_logic.hpp"

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

std::string notification_iq(std::string_view from_bare, std::string_view service, std::string_view node,
                            const Summary& summary, std::string_view publish_options) {
  std::string out = "<iq xmlns='jabber:client' type='set' from='";
  out += escape(from_bare);
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

}  // namespace parley::push
