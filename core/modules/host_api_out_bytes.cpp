// module.h stanza_out_bytes and its handle (ABI 1.7, issue 15); see the header.
#include "core/modules/host_api_out_bytes.hpp"

#include "core/router/router.hpp"
#include "core/stanza/namespaces.hpp"
#include "xml/serializer.hpp"

// The handle: a broadcast's shared serialization and this recipient's
// ` to='...'`, or a text of its own. Immutable once made; the shared part is
// held by std::shared_ptr (atomic count), so the handle may go on any thread.
struct parley_out_bytes {
  std::shared_ptr<const parley::SharedStanza> shared;
  std::string text;  // shared: the ` to='...'` piece; else the whole stanza
};

namespace parley::host_out_bytes {

parley_out_bytes* stanza_out_bytes(parley_module*, const parley_element* stanza) {
  if (stanza == nullptr) return nullptr;
  const auto* element = reinterpret_cast<const xml::Element*>(stanza);
  auto* out = new parley_out_bytes;
  const OutLent& lent = out_lent;
  if (lent.element == element && lent.mutations == element_mutations && lent.shared && *lent.shared) {
    // The broadcast's element as lent, unchanged by the filters before:
    // written as the shared bytes with this recipient's 'to' (Delivery::wire).
    out->shared = *lent.shared;
    out->text.reserve(lent.to->size() + 6);
    out->text += " to='";
    xml::escape_attr_to(out->text, *lent.to);
    out->text += '\'';
    return out;
  }
  xml::SerializeContext ctx;
  ctx.default_ns = ns::client;
  out->text = xml::serialize(*element, ctx);
  return out;
}

size_t out_bytes_parts(const parley_out_bytes* bytes, parley_str* parts, size_t max) {
  if (bytes == nullptr) return 0;
  auto put = [&](size_t i, const std::string& s) {
    if (i < max && parts != nullptr) parts[i] = parley_str{s.data(), s.size()};
  };
  if (!bytes->shared) {
    put(0, bytes->text);
    return 1;
  }
  put(0, bytes->shared->head);
  put(1, bytes->text);
  put(2, bytes->shared->tail);
  return 3;
}

void out_bytes_release(parley_out_bytes* bytes) { delete bytes; }

}  // namespace parley::host_out_bytes
