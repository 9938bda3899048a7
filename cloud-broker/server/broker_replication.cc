// Broker::StartReplication / StopReplication: a broker of a replicated region (etcd endpoints
// configured) registers under a lease, runs for controller, and replicates its partitions
// (cloud-broker/replication). A lost registration fences the broker at once: the controller
// gives up acting and every partition leader steps down until the state says otherwise.
#include "cloud-broker/server/broker.h"
#include "core/logging.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "broker";
}  // namespace

Status Broker::StartReplication() {
  if (!options_.replicated()) {
    return Status::Ok();
  }
  replicas_->SetDataListener([waiter = fetch_waiter_.get()] { waiter->Notify(); });
  ReplicaManager* rm = replicas_.get();
  auto gauge = [&](const char* name, const char* help,
                   std::function<int64_t(const ReplicaManager::Stats&)> pick) {
    registry_.AddGaugeFn(name, help, {},
                         [rm, pick] { return static_cast<double>(pick(rm->stats())); });
  };
  gauge("sluice_broker_partitions_leading", "Partitions this broker leads (and takes produce for)",
        [](const auto& s) { return s.leading; });
  gauge("sluice_broker_partitions_following", "Partitions this broker replicates as a follower",
        [](const auto& s) { return s.following; });
  gauge("sluice_broker_under_replicated_partitions",
        "Led partitions whose in-sync set is smaller than their replicas (alert on > 0)",
        [](const auto& s) { return s.under_replicated; });
  gauge("sluice_broker_under_min_isr_partitions",
        "Led partitions below replication.min_insync_replicas: acks=all produce is refused",
        [](const auto& s) { return s.under_min_isr; });
  gauge("sluice_broker_replica_max_lag_records",
        "Records the farthest in-sync follower of a led partition is behind its log end",
        [](const auto& s) { return s.max_follower_lag; });

  RegistrationOptions ro;
  ro.lease_ttl_s = options_.lease_ttl_s;
  ro.keepalive_interval_ms = std::max<int64_t>(200, options_.lease_ttl_s * 1000 / 3);
  ro.start_timeout_ms = options_.lease_ttl_s * 1000 + 10000;
  ReplicaManager* replicas = replicas_.get();
  std::atomic<Controller*>* controller = &controller_raw_;
  ro.on_lost = [replicas, controller] {
    replicas->OnRegistrationLost();
    if (Controller* c = controller->load()) {
      c->SetLease(0);
    }
  };
  ro.on_registered = [controller, replicas, this](const BrokerInfo& self) {
    replicas->SetIncarnation(self.incarnation);
    if (Controller* c = controller->load()) {
      c->SetLease(registration_->lease());  // a re-registration: campaign with the new lease
    }
  };
  BrokerInfo self{options_.broker_id, options_.region.value(), options_.advertised_url, 0};
  Result<std::unique_ptr<BrokerRegistration>> reg = BrokerRegistration::Start(*etcd_, self, ro);
  if (!reg.ok()) {
    return Status(reg.status().code(), "replication: cannot register broker " +
                                           options_.broker_id + " in etcd: " +
                                           reg.status().message());
  }
  registration_ = std::move(reg).value();
  replicas_->SetIncarnation(registration_->self().incarnation);
  ControllerOptions co;
  co.region = options_.region.value();
  co.broker_id = options_.broker_id;
  co.poll_interval_ms = options_.state_poll_ms;
  co.unclean_leader_election = options_.unclean_leader_election;
  Result<std::unique_ptr<Controller>> ctl = Controller::Start(*etcd_, co, registration_->lease());
  if (!ctl.ok()) {
    return Status(ctl.status().code(), "replication: controller: " + ctl.status().message());
  }
  controller_ = std::move(ctl).value();
  controller_raw_.store(controller_.get());
  replicas_->Start();
  LogInfo(kComponent, "broker " + options_.broker_id + " replicates region " +
                          options_.region.value() + " (advertised " + options_.advertised_url +
                          ", incarnation " + std::to_string(registration_->self().incarnation) +
                          ", min_insync_replicas " +
                          std::to_string(options_.min_insync_replicas) + ")");
  return Status::Ok();
}

void Broker::StopReplication() {
  controller_raw_.store(nullptr);
  if (controller_) {
    controller_->Stop();  // resigns: another broker takes over at once
  }
  if (replicas_) {
    replicas_->Stop();  // no partition leads any more; fetchers joined
  }
  if (registration_) {
    registration_->Stop();  // revokes the lease: the region sees this broker gone now
  }
  controller_raw_.store(nullptr);
}

}  // namespace sluice::broker
