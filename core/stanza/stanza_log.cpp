#include "core/stanza/stanza_log.hpp"

#include "core/stanza/namespaces.hpp"
#include "xml/serializer.hpp"

namespace parley {

namespace {

constexpr std::string_view ns_register = "jabber:iq:register";

}  // namespace

std::string stanza_summary(const xml::Element& element) {
  std::string out = "<";
  out += element.name();
  if (element.xmlns() != ns::client) {
    out += " xmlns='";
    xml::escape_attr_to(out, element.xmlns());
    out += '\'';
  }
  for (const auto& attr : element.attrs()) {
    out += ' ';
    out += attr.name;
    out += "='";
    xml::escape_attr_to(out, attr.value);
    out += '\'';
  }
  out += '>';
  if (const xml::Element* child = element.first_child()) {
    out += " {";
    out += child->xmlns();
    out += '}';
    out += child->name();
  }
  return out;
}

bool carries_credentials(const xml::Element& element) {
  if (element.xmlns() == ns::sasl) return true;
  for (const xml::Element* child : element.children())
    if (child->xmlns() == ns_register) return true;
  return false;
}

void log_stanza(uint64_t session, bool in, const xml::Element& element, std::string_view serialized) {
  const char* direction = in ? "in" : "out";
  if (!spdlog::should_log(spdlog::level::trace) || carries_credentials(element)) {
    spdlog::debug("c2s {}: {} {}", session, direction, stanza_summary(element));
    return;
  }
  if (!serialized.empty()) {
    spdlog::trace("c2s {}: {} {}", session, direction, serialized);
    return;
  }
  xml::SerializeContext ctx;
  ctx.default_ns = ns::client;
  spdlog::trace("c2s {}: {} {}", session, direction, xml::serialize(element, ctx));
}

}  // namespace parley
