#include "core/tls/openssl_ptr.hpp"

#include <openssl/err.h>

namespace parley::tls {

std::string openssl_error(std::string_view what) {
  std::string out(what);
  bool first = true;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += first ? ": " : "; ";
    // The reason is the useful part: "error:0A00010B:SSL routines::wrong version number".
    const char* reason = ERR_reason_error_string(e);
    out += reason ? reason : buf;
    first = false;
  }
  return out;
}

}  // namespace parley::tls
