// CheckBuffer: the offline report behind `sluice-gateway --check-buffer`. Opens the LevelDB
// buffer (never creating it), streams over every key once (bounded memory) and prints, per
// region, queued records/bytes (verifying each entry's CRC-32C), dead letters and quarantined
// entries, then every quarantined entry (key, reason), dead letter (key) and record kept in the
// residency quarantine (key, reason, device, country: an MQTT event of a country no region may
// store, PendingEvent::refused_reason). Changes nothing:
// corrupt queued entries are reported as "corrupt (quarantined at next start)".
// Thread-safety: a free function; the DB must not be open elsewhere (LevelDB's lock refuses).
#pragma once

#include <ostream>
#include <string>

#include "core/status.h"

namespace sluice::gateway {

// kIOError if the DB cannot be opened (missing, locked by a running gateway, unreadable).
Status CheckBuffer(const std::string& path, std::ostream& out);

}  // namespace sluice::gateway
