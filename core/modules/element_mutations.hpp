// A count, per thread, of the changes modules made to elements through the
// host table (element_set_attr, _remove_attr, _add_child, _add_text,
// _remove_children). The router's broadcast (router_fanout.cpp) runs the
// recipients' hooks on one element and reuses the shared serialization only
// if the count did not move during them: a hook that changed anything makes
// that recipient's stanza its own.
//
// While a MutationScope is open (the hooks and outgoing filters that get a
// broadcast's lent element) only changes to that element's tree count: an
// element a hook builds for itself meanwhile (mod_csi's wake-up notice, a
// copy it changes) leaves the shared bytes valid. Outside a scope every
// change counts, as before.
#pragma once

#include <cstdint>

#include "xml/element.hpp"

namespace parley {

inline thread_local uint64_t element_mutations = 0;
inline thread_local const xml::Element* mutation_scope = nullptr;

// Whether `e` is `root` or inside it (a stanza's tree is small: a few children).
inline bool within_tree(const xml::Element& root, const xml::Element* e) {
  if (&root == e) return true;
  for (const xml::Node& node : root.nodes())
    if (node.element && within_tree(*node.element, e)) return true;
  return false;
}

// Called by the host table's element changes with the element changed.
inline void count_mutation(const xml::Element* e) {
  if (mutation_scope == nullptr || within_tree(*mutation_scope, e)) ++element_mutations;
}

class MutationScope {
 public:
  explicit MutationScope(const xml::Element* root) : saved_(mutation_scope) { mutation_scope = root; }
  ~MutationScope() { mutation_scope = saved_; }
  MutationScope(const MutationScope&) = delete;
  MutationScope& operator=(const MutationScope&) = delete;

 private:
  const xml::Element* saved_;
};

}  // namespace parley
