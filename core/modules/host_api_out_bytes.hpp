// module.h stanza_out_bytes, out_bytes_parts, out_bytes_release (ABI 1.7,
// issue 15): what an outgoing filter keeps of a stanza it passes. While a
// session's filters run on a broadcast's lent element (Session::deliver_now),
// an OutLentScope says which element that is and which shared serialization it
// stands for; a filter asking for that element's bytes, unchanged, gets a
// reference to the shared serialization and its own 'to' instead of a
// serialization of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/modules/element_mutations.hpp"
#include "parley/module.h"

namespace parley {

struct SharedStanza;

// The broadcast delivery whose outgoing filters run now on this thread.
struct OutLent {
  const xml::Element* element = nullptr;                       // the lent element, its 'to' set
  const std::shared_ptr<const SharedStanza>* shared = nullptr;  // its serialization
  const std::string* to = nullptr;                              // the recipient ('to', unescaped)
  uint64_t mutations = 0;                                       // element_mutations when lent
};
inline thread_local OutLent out_lent;

class OutLentScope {
 public:
  OutLentScope(const xml::Element& element, const std::shared_ptr<const SharedStanza>& shared,
               const std::string& to)
      : saved_(out_lent) {
    out_lent = OutLent{&element, &shared, &to, element_mutations};
  }
  ~OutLentScope() { out_lent = saved_; }
  OutLentScope(const OutLentScope&) = delete;
  OutLentScope& operator=(const OutLentScope&) = delete;

 private:
  OutLent saved_;
};

namespace host_out_bytes {
parley_out_bytes* stanza_out_bytes(parley_module* m, const parley_element* stanza);
size_t out_bytes_parts(const parley_out_bytes* bytes, parley_str* parts, size_t max);
void out_bytes_release(parley_out_bytes* bytes);
}  // namespace host_out_bytes

}  // namespace parley
