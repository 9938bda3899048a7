// Uplink: how a Forwarder hands one encoded Kafka RecordBatch v2 to its region's broker.
// The forwarder sees only this interface (tests inject a fake); HttpUplink is the production
// implementation over core's HttpClient (POST <url>/v1/topics/<topic>/records).
// Thread-safety: implementations must be safe to call from one forwarder thread at a time;
// HttpUplink is thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/http.h"
#include "core/status.h"

namespace sluice::gateway {

struct UplinkResponse {
  int status = 0;    // HTTP status
  std::string body;  // the broker's answer (JSON error with reason/index on refusal)
};

using UplinkDone = std::function<void(Result<UplinkResponse>)>;

class Uplink {
 public:
  virtual ~Uplink() = default;
  // A non-ok result is a transport failure or timeout (kUnavailable, retryable); any HTTP answer
  // is returned as a response.
  virtual Result<UplinkResponse> SendBatch(const std::string& topic, const std::string& batch) = 0;
  // Sends without waiting for the answer, so several batches can be in flight; `done` runs once,
  // on any thread. after_seq >= 0 says the batch follows one still unacknowledged that ended at
  // that gateway_seq (the broker's `Sluice-After-Seq` check, cloud-broker/producers). The
  // default sends synchronously (done runs before it returns) and ignores after_seq: fakes in
  // tests keep one batch in flight.
  virtual void SendBatchAsync(const std::string& topic, std::string batch, int64_t after_seq,
                              UplinkDone done) {
    (void)after_seq;
    done(SendBatch(topic, batch));
  }
  // A cheap liveness check (GET /healthz) used while backing off: ok means "send now". The
  // default (no probe) never cuts a backoff short.
  virtual Status Probe() { return Status::Unavailable("no probe"); }
};

class HttpUplink final : public Uplink {
 public:
  // tls: for https:// URLs, the CA to verify the broker with and the gateway's own certificate
  // (mutual TLS).
  HttpUplink(const std::string& base_url, int64_t timeout_ms, const TlsClientOptions& tls = {});
  Result<UplinkResponse> SendBatch(const std::string& topic, const std::string& batch) override;
  void SendBatchAsync(const std::string& topic, std::string batch, int64_t after_seq,
                      UplinkDone done) override;
  Status Probe() override;  // GET /healthz, 1 s timeout

 private:
  HttpClient client_;
  HttpClient probe_client_;
};

}  // namespace sluice::gateway
