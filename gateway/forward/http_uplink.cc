#include "gateway/forward/uplink.h"

namespace sluice::gateway {

HttpUplink::HttpUplink(const std::string& base_url, int64_t timeout_ms)
    : client_(base_url, HttpClientOptions{timeout_ms}),
      probe_client_(base_url, HttpClientOptions{timeout_ms < 1000 ? timeout_ms : 1000}) {}

Status HttpUplink::Probe() {
  Result<HttpResponse> r = probe_client_.Get("/healthz");
  if (!r.ok()) {
    return r.status();
  }
  if (r->status != 200) {
    return Status::Unavailable("healthz answered " + std::to_string(r->status));
  }
  return Status::Ok();
}

Result<UplinkResponse> HttpUplink::SendBatch(const std::string& topic, const std::string& batch) {
  Result<HttpResponse> r = client_.Send("POST", "/v1/topics/" + UrlEncode(topic) + "/records",
                                        batch, "application/vnd.kafka.record-batch.v2");
  if (!r.ok()) {
    return r.status();
  }
  return UplinkResponse{r->status, std::move(r->body)};
}

}  // namespace sluice::gateway
