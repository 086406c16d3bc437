// A count, per thread, of the changes modules made to elements through the
// host table (element_set_attr, _remove_attr, _add_child, _add_text,
// _remove_children). The router's broadcast (router_fanout.cpp) runs the
// recipients' hooks on one element and reuses the shared serialization only
// if the count did not move during them: a hook that changed anything (or
// built an element of its own) makes that recipient's stanza its own.
#pragma once

#include <cstdint>

namespace parley {

inline thread_local uint64_t element_mutations = 0;

}  // namespace parley
