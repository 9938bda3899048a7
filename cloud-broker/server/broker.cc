#include "cloud-broker/server/broker.h"

#include "core/logging.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "broker";
}  // namespace

Broker::Broker(BrokerOptions options) : options_(std::move(options)) {}

Broker::~Broker() { Stop(); }

Result<std::unique_ptr<Broker>> Broker::Start(const BrokerOptions& options) {
  std::unique_ptr<Broker> b(new Broker(options));
  b->metrics_ = std::make_unique<BrokerMetrics>(b->registry_);

  TopicStoreOptions so;
  so.data_dir = options.data_dir;
  so.log.segment_bytes = options.segment_bytes;
  so.log.flush = options.flush;
  so.auto_create = options.auto_create_topics;
  so.default_partitions = options.default_partitions;
  Result<std::unique_ptr<TopicStore>> store = TopicStore::Open(so);
  if (!store.ok()) {
    return Status(store.status().code(),
                  "cannot open data dir " + options.data_dir + ": " + store.status().message());
  }
  b->store_ = std::move(store).value();
  b->metrics_->RecoveryTruncated(b->store_->recovery_truncated_bytes());
  for (const Topic* t : b->store_->Topics()) {
    b->metrics_->WatchTopic(*t);
  }

  b->policy_ = std::make_unique<ResidencyPolicy>(options.region, options.countries);
  ServiceOptions svc;
  svc.broker_id = options.broker_id;
  svc.query_default_limit = options.query_default_limit;
  svc.query_max_limit = options.query_max_limit;
  b->service_ = std::make_unique<BrokerService>(svc, *b->store_, *b->policy_, *b->metrics_);

  HttpServerOptions ho;
  ho.host = options.http_host;
  ho.port = options.http_port;
  ho.max_body_bytes = options.max_body_bytes;
  BrokerService* service = b->service_.get();
  Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(
      ho, [service](HttpRequest&& req, HttpResponder respond) {
        service->Handle(std::move(req), std::move(respond));
      });
  if (!server.ok()) {
    return server.status();
  }
  b->server_ = std::move(server).value();
  std::string countries;
  for (const CountryCode& c : options.countries) {
    countries += (countries.empty() ? "" : ",") + c.value();
  }
  LogInfo(kComponent, "broker " + options.broker_id + " listening on http://" +
                          options.http_host + ":" + std::to_string(b->server_->port()) +
                          " region=" + options.region.value() + " countries=" + countries +
                          " data_dir=" + options.data_dir + " topics=" +
                          std::to_string(b->store_->Topics().size()));
  return b;
}

void Broker::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  if (server_) {
    server_->Stop();
  }
  if (store_) {
    for (const Topic* t : store_->Topics()) {
      for (int32_t p = 0; p < t->partition_count(); ++p) {
        Status st = t->partition(p)->Flush();
        if (!st.ok()) {
          LogError(kComponent, "flush " + t->name().value() + "-" + std::to_string(p) + ": " +
                                   st.ToString());
        }
      }
    }
  }
}

}  // namespace sluice::broker
