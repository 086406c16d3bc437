// core/addr/jid_text.hpp - a JID's full text for the length of one call, without allocating when it
// fits (every address a chat uses): the hook arguments of every stanza (issue 18) needed a string
// built, and freed, per stanza and per hook event.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include "core/addr/jid.hpp"

namespace parley {

class JidText {
 public:
  enum Part { full, bare };  // bare: "local@domain", the resource left out
  explicit JidText(const Jid& jid, Part part = full) {
    const bool with_resource = part == full && !jid.is_bare();
    const size_t need = jid.local().size() + 1 + jid.domain().size() + 1 + jid.resource().size();
    if (need > sizeof(inline_)) {
      heap_ = with_resource ? jid.full() : jid.bare_str();
      view_ = heap_;
      return;
    }
    char* p = inline_;
    auto put = [&p](std::string_view s) {
      std::memcpy(p, s.data(), s.size());
      p += s.size();
    };
    if (jid.has_local()) {
      put(jid.local());
      *p++ = '@';
    }
    put(jid.domain());
    if (with_resource) {
      *p++ = '/';
      put(jid.resource());
    }
    view_ = std::string_view(inline_, static_cast<size_t>(p - inline_));
  }
  JidText(const JidText&) = delete;
  JidText& operator=(const JidText&) = delete;

  std::string_view view() const { return view_; }

 private:
  std::string_view view_;
  std::string heap_;   // only for an address longer than the inline buffer
  char inline_[256];   // on the caller's stack: a loop thread's stack has room for it
};

}  // namespace parley
