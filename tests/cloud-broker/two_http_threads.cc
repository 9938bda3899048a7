// Linked into sluice_broker_producer_test only: cpprestsdk's shared pool gets 2 threads before any
// test runs (a process sizes it once), so a test can show that waiting produce requests do not
// take the HTTP threads: with the pool this small, any that did would stall the broker.
#include "core/http.h"

namespace {
const bool kTwoHttpThreads = [] {
  sluice::InitHttpThreads(2);
  return true;
}();
}  // namespace
