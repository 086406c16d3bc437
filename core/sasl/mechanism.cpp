#include "core/sasl/mechanism.hpp"

#include <cassert>

namespace parley::sasl {

std::optional<Mechanism> parse_mechanism(std::string_view name) {
  if (name == "SCRAM-SHA-1") return Mechanism::scram_sha1;
  if (name == "SCRAM-SHA-1-PLUS") return Mechanism::scram_sha1_plus;
  if (name == "SCRAM-SHA-256") return Mechanism::scram_sha256;
  if (name == "SCRAM-SHA-256-PLUS") return Mechanism::scram_sha256_plus;
  if (name == "PLAIN") return Mechanism::plain;
  return std::nullopt;
}

std::string_view mechanism_name(Mechanism mechanism) {
  switch (mechanism) {
    case Mechanism::scram_sha1: return "SCRAM-SHA-1";
    case Mechanism::scram_sha1_plus: return "SCRAM-SHA-1-PLUS";
    case Mechanism::scram_sha256: return "SCRAM-SHA-256";
    case Mechanism::scram_sha256_plus: return "SCRAM-SHA-256-PLUS";
    case Mechanism::plain: return "PLAIN";
  }
  return "";
}

bool is_scram(Mechanism mechanism) { return mechanism != Mechanism::plain; }

bool is_plus(Mechanism mechanism) {
  return mechanism == Mechanism::scram_sha1_plus || mechanism == Mechanism::scram_sha256_plus;
}

Hash scram_hash(Mechanism mechanism) {
  assert(is_scram(mechanism));
  return (mechanism == Mechanism::scram_sha1 || mechanism == Mechanism::scram_sha1_plus) ? Hash::sha1
                                                                                         : Hash::sha256;
}

}  // namespace parley::sasl
