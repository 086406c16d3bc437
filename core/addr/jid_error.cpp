#include "core/addr/jid_error.hpp"

namespace parley {

std::string_view jid_error_name(JidError error) {
  switch (error) {
    case JidError::empty: return "empty address";
    case JidError::too_long: return "address part longer than 1023 bytes";
    case JidError::bad_localpart: return "invalid localpart";
    case JidError::bad_domainpart: return "invalid domainpart";
    case JidError::bad_resourcepart: return "invalid resourcepart";
  }
  return "invalid address";
}

}  // namespace parley
