#include "core/stanza/stanza_errors.hpp"

#include <string>
#include <utility>

#include "core/stanza/namespaces.hpp"

namespace parley {

std::string_view default_error_type(std::string_view condition) {
  // RFC 6120 §8.3.3: the type used in each defined condition's example.
  static constexpr std::pair<std::string_view, std::string_view> types[] = {
      {"bad-request", "modify"},          {"conflict", "cancel"},
      {"feature-not-implemented", "cancel"}, {"forbidden", "auth"},
      {"gone", "cancel"},                 {"internal-server-error", "cancel"},
      {"item-not-found", "cancel"},       {"jid-malformed", "modify"},
      {"not-acceptable", "modify"},       {"not-allowed", "cancel"},
      {"not-authorized", "auth"},         {"policy-violation", "modify"},
      {"recipient-unavailable", "wait"},  {"redirect", "modify"},
      {"registration-required", "auth"},  {"remote-server-not-found", "cancel"},
      {"remote-server-timeout", "wait"},  {"resource-constraint", "wait"},
      {"service-unavailable", "cancel"},  {"subscription-required", "auth"},
      {"undefined-condition", "modify"},  {"unexpected-request", "wait"},
  };
  for (const auto& [name, type] : types) {
    if (name == condition) return type;
  }
  return "cancel";
}

xml::Element make_stanza_error(const xml::Element& original, std::string_view condition, std::string_view text,
                               std::string_view type) {
  xml::Element reply = original;
  std::string from(original.attr("from"));
  std::string to(original.attr("to"));
  reply.remove_attr("from");
  reply.remove_attr("to");
  if (!to.empty()) reply.set_attr("from", to);
  if (!from.empty()) reply.set_attr("to", from);
  reply.set_attr("type", "error");
  reply.remove_children("error");
  xml::Element& error = reply.add_child("error", reply.xmlns());
  error.set_attr("type", std::string(type.empty() ? default_error_type(condition) : type));
  error.add_child(std::string(condition), std::string(ns::stanza_errors));
  if (!text.empty()) error.add_child("text", std::string(ns::stanza_errors)).add_text(text);
  return reply;
}

xml::Element make_iq_result(const xml::Element& request) {
  xml::Element reply("iq", request.xmlns());
  reply.set_attr("type", "result");
  reply.set_attr("id", std::string(request.attr("id")));
  if (request.has_attr("to")) reply.set_attr("from", std::string(request.attr("to")));
  if (request.has_attr("from")) reply.set_attr("to", std::string(request.attr("from")));
  return reply;
}

bool is_error_stanza(const xml::Element& stanza) { return stanza.attr("type") == "error"; }

}  // namespace parley
