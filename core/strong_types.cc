#include "core/strong_types.h"

namespace sluice {

bool IsCountryCodeShape(const std::string& s) {
  return s.size() == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

}  // namespace sluice
