// The region's Controller against a real etcd: three in-process brokers, each with its own
// EtcdClient, BrokerRegistration (lease 2 s, keep-alive 300 ms) and Controller. Deadlines are
// generous (the machine is shared); nothing asserts on wall-clock time.
#include "cloud-broker/replication/controller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "cloud-broker/replication/broker_registry.h"
#include "cloud-broker/replication/partition_state_store.h"
#include "cloud-broker/replication/topic_admin.h"
#include "tests/cloud-broker/test_residency.h"
#include "tests/common/etcd.h"

namespace sluice::broker {
namespace {

using sluice::testing::EtcdCluster;
using sluice::testing::TempDir;
using sluice::testing::WaitFor;

constexpr int64_t kDeadlineMs = 20000;

// One broker process: its etcd client, its registration and its controller. `wired`: the
// registration tells the controller about a lost or new lease (as the broker does); unwired,
// the controller learns of a lost lease only from its own guards (a paused zombie).
struct Node {
  std::string id;
  std::unique_ptr<EtcdClient> etcd;
  std::unique_ptr<Controller> controller;
  std::atomic<BrokerRegistration*> reg_ptr{nullptr};
  std::unique_ptr<BrokerRegistration> reg;

  ~Node() {
    reg.reset();  // its callbacks use the controller
    controller.reset();
  }
  // A crash: the lease is left to expire. (The stopped Controller withdraws its candidacy, as a
  // dead process's does when its lease ends; use it on brokers that are not the controller.)
  void Crash() {
    reg->Abandon();
    controller->Stop();
  }
};

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = EtcdCluster::Start(dir_);
    ASSERT_NE(etcd_, nullptr) << "etcd did not start (scripts/setup installs etcd-server)";
    admin_ = std::move(EtcdClient::Create(etcd_->endpoints()).value());
  }
  void TearDown() override { nodes_.clear(); }

  Node* StartNode(const std::string& id, const std::string& region = "eu", bool wired = true,
                  int64_t poll_interval_ms = 200) {
    auto node = std::make_unique<Node>();
    node->id = id;
    node->etcd = std::move(EtcdClient::Create(etcd_->endpoints()).value());
    ControllerOptions co;
    co.region = region;
    co.broker_id = id;
    co.poll_interval_ms = poll_interval_ms;
    auto controller = Controller::Start(*node->etcd, co);
    EXPECT_TRUE(controller.ok()) << controller.status().ToString();
    node->controller = std::move(controller).value();
    RegistrationOptions ro;
    ro.lease_ttl_s = 2;
    ro.keepalive_interval_ms = 300;
    Node* n = node.get();
    if (wired) {
      ro.on_lost = [n] { n->controller->SetLease(0); };
      ro.on_registered = [n](const BrokerInfo&) {
        if (BrokerRegistration* r = n->reg_ptr.load()) {
          n->controller->SetLease(r->lease());
        }
      };
    }
    auto reg = BrokerRegistration::Start(*node->etcd, {id, region, "http://" + id, 0}, ro);
    EXPECT_TRUE(reg.ok()) << reg.status().ToString();
    node->reg = std::move(reg).value();
    node->reg_ptr = node->reg.get();
    node->controller->SetLease(node->reg->lease());
    nodes_.push_back(std::move(node));
    return n;
  }

  // The nodes that believe they are controller of their region "eu".
  std::vector<Node*> Controllers() {
    std::vector<Node*> out;
    for (auto& n : nodes_) {
      if (n->controller->is_controller() && n->reg_ptr.load() != nullptr &&
          n->reg->self().region == "eu") {
        out.push_back(n.get());
      }
    }
    return out;
  }
  Node* WaitForController(int64_t epoch_above = 0) {
    Node* found = nullptr;
    WaitFor([&] {
      auto c = Controllers();
      found = (c.size() == 1 && c[0]->controller->epoch() > epoch_above) ? c[0] : nullptr;
      return found != nullptr;
    }, kDeadlineMs);
    return found;
  }
  std::vector<VersionedPartitionState> States(const std::string& region = "eu") {
    auto s = ReadPartitionStates(*admin_, region);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : std::vector<VersionedPartitionState>{};
  }

  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<EtcdClient> admin_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

// Fails if two controllers can act at once (e.g. acting on a Campaign answer without confirming
// the leader key), if Stop does not resign (the stopped controller's key lives on under its
// broker's live lease and nobody else is ever elected), or if a crashed controller's successor
// does not get a larger epoch.
TEST_F(ControllerTest, ExactlyOneControllerAndFailoverRaisesTheEpoch) {
  StartNode("b1");
  StartNode("b2");
  StartNode("b3");
  Node* first = WaitForController();
  ASSERT_NE(first, nullptr);
  for (int i = 0; i < 10; ++i) {
    auto leader = admin_->Leader(ControllerElection("eu"));
    ASSERT_TRUE(leader.ok() && leader->has_value());
    EXPECT_EQ((*leader)->value, first->id);
    EXPECT_EQ((*leader)->create_revision, first->controller->epoch());
    EXPECT_EQ(Controllers().size(), 1u);
  }

  // A clean stop: the broker stays registered, its controller resigns.
  first->controller->Stop();
  EXPECT_FALSE(first->controller->is_controller());
  Node* second = nullptr;
  ASSERT_TRUE(WaitFor([&] {
    second = WaitForController();
    return second != nullptr && second != first;
  }, kDeadlineMs));
  const int64_t second_epoch = second->controller->epoch();
  auto leader = admin_->Leader(ControllerElection("eu"));
  ASSERT_TRUE(leader.ok() && leader->has_value());
  EXPECT_EQ((*leader)->value, second->id);

  // A crash (registration abandoned, controller left running as it would be in a paused
  // process): once the lease expires the third broker is elected with a larger epoch, and the
  // old one steps down when its guarded read fails.
  second->reg->Abandon();
  Node* third = WaitForController(second_epoch);
  ASSERT_NE(third, nullptr);
  EXPECT_NE(third, first);
  EXPECT_NE(third, second);
  EXPECT_GT(third->controller->epoch(), second_epoch);
  ASSERT_TRUE(WaitFor([&] { return !second->controller->is_controller(); }, kDeadlineMs));
  EXPECT_GE(second->controller->step_downs(), 1);
  EXPECT_EQ(third->controller->elections_won(), 1);
}

// Fails if the controller elects outside the ISR or not in replica order, forgets to bump the
// leader epoch, leaves the dead broker in the ISR, moves leadership of partitions whose leader
// lives, or places/elects a broker of another region.
TEST_F(ControllerTest, LeaderCrashMovesLeadershipWithinTheIsr) {
  StartNode("b1");
  StartNode("b2");
  StartNode("b3");
  StartNode("u1", "us");  // another region's broker: never a replica of an eu partition
  ASSERT_TRUE(CreateTopic(*admin_, Residency("eu"), "orders", 6, 3).ok());
  Node* controller = WaitForController();
  ASSERT_NE(controller, nullptr);
  Node* victim = nullptr;
  for (auto& n : nodes_) {
    if (n.get() != controller && n->id != "u1") {
      victim = n.get();
      break;
    }
  }
  const std::vector<VersionedPartitionState> before = States();
  ASSERT_EQ(before.size(), 6u);
  int led = 0;
  for (const auto& p : before) {
    led += p.state.leader == victim->id ? 1 : 0;
  }
  ASSERT_EQ(led, 2);

  victim->Crash();
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& p : States()) {
      if (p.state.InIsr(victim->id)) {
        return false;
      }
    }
    return true;
  }, kDeadlineMs)) << "the dead broker is still in an ISR";

  const std::vector<VersionedPartitionState> after = States();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    const PartitionState& was = before[i].state;
    const PartitionState& now = after[i].state;
    SCOPED_TRACE("partition " + std::to_string(after[i].partition));
    EXPECT_EQ(now.replicas, was.replicas);
    EXPECT_FALSE(now.IsReplica("u1"));
    EXPECT_EQ(now.isr.size(), 2u);
    EXPECT_EQ(now.version, was.version + 1);
    EXPECT_EQ(now.controller_epoch, controller->controller->epoch());
    if (was.leader == victim->id) {
      // The first live ISR member in replica order.
      std::string expected;
      for (const std::string& r : was.replicas) {
        if (r != victim->id && was.InIsr(r)) {
          expected = r;
          break;
        }
      }
      EXPECT_EQ(now.leader, expected);
      EXPECT_EQ(now.leader_epoch, was.leader_epoch + 1);
    } else {
      EXPECT_EQ(now.leader, was.leader);
      EXPECT_EQ(now.leader_epoch, was.leader_epoch);
    }
  }
}

// Fails if an offline partition's ISR is emptied or shrunk below the last leader, if a live
// replica outside the ISR is elected (unclean election by default), or if the returning ISR
// member is not elected with a higher epoch.
TEST_F(ControllerTest, AllIsrDeadGoesOfflineUntilTheLastLeaderReturns) {
  StartNode("b1");
  StartNode("b2");
  StartNode("b3");
  Node* controller = WaitForController();
  ASSERT_NE(controller, nullptr);
  // Factor 2 on 3 brokers: exactly one partition has no replica on the controller.
  ASSERT_TRUE(CreateTopic(*admin_, Residency("eu"), "pairs", 3, 2).ok());
  VersionedPartitionState target;
  for (const auto& p : States()) {
    if (!p.state.IsReplica(controller->id)) {
      target = p;
    }
  }
  ASSERT_EQ(target.state.replicas.size(), 2u);
  const std::string first = target.state.replicas[0];  // the leader
  const std::string second = target.state.replicas[1];
  auto node = [&](const std::string& id) {
    for (auto& n : nodes_) {
      if (n->id == id) {
        return n.get();
      }
    }
    return static_cast<Node*>(nullptr);
  };
  auto state = [&] {
    return ReadPartitionState(*admin_, "eu", "pairs", target.partition).value().state;
  };

  node(first)->Crash();
  ASSERT_TRUE(WaitFor([&] { return state().leader == second; }, kDeadlineMs));
  EXPECT_EQ(state().leader_epoch, 1);
  EXPECT_EQ(state().isr, std::vector<std::string>{second});

  node(second)->Crash();
  ASSERT_TRUE(WaitFor([&] { return state().leader.empty(); }, kDeadlineMs));
  EXPECT_EQ(state().leader_epoch, 2);
  EXPECT_EQ(state().isr, std::vector<std::string>{second});  // the last leader stays

  // `first` returns, but it left the ISR: no unclean election. Two complete rounds after its
  // registration is listed, the partition is still offline.
  StartNode(first);
  ASSERT_TRUE(WaitFor([&] { return ListBrokers(*admin_, "eu")->size() == 2u; }, kDeadlineMs));
  const int64_t rounds = controller->controller->complete_rounds();
  ASSERT_TRUE(WaitFor([&] { return controller->controller->complete_rounds() >= rounds + 2; },
                      kDeadlineMs));
  EXPECT_TRUE(state().leader.empty());
  EXPECT_EQ(state().leader_epoch, 2);

  StartNode(second);
  ASSERT_TRUE(WaitFor([&] { return state().leader == second; }, kDeadlineMs));
  EXPECT_EQ(state().leader_epoch, 3);
  EXPECT_EQ(state().isr, std::vector<std::string>{second});
}

// Fails if the controller's writes are not guarded by its own leader key (the zombie's CAS would
// succeed), or if a deposed controller never steps down or is never replaced.
TEST_F(ControllerTest, ZombieControllerCannotWriteAndIsReplaced) {
  Node* zombie = StartNode("b1", "eu", /*wired=*/false);  // learns only from its guards
  ASSERT_NE(WaitForController(), nullptr);
  ASSERT_EQ(WaitForController(), zombie);
  StartNode("b2");
  StartNode("b3");
  ASSERT_TRUE(CreateTopic(*admin_, Residency("eu"), "orders", 3, 3).ok());
  const int64_t zombie_epoch = zombie->controller->epoch();
  auto leader = admin_->Leader(ControllerElection("eu"));
  ASSERT_TRUE(leader.ok() && leader->has_value());
  const EtcdKeyValue zombie_key = **leader;
  ASSERT_EQ(zombie_key.create_revision, zombie_epoch);

  // Its lease ends behind its back (an operator, or a pause longer than the TTL).
  ASSERT_TRUE(admin_->RevokeLease(zombie->reg->lease()).ok());
  const EtcdCompare guard = EtcdCompare::CreateRevisionIs(zombie_key.key, zombie_epoch);
  for (const VersionedPartitionState& p : States()) {
    PartitionState forged = p.state;
    forged.leader_epoch += 10;
    forged.controller_epoch = zombie_epoch;
    auto cas = CompareAndSwap(*zombie->etcd, "eu", p.topic, p.partition, p.mod_revision, forged,
                              {guard});
    ASSERT_TRUE(cas.ok()) << cas.status().ToString();
    EXPECT_EQ(*cas, CasOutcome::kGuardFailed);
    EXPECT_NE(ReadPartitionState(*admin_, "eu", p.topic, p.partition)->state, forged);
  }

  Node* successor = WaitForController(zombie_epoch);
  ASSERT_NE(successor, nullptr);
  EXPECT_NE(successor, zombie);
  ASSERT_TRUE(WaitFor([&] { return zombie->controller->step_downs() >= 1; }, kDeadlineMs));
  EXPECT_FALSE(zombie->controller->is_controller());
  // The zombie's broker registered again as a new incarnation; whatever the successor wrote
  // about it carries the successor's epoch, never the zombie's.
  for (const VersionedPartitionState& p : States()) {
    EXPECT_NE(p.state.leader_epoch, 10);
    EXPECT_TRUE(p.state.controller_epoch == 0 ||
                p.state.controller_epoch == successor->controller->epoch());
  }
}

// Fails if the controller notices only missing registrations: a broker that restarted between
// two polls (a new incarnation) lost its in-memory state, so it may not stay leader or in-sync.
TEST_F(ControllerTest, RestartBetweenPollsCountsAsAFailure) {
  constexpr int64_t kSlowPollMs = 4000;  // room to restart a broker between two polls
  StartNode("b1", "eu", true, kSlowPollMs);
  StartNode("b2", "eu", true, kSlowPollMs);
  StartNode("b3", "eu", true, kSlowPollMs);
  Node* controller = WaitForController();
  ASSERT_NE(controller, nullptr);
  ASSERT_TRUE(CreateTopic(*admin_, Residency("eu"), "orders", 3, 3).ok());
  Node* victim = nullptr;
  for (auto& n : nodes_) {
    if (n.get() != controller) {
      victim = n.get();
    }
  }
  const std::string id = victim->id;
  const std::vector<VersionedPartitionState> before = States();
  // Just after a complete round, restart the victim: a clean stop removes its key at once and
  // the new incarnation registers at once, well before the next poll.
  const int64_t rounds = controller->controller->complete_rounds();
  ASSERT_TRUE(WaitFor([&] { return controller->controller->complete_rounds() > rounds; },
                      kDeadlineMs));
  const int64_t rounds_before_restart = controller->controller->complete_rounds();
  victim->reg->Stop();
  victim->controller->Stop();
  StartNode(id, "eu", true, kSlowPollMs);
  ASSERT_EQ(ListBrokers(*admin_, "eu")->size(), 3u);
  // The controller did not poll while the victim was away: it can only tell by incarnation.
  ASSERT_EQ(controller->controller->complete_rounds(), rounds_before_restart);

  ASSERT_TRUE(WaitFor([&] {
    for (const auto& p : States()) {
      if (p.state.InIsr(id)) {
        return false;
      }
    }
    return true;
  }, kDeadlineMs));
  const std::vector<VersionedPartitionState> after = States();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_NE(after[i].state.leader, id);
    const bool led = before[i].state.leader == id;
    EXPECT_EQ(after[i].state.leader_epoch, before[i].state.leader_epoch + (led ? 1 : 0));
  }
}

// Fails if the controller ignores a lost lease (it would keep campaigning with the dead lease
// and never be elected again) or acts after it (two controllers).
TEST_F(ControllerTest, LostLeaseStepsDownAndCampaignsAgainWithTheNewLease) {
  Node* b1 = StartNode("b1");
  ASSERT_EQ(WaitForController(), b1);
  Node* b2 = StartNode("b2");
  const int64_t first_epoch = b1->controller->epoch();
  const int64_t old_lease = b1->reg->lease();
  ASSERT_TRUE(admin_->RevokeLease(old_lease).ok());
  ASSERT_EQ(WaitForController(first_epoch), b2);
  // b1 registered again under a new lease and campaigns with it: it takes over when b2 stops.
  ASSERT_TRUE(WaitFor([&] { return b1->reg->registered() && b1->reg->lease() != old_lease; },
                      kDeadlineMs));
  const int64_t second_epoch = b2->controller->epoch();
  b2->controller->Stop();
  ASSERT_EQ(WaitForController(second_epoch), b1);
  EXPECT_EQ(b1->controller->elections_won(), 2);
  EXPECT_GE(b1->controller->step_downs(), 1);
}

}  // namespace
}  // namespace sluice::broker
