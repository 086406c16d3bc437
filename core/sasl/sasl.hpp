// core/sasl/sasl.hpp - everything of parley_sasl in one include.
#pragma once

#include "core/sasl/base64.hpp"
#include "core/sasl/crypto.hpp"
#include "core/sasl/failure.hpp"
#include "core/sasl/mechanism.hpp"
#include "core/sasl/plain.hpp"
#include "core/sasl/saslprep.hpp"
#include "core/sasl/scram_credentials.hpp"
#include "core/sasl/scram_server.hpp"
