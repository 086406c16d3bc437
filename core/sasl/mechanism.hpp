// core/sasl/mechanism.hpp - the SASL mechanisms Parley offers.
#pragma once

#include <optional>
#include <string_view>

#include "core/sasl/crypto.hpp"

namespace parley::sasl {

enum class Mechanism { scram_sha1, scram_sha1_plus, scram_sha256, scram_sha256_plus, plain };

// Exact, case-sensitive match of the IANA name ("SCRAM-SHA-256-PLUS"); RFC 4422
// mechanism names are upper case.
std::optional<Mechanism> parse_mechanism(std::string_view name);
std::string_view mechanism_name(Mechanism mechanism);

bool is_scram(Mechanism mechanism);
bool is_plus(Mechanism mechanism);        // uses channel binding
Hash scram_hash(Mechanism mechanism);     // precondition: is_scram(mechanism)

}  // namespace parley::sasl
