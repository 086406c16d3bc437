// core/tls/self_signed.hpp - a certificate for a host that has none (first start, tests).
#pragma once

#include <string>

#include "parley/result.hpp"

namespace parley::tls {

// An ECDSA P-256 key, signed with SHA-256 (ecdsa-with-SHA256), subjectAltName DNS:host (for
// localhost also IP:127.0.0.1 and IP:::1) and CN=host when it fits, valid from an hour ago for
// 10 years; certificate then PKCS#8 key in one PEM file of mode 0600, written to a temporary
// file and renamed into place, parent directories created as needed.
Result<void, std::string> generate_self_signed(const std::string& host, const std::string& pem_path);

}  // namespace parley::tls
