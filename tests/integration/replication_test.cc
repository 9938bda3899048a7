// A replicated region with real processes: one etcd and three sluice-broker processes on
// 127.0.0.1. Acknowledged (acks=all) records survive the leader's SIGKILL exactly once, the
// replicas' logs are byte-identical, a new leader is elected from the in-sync set, and the
// killed broker rejoins, catches up and is in sync again.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "core/http.h"
#include "core/record_batch.h"
#include "tests/common/etcd.h"
#include "tests/common/test_env.h"
#include "tests/common/tcp_proxy.h"
#include "tests/integration/replicated_region.h"

namespace sluice {
namespace {

TEST_F(ReplicationTest, AcknowledgedRecordsSurviveTheLeadersDeathExactlyOnce) {
  const std::string topic = "sensors";
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  int li = IndexOf(leader.id);
  ASSERT_GE(li, 0);

  // A follower refuses produce and names the leader.
  const int follower = (li + 1) % kBrokers;
  HttpClient to_follower(nodes_[follower].url());
  auto refused = to_follower.Send("POST", "/v1/topics/sensors/records", Batch(0, 5),
                                  "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 421) << refused->body;
  EXPECT_NE(refused->body.find("not_leader"), std::string::npos) << refused->body;
  // With acks=0 too: leadership is checked before the answer.
  auto refused0 = to_follower.Send("POST", "/v1/topics/sensors/records?acks=0", Batch(0, 5),
                                   "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(refused0.ok());
  EXPECT_EQ(refused0->status, 421) << refused0->body;

  // Acknowledged with acks=all (the default): 40 batches of 10 records.
  int64_t seq = 0;
  {
    HttpClient to_leader(nodes_[li].url());
    for (int b = 0; b < 40; ++b, seq += 10) {
      std::string last;
      ASSERT_TRUE(ProduceOk(to_leader, Batch(seq, 10), &last)) << "batch " << b << ": " << last;
    }
  }
  // Every replica serves all 400, and their logs are byte-identical.
  for (int i = 0; i < kBrokers; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Read(i, topic, 0).size() == 400u; }, 20000))
        << nodes_[i].id << " serves " << Read(i, topic, 0).size();
  }
  ASSERT_TRUE(WaitFor([&] {
    return LogBytes(0, topic, 0) == LogBytes(1, topic, 0) &&
           LogBytes(1, topic, 0) == LogBytes(2, topic, 0);
  }, 20000)) << "replica logs differ";

  // SIGKILL the leader: another in-sync replica leads with a higher epoch.
  const auto killed_at = std::chrono::steady_clock::now();
  nodes_[li].proc->Stop(9, 5000);
  const int survivor = (li + 1) % kBrokers;
  Leader next;
  ASSERT_TRUE(WaitFor([&] {
    next = LeaderOf(topic, 0, survivor);
    return !next.id.empty() && next.id != leader.id && next.epoch > leader.epoch;
  }, 30000, 50)) << "no new leader";
  const int ni = IndexOf(next.id);
  ASSERT_GE(ni, 0);
  // Produce resumes on the new leader (the in-sync set shrinks to the two survivors).
  HttpClient to_new(nodes_[ni].url());
  int64_t failover_ms = -1;
  ASSERT_TRUE(WaitFor([&] {
    auto r = to_new.Send("POST", "/v1/topics/sensors/records", Batch(seq, 10),
                         "application/vnd.kafka.record-batch.v2");
    if (r.ok() && r->status == 200) {
      failover_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - killed_at)
                        .count();
      return true;
    }
    return false;
  }, 30000, 50));
  std::cout << "failover: leader killed -> first acknowledged produce on " << next.id << " in "
            << failover_ms << " ms" << std::endl;
  seq += 10;
  for (int b = 0; b < 10; ++b, seq += 10) {
    auto r = to_new.Send("POST", "/v1/topics/sensors/records", Batch(seq, 10),
                         "application/vnd.kafka.record-batch.v2");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  // A retry of a batch acknowledged by the old leader is a duplicate, not stored twice.
  auto retry = to_new.Send("POST", "/v1/topics/sensors/records", Batch(100, 10),
                           "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->status, 200) << retry->body;
  EXPECT_NE(retry->body.find("\"duplicates\":10"), std::string::npos) << retry->body;

  // The killed broker restarts, truncates where needed, catches up and is in sync again.
  ASSERT_TRUE(StartNode(li));
  ASSERT_TRUE(WaitFor([&] { return LeaderOf(topic, 0, survivor).isr.size() == 3u; }, 30000,
                      100))
      << "the restarted broker did not rejoin the in-sync set";
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasHoldExactly(510));
}

// A paused leader (SIGSTOP past its lease) is replaced; resumed (SIGCONT) it must acknowledge
// nothing (zombie fencing): its produce is refused or times out, never 200, and once it follows
// the new leader its log holds exactly the new leader's records (its own tail cut by leader
// epoch). Breaking the step-down (ReplicaManager ignoring a refused swap, or AwaitReplicated not
// checking the role) lets the zombie answer 200 for records no replica keeps.
// A topic's retention and flush overrides travel with it in etcd, so every replica keeps and
// syncs its log alike (they were refused in a replicated region before: 400).
TEST_F(ReplicationTest, PerTopicOverridesReachEveryReplica) {
  ASSERT_NO_FATAL_FAILURE(WaitAllRegistered());
  HttpClient admin(nodes_[1].url());
  auto created = admin.Send("POST", "/v1/topics",
                            "{\"name\":\"slow\",\"partitions\":2,\"retention_ms\":3600000,"
                            "\"flush\":\"interval\",\"flush_ms\":1000}");
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->status, 201) << created->body;
  for (int i = 0; i < kBrokers; ++i) {
    std::string body;
    ASSERT_TRUE(WaitFor([&] {
      return testing::HttpGet(nodes_[i].port, "/v1/topics/slow", &body, 2000) == 200;
    }, 30000, 50)) << nodes_[i].id << " has no local log of the topic";
    rapidjson::Document d;
    d.Parse(body.c_str());
    ASSERT_TRUE(d.IsObject() && d.HasMember("config")) << body;
    EXPECT_EQ(d["config"]["retention_ms"].GetInt64(), 3600000) << nodes_[i].id << ": " << body;
    EXPECT_STREQ(d["config"]["flush"].GetString(), "interval") << nodes_[i].id;
    EXPECT_EQ(d["config"]["flush_ms"].GetInt64(), 1000) << nodes_[i].id;
    EXPECT_EQ(d["config"]["partitions"].GetInt(), 2) << nodes_[i].id;
  }
}

// KIP-380: a fetch in a follower's name from another incarnation than the one registered (a
// paused process of it, resumed after it restarted) is refused and counts as no progress, so it
// cannot move the high watermark past what the registered replica holds.
// A topic gets replication.factor (3) replicas or is not created: with a broker down, creation
// answers 503 (retry) instead of placing it on the two registered for good.
TEST_F(ReplicationTest, ATopicIsNotCreatedWithFewerReplicasThanTheFactor) {
  ASSERT_NO_FATAL_FAILURE(WaitAllRegistered());
  nodes_[2].proc->Stop(9, 5000);
  std::string metadata;
  ASSERT_TRUE(WaitFor([&] {
    if (testing::HttpGet(nodes_[0].port, "/v1/metadata", &metadata, 2000) != 200) return false;
    rapidjson::Document d;
    d.Parse(metadata.c_str());
    return d.IsObject() && d.HasMember("brokers") && d["brokers"].Size() == 2u;
  }, 30000, 50)) << metadata;
  HttpClient admin(nodes_[0].url());
  auto early = admin.Send("POST", "/v1/topics", "{\"name\":\"late\",\"partitions\":1}");
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->status, 503) << early->body;
  EXPECT_NE(early->body.find("replication.factor is 3"), std::string::npos) << early->body;
  ASSERT_TRUE(StartNode(2));
  ASSERT_NO_FATAL_FAILURE(WaitAllRegistered());
  auto created = admin.Send("POST", "/v1/topics", "{\"name\":\"late\",\"partitions\":1}");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->status, 201) << created->body;
  Leader leader;
  ASSERT_TRUE(WaitFor([&] {
    leader = LeaderOf("late", 0, 0);
    return leader.isr.size() == 3u;
  }, 30000, 100)) << "in sync: " << leader.isr.size();
}

TEST_F(ReplicationTest, AFetchFromAStaleIncarnationIsRefused) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  HttpClient to_leader(nodes_[li].url());
  std::string last;
  ASSERT_TRUE(ProduceOk(to_leader, Batch(0, 5), &last)) << last;
  const std::string follower = leader.isr[0] == leader.id ? leader.isr[1] : leader.isr[0];
  auto fetch = to_leader.Send(
      "POST", "/v1/replication/fetch",
      "{\"replica\":\"" + follower + "\",\"incarnation\":1,\"max_bytes\":1048576,"
          "\"wait_ms\":0,\"partitions\":[{\"topic\":\"sensors\",\"partition\":0,"
          "\"fetch_offset\":5,\"leader_epoch\":" + std::to_string(leader.epoch) + "}]}");
  ASSERT_TRUE(fetch.ok());
  ASSERT_EQ(fetch->status, 200) << fetch->body;
  EXPECT_NE(fetch->body.find("stale_broker_epoch"), std::string::npos) << fetch->body;
  // The registered followers still replicate.
  ASSERT_TRUE(ProduceOk(to_leader, Batch(5, 5), &last)) << last;
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasHoldExactly(10));
}

// Every replica indexes what it replicated, the same way (issue 12): once caught up, a query
// on any broker, leader or follower, answers the same records and counts, through its own index.
TEST_F(ReplicationTest, EveryReplicaIndexesWhatItReplicatedAndAnswersTheSameQueries) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  HttpClient to_leader(nodes_[IndexOf(leader.id)].url());
  std::string last;
  for (int64_t b = 0; b < 10; ++b) {
    ASSERT_TRUE(ProduceOk(to_leader, Batch(b * 30, 30), &last)) << last;
  }
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasHoldExactly(300));
  std::vector<std::string> answers;
  for (int i = 0; i < kBrokers; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      std::string metrics;
      return testing::HttpGet(nodes_[i].port, "/metrics", &metrics, 2000) == 200 &&
             metrics.find("\nsluice_broker_index_lag_records 0\n") != std::string::npos;
    }, 30000, 50)) << "broker " << i << " never indexed what it holds";
    std::string body;
    // ts = T0 + seq: [T0 + 100, T0 + 160) holds seq 100..159.
    ASSERT_EQ(testing::HttpGet(nodes_[i].port,
                               "/v1/query?topic=sensors&device_id=dev-1&count=exact&limit=1000&"
                               "from=1700000000100&to=1700000000160",
                               &body, 5000),
              200)
        << body;
    EXPECT_NE(body.find("\"matched\":60,"), std::string::npos) << "broker " << i << ": " << body;
    EXPECT_NE(body.find("\"seq\":159"), std::string::npos) << "broker " << i << ": " << body;
    EXPECT_EQ(body.find("\"seq\":160"), std::string::npos) << "broker " << i << ": " << body;
    answers.push_back(body);
  }
  EXPECT_EQ(answers[0], answers[1]);
  EXPECT_EQ(answers[1], answers[2]);
}

// A consumer may read from any replica, whose high watermark may lag what it holds (a leader
// waiting for a follower, a follower behind the leader). A fetch there is "nothing yet" (200,
// no records), not 416 "out of range", which makes consumers reset their position.
TEST_F(ReplicationTest, AFetchPastALaggingHighWatermarkIsEmptyNotOutOfRange) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  HttpClient to_leader(nodes_[li].url());
  std::string last;
  ASSERT_TRUE(ProduceOk(to_leader, Batch(0, 5), &last)) << last;
  const int fi = IndexOf(leader.isr[0] == leader.id ? leader.isr[1] : leader.isr[0]);
  ASSERT_EQ(::kill(nodes_[fi].proc->pid(), SIGSTOP), 0);  // in sync, but fetches nothing now
  auto stored = to_leader.Send("POST", "/v1/topics/sensors/records?acks=1", Batch(5, 5),
                               "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->status, 200) << stored->body;
  // The leader holds offsets 5..9; its high watermark waits for the paused follower. Nothing
  // past it is served, from inside the held range or from the high watermark itself.
  std::string body;
  const int status = testing::HttpGet(nodes_[li].port,
                                      "/v1/topics/sensors/partitions/0/records?offset=8", &body,
                                      5000);
  std::string at_hw;
  const int status_at_hw = testing::HttpGet(
      nodes_[li].port, "/v1/topics/sensors/partitions/0/records?offset=5", &at_hw, 5000);
  ASSERT_EQ(::kill(nodes_[fi].proc->pid(), SIGCONT), 0);
  EXPECT_EQ(status, 200) << body;
  EXPECT_NE(body.find("\"records\":[]"), std::string::npos) << "read past the HW: " << body;
  EXPECT_EQ(status_at_hw, 200) << at_hw;
  EXPECT_NE(at_hw.find("\"records\":[]"), std::string::npos) << "read past the HW: " << at_hw;
  // Long-polling there answers once the records are replicated.
  ASSERT_TRUE(WaitFor([&] {
    return testing::HttpGet(nodes_[li].port,
                            "/v1/topics/sensors/partitions/0/records?offset=8&wait_ms=2000",
                            &body, 5000) == 200 &&
           body.find("\"seq\":8") != std::string::npos;
  }, 30000, 100)) << body;
}

TEST_F(ReplicationTest, APausedLeaderResumesAsAZombieAndAcknowledgesNothing) {
  const std::string topic = "sensors";
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  HttpClient to_old(nodes_[li].url(), HttpClientOptions{15000, {}});
  for (int64_t b = 0; b < 5; ++b) {
    std::string last;
    ASSERT_TRUE(ProduceOk(to_old, Batch(b * 10, 10), &last)) << last;
  }
  ASSERT_EQ(::kill(nodes_[li].proc->pid(), SIGSTOP), 0);
  const int survivor = (li + 1) % kBrokers;
  Leader next;
  ASSERT_TRUE(WaitFor([&] {
    next = LeaderOf(topic, 0, survivor);
    return !next.id.empty() && next.id != leader.id;
  }, 30000, 50));
  HttpClient to_new(nodes_[IndexOf(next.id)].url());
  ASSERT_TRUE(WaitFor([&] {
    auto r = to_new.Send("POST", "/v1/topics/sensors/records", Batch(50, 10),
                         "application/vnd.kafka.record-batch.v2");
    return r.ok() && r->status == 200;
  }, 30000, 50));
  ASSERT_EQ(::kill(nodes_[li].proc->pid(), SIGCONT), 0);
  // At once, before it can notice: the zombie must not acknowledge.
  auto zombie = to_old.Send("POST", "/v1/topics/sensors/records", Batch(1000, 10),
                            "application/vnd.kafka.record-batch.v2");
  EXPECT_TRUE(!zombie.ok() || zombie->status != 200)
      << "the deposed leader acknowledged: " << zombie->body;
  for (int64_t b = 6; b < 10; ++b) {
    auto r = to_new.Send("POST", "/v1/topics/sensors/records", Batch(b * 10, 10),
                         "application/vnd.kafka.record-batch.v2");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  // Every replica, the resumed one included, holds exactly seq 0..99, in order, and the same
  // bytes: the zombie's tail was cut.
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasHoldExactly(100));
}

// A follower's death takes it out of the in-sync set for good, and acks=all produce goes on
// with the two left. Before the fix the leader put the dead follower back from its last
// progress each time the controller removed it: acks=all stalled (a gateway delivered 20 of
// 400 events in 60 s).
// Every broker reaches etcd through its own TcpProxy, so a test can cut one broker off the
// control plane while it still serves clients and peers (a network partition).
class ReplicationPartitionTest : public ReplicationTest {
 protected:
  std::string EtcdEndpointsFor(int i) override {
    if (proxies_.size() <= static_cast<size_t>(i)) {
      proxies_.resize(static_cast<size_t>(i) + 1);
    }
    if (!proxies_[static_cast<size_t>(i)]) {
      const std::string etcd = etcd_->endpoints()[0];
      proxies_[static_cast<size_t>(i)] =
          testing::TcpProxy::Start(std::stoi(etcd.substr(etcd.rfind(':') + 1)));
    }
    return "http://127.0.0.1:" + std::to_string(proxies_[static_cast<size_t>(i)]->port());
  }
  std::vector<std::unique_ptr<testing::TcpProxy>> proxies_;
};

// The leader is cut off from etcd (not from clients or its peers): once its lease is gone it
// acknowledges nothing more, the others elect a new leader, and produce goes on there; healed,
// the old leader rejoins as a follower. Every acknowledged record is on every replica once.
// Break tried: without the step-down on a lost registration (broker_replication.cc on_lost) the
// cut-off leader answers the acks=1 produce 200.
TEST_F(ReplicationPartitionTest, ALeaderCutOffFromEtcdStopsAcknowledgingAndTheRegionMovesOn) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  HttpClient to_leader(nodes_[li].url(), HttpClientOptions{3000, {}});
  std::string last;
  for (int64_t b = 0; b < 10; ++b) {
    ASSERT_TRUE(ProduceOk(to_leader, Batch(b * 10, 10), &last)) << last;
  }
  proxies_[static_cast<size_t>(li)]->Cut();
  const int other = (li + 1) % kBrokers;
  Leader next;
  ASSERT_TRUE(WaitFor([&] {
    next = LeaderOf("sensors", 0, other);
    return !next.id.empty() && next.id != leader.id;
  }, 30000, 50)) << "no new leader while the old one is cut off from etcd";
  // The old leader, still reachable, must not acknowledge: its lease is gone (it steps down
  // when its keep-alive fails for the lease's TTL, before etcd expires it for the others).
  HttpClient patient(nodes_[li].url(), HttpClientOptions{20000, {}});  // > replication.timeout
  // Even acks=1, which waits for no follower: its records could not survive the failover.
  auto stale = patient.Send("POST", "/v1/topics/sensors/records?acks=1", Batch(100, 10),
                            "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(stale.ok()) << stale.status().ToString();
  EXPECT_EQ(stale->status, 421) << "a leader without its lease acknowledged: " << stale->body;
  HttpClient to_next(nodes_[IndexOf(next.id)].url());
  for (int64_t b = 10; b < 20; ++b) {
    ASSERT_TRUE(ProduceOk(to_next, Batch(b * 10, 10), &last)) << "batch " << b << ": " << last;
  }
  proxies_[static_cast<size_t>(li)]->Heal();
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasHoldExactly(200));
}

TEST_F(ReplicationTest, ADeadFollowerLeavesTheInSyncSetForGood) {
  const std::string topic = "sensors";
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  HttpClient to_leader(nodes_[li].url());
  std::string last;
  ASSERT_TRUE(ProduceOk(to_leader, Batch(0, 10), &last)) << last;
  const int follower = (li + 1) % kBrokers;
  nodes_[follower].proc->Stop(9, 5000);
  ASSERT_TRUE(WaitFor([&] { return LeaderOf(topic, 0, li).isr.size() == 2u; }, 30000, 50));
  // Produce keeps being acknowledged, and the in-sync set stays at the two live replicas.
  for (int64_t b = 1; b <= 20; ++b) {
    auto r = to_leader.Send("POST", "/v1/topics/sensors/records", Batch(b * 10, 10),
                            "application/vnd.kafka.record-batch.v2");
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << "batch " << b << ": " << r->body;
    const Leader now = LeaderOf(topic, 0, li);
    EXPECT_EQ(now.isr.size(), 2u) << "the dead follower is back in the in-sync set";
  }
  EXPECT_EQ(Read(li, topic, 0).size(), 210u);
  // What an operator alerts on: one led partition under-replicated, none below min_insync.
  std::string metrics;
  ASSERT_EQ(testing::HttpGet(nodes_[li].port, "/metrics", &metrics), 200);
  EXPECT_EQ(testing::MetricSum(metrics, "sluice_broker_partitions_leading"), 1.0) << metrics;
  EXPECT_EQ(testing::MetricSum(metrics, "sluice_broker_under_replicated_partitions"), 1.0);
  EXPECT_EQ(testing::MetricSum(metrics, "sluice_broker_under_min_isr_partitions"), 0.0);
  std::string follower_metrics;
  const int other = (li + 2) % kBrokers;
  ASSERT_EQ(testing::HttpGet(nodes_[other].port, "/metrics", &follower_metrics), 200);
  EXPECT_EQ(testing::MetricSum(follower_metrics, "sluice_broker_partitions_following"), 1.0);
}

// Below min_insync_replicas (2) an acks=all produce is refused before anything is stored, and
// acks=1 is still taken (the leader alone has it: the client's choice to risk it).
TEST_F(ReplicationTest, BelowMinInsyncReplicasAcksAllIsRefusedAndStoresNothing) {
  const std::string topic = "sensors";
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  HttpClient to_leader(nodes_[li].url());
  std::string last;
  ASSERT_TRUE(ProduceOk(to_leader, Batch(0, 10), &last)) << last;
  nodes_[(li + 1) % kBrokers].proc->Stop(9, 5000);
  nodes_[(li + 2) % kBrokers].proc->Stop(9, 5000);
  ASSERT_TRUE(WaitFor([&] { return LeaderOf(topic, 0, li).isr.size() == 1u; }, 30000, 50));
  auto all = to_leader.Send("POST", "/v1/topics/sensors/records", Batch(10, 10),
                            "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->status, 503) << all->body;
  EXPECT_NE(all->body.find("not_enough_replicas"), std::string::npos) << all->body;
  // acks=0 and acks=1 do not wait for the in-sync set (Kafka's min.insync.replicas applies to
  // acks=all only); the same batch twice is stored once (the producer id).
  auto zero = to_leader.Send("POST", "/v1/topics/sensors/records?acks=0", Batch(10, 10),
                             "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->status, 202) << zero->body;
  auto one = to_leader.Send("POST", "/v1/topics/sensors/records?acks=1", Batch(10, 10),
                            "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->status, 200) << one->body;
  // The refused batches stored nothing: offsets 0..19 are seq 0..19, once.
  std::vector<int64_t> got = Read(li, topic, 0);
  ASSERT_EQ(got.size(), 20u);
  for (int64_t s = 0; s < 20; ++s) {
    EXPECT_EQ(got[static_cast<size_t>(s)], s);
  }
}

// More concurrent acks=all producers than the leader has HTTP threads (4): each waits for the
// followers' fetches, which need a thread too. Waiting on the HTTP threads, they starved those
// fetches until replication.timeout and were answered 503; on the produce pool they all succeed.
TEST_F(ReplicationTest, ManyConcurrentAcksAllProducersDoNotStarveTheFollowers) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  std::string last;
  {
    HttpClient warm(nodes_[li].url());
    ASSERT_TRUE(ProduceOk(warm, Batch(0, 1), &last)) << last;
  }
  constexpr int kProducers = 12;
  std::atomic<int> refused{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      HttpClient c(nodes_[li].url(), HttpClientOptions{30000, {}});
      for (int b = 0; b < 5; ++b) {
        RecordBatch batch;  // no producer id: independent producers
        for (int i = 0; i < 10; ++i) {
          Record r;
          r.timestamp_ms = 1'700'000'000'000;
          r.key = "dev-1";
          r.value = "{\"t\":" + std::to_string(t) + "}";
          r.headers = {{kHeaderCountry, "DE"}};
          batch.records.push_back(std::move(r));
        }
        auto r = c.Send("POST", "/v1/topics/sensors/records", EncodeBatch(batch),
                        "application/vnd.kafka.record-batch.v2");
        if (!r.ok() || r->status != 200) {
          refused++;
        }
      }
    });
  }
  for (std::thread& th : producers) {
    th.join();
  }
  EXPECT_EQ(refused.load(), 0) << "acks=all produce starved the followers' fetches";
}

// A gateway given the region's brokers (regions[].urls) sends each partition's records to its
// leader; killing a leader mid-stream delays delivery but loses and duplicates nothing.
TEST_F(ReplicationTest, AGatewayFollowsLeadersThroughAFailoverExactlyOnce) {
  ASSERT_NO_FATAL_FAILURE(WaitAllRegistered());  // the topic is auto-created: 3 replicas
  const int gw_port = testing::FreePort();
  const std::string gw_config = dir_.Sub("gw.yaml");
  std::ofstream(gw_config)
      << "gateway:\n  id: gw-de-1\n  country: DE\n  data_dir: " << dir_.Sub("gw-data")
      << "\nmqtt:\n  enabled: false\nhttp:\n  host: 127.0.0.1\n  port: " << gw_port
      << "\nbuffer:\n  min_free_bytes: 1MiB\nforward:\n  topic: sensors\n"
      << "  linger: 5ms\n  request_timeout: 5s\n  backoff_initial: 100ms\n  backoff_max: 1s\n"
      << "regions:\n  - name: eu-central\n    urls: [" << nodes_[0].url() << ", "
      << nodes_[1].url() << ", " << nodes_[2].url() << "]\n    countries: [DE]\n"
      << "log_level: info\n";
  auto gw = ChildProcess::Start({testing::BinPath("sluice-gateway"), "--config", gw_config},
                                dir_.Sub("gw.log"));
  ASSERT_NE(gw, nullptr);
  ASSERT_TRUE(testing::WaitHttpOk(gw_port, "/healthz", 30000)) << gw->ReadLog();
  HttpClient to_gw("http://127.0.0.1:" + std::to_string(gw_port));
  auto post = [&](int from, int n) {
    std::string body;
    for (int i = from; i < from + n; ++i) {
      body += "{\"device_id\":\"dev-" + std::to_string(i % 16) +
              "\",\"sensor\":\"t\",\"n\":" + std::to_string(i) + "}\n";
    }
    auto r = to_gw.Send("POST", "/v1/events", body, "application/x-ndjson");
    return r.ok() && r->status == 202;
  };
  for (int b = 0; b < 10; ++b) {
    ASSERT_TRUE(post(b * 20, 20));
  }
  // The topic (auto-created, 2 partitions) has leaders; kill partition 0's.
  Leader leader;
  ASSERT_TRUE(WaitFor([&] {
    leader = LeaderOf("sensors", 0, 0);
    return !leader.id.empty();
  }, 30000, 100));
  const int li = IndexOf(leader.id);
  nodes_[li].proc->Stop(9, 5000);
  for (int b = 10; b < 20; ++b) {
    ASSERT_TRUE(post(b * 20, 20));
  }
  const int survivor = (li + 1) % kBrokers;
  // Every event once, read from a surviving broker (both partitions).
  std::map<int64_t, int> seen;
  ASSERT_TRUE(WaitFor([&] {
    seen.clear();
    for (int32_t p = 0; p < 2; ++p) {
      int64_t offset = 0;
      while (true) {
        std::string body;
        if (testing::HttpGet(nodes_[survivor].port,
                             "/v1/topics/sensors/partitions/" + std::to_string(p) +
                                 "/records?offset=" + std::to_string(offset) +
                                 "&max_records=1000",
                             &body, 10000) != 200) {
          break;
        }
        rapidjson::Document d;
        d.Parse(body.c_str());
        if (d.HasParseError() || !d.HasMember("records") || d["records"].Empty()) {
          break;
        }
        for (const auto& r : d["records"].GetArray()) {
          seen[r["payload"]["n"].GetInt64()]++;
        }
        offset = d["next_offset"].GetInt64();
      }
    }
    return seen.size() == 400u;
  }, 60000, 200)) << "delivered " << seen.size() << " of 400\n" << gw->ReadLog();
  for (const auto& [n, count] : seen) {
    EXPECT_EQ(count, 1) << "event " << n << " stored " << count << " times";
  }
  std::string metrics;
  ASSERT_EQ(testing::HttpGet(gw_port, "/metrics", &metrics), 200);
  EXPECT_EQ(testing::MetricSum(metrics, "sluice_gateway_buffered_records"), 0.0);
}

}  // namespace
}  // namespace sluice
