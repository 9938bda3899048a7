// Base64 (RFC 4648, standard alphabet, with padding): etcd's JSON gateway carries keys and
// values this way. Thread-safety: pure functions.
#pragma once

#include <string>

#include "core/status.h"

namespace sluice {

std::string Base64Encode(const std::string& bytes);
// kInvalidArgument if `text` is not padded base64 (length, alphabet or padding).
Result<std::string> Base64Decode(const std::string& text);

}  // namespace sluice
