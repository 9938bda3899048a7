// Consumer groups in a replicated region (issue 11): committed offsets are records of the
// replicated __consumer_offsets topic, so they survive the SIGKILL of the group's coordinator;
// a broker that does not coordinate a group answers 421 not_coordinator and every broker names
// the coordinator; `sluice consume --group` given all three brokers follows the coordinator
// through a failover and resumes where the group committed.
// On the code before this test (offsets in a file of whichever broker took the commit) the
// offsets read after the coordinator's death are empty, and the CLI resumes at the beginning.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "core/http.h"
#include "tests/common/test_env.h"
#include "tests/integration/replicated_region.h"

namespace sluice {
namespace {

struct Coordinator {
  std::string broker_id;
  std::string url;
};

class ReplicatedGroupsTest : public ReplicationTest {
 protected:
  // Asks broker `ask` who coordinates `group` (retrying while none can be named: the offsets
  // topic is created on first use and needs its leader), until it names a broker other than
  // `not_this` (after that one died).
  Coordinator CoordinatorOf(const std::string& group, int ask, const std::string& not_this = "") {
    Coordinator c;
    std::string body;
    WaitFor([&] {
      if (testing::HttpGet(nodes_[ask].port, "/v1/groups/" + group + "/coordinator", &body,
                           3000) != 200) {
        return false;
      }
      rapidjson::Document d;
      d.Parse(body.c_str());
      if (d.HasParseError() || !d.HasMember("broker_id") || !d.HasMember("url")) {
        return false;
      }
      c.broker_id = d["broker_id"].GetString();
      c.url = d["url"].GetString();
      return !c.broker_id.empty() && IndexOf(c.broker_id) >= 0 && c.broker_id != not_this;
    }, 30000, 100);
    return c;
  }

  // The group's committed offset of sensors-0 as its coordinator answers (-1: none), retrying
  // not_coordinator / coordinator_not_available answers for up to 30 s.
  int64_t CommittedOffset(const std::string& group, int ask, std::string* last) {
    int64_t offset = -2;
    WaitFor([&] {
      const Coordinator c = CoordinatorOf(group, ask);
      const int ci = IndexOf(c.broker_id);
      if (ci < 0) {
        return false;
      }
      std::string body;
      const int status = testing::HttpGet(nodes_[ci].port, "/v1/groups/" + group + "/offsets",
                                          &body, 3000);
      *last = std::to_string(status) + " " + body;
      if (status != 200) {
        return false;
      }
      rapidjson::Document d;
      d.Parse(body.c_str());
      offset = -1;
      for (const auto& o : d["offsets"].GetArray()) {
        if (std::string(o["topic"].GetString()) == "sensors" && o["partition"].GetInt() == 0) {
          offset = o["offset"].GetInt64();
        }
      }
      return true;
    }, 30000, 100);
    return offset;
  }
};

TEST_F(ReplicatedGroupsTest, CommittedOffsetsSurviveTheCoordinatorsDeath) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const std::string group = "dashboard";
  const Coordinator coord = CoordinatorOf(group, 0);
  const int ci = IndexOf(coord.broker_id);
  ASSERT_GE(ci, 0) << "no broker named a coordinator\n" << nodes_[0].proc->ReadLog();
  EXPECT_EQ(coord.url, nodes_[ci].url());
  for (int i = 0; i < kBrokers; ++i) {
    EXPECT_EQ(CoordinatorOf(group, i).broker_id, coord.broker_id) << "every broker agrees";
  }

  // Any other broker refuses the group's requests and names the coordinator.
  const int other = (ci + 1) % kBrokers;
  HttpClient to_other(nodes_[other].url());
  const std::string join = "{\"topics\":[\"sensors\"]}";
  auto refused = to_other.Send("POST", "/v1/groups/" + group + "/join", join);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 421) << refused->body;
  EXPECT_NE(refused->body.find("not_coordinator"), std::string::npos) << refused->body;
  EXPECT_NE(refused->body.find(coord.broker_id), std::string::npos) << refused->body;

  HttpClient to_coord(nodes_[ci].url());
  auto joined = to_coord.Send("POST", "/v1/groups/" + group + "/join", join);
  ASSERT_TRUE(joined.ok());
  ASSERT_EQ(joined->status, 200) << joined->body;
  rapidjson::Document d;
  d.Parse(joined->body.c_str());
  const std::string member = d["member_id"].GetString();
  const int64_t generation = d["generation"].GetInt64();
  auto commit = [&](HttpClient& c, const std::string& m, int64_t gen, int64_t offset) {
    return c.Send("POST", "/v1/groups/" + group + "/commit",
                  "{\"member_id\":\"" + m + "\",\"generation\":" + std::to_string(gen) +
                      ",\"offsets\":[{\"topic\":\"sensors\",\"partition\":0,\"offset\":" +
                      std::to_string(offset) + "}]}");
  };
  auto committed = commit(to_coord, member, generation, 7);
  ASSERT_TRUE(committed.ok());
  ASSERT_EQ(committed->status, 200) << committed->body;
  std::string last;
  ASSERT_EQ(CommittedOffset(group, ci, &last), 7) << last;

  // The coordinator dies: another broker leads the group's offsets partition and has them.
  nodes_[ci].proc->Stop(9, 5000);
  const Coordinator next = CoordinatorOf(group, other, coord.broker_id);
  ASSERT_NE(next.broker_id, coord.broker_id) << "no new coordinator";
  ASSERT_EQ(CommittedOffset(group, other, &last), 7)
      << "the commit acknowledged by the dead coordinator is gone: " << last;

  // The member is unknown there (membership is not replicated): it re-joins and commits on.
  HttpClient to_next(nodes_[IndexOf(next.broker_id)].url());
  auto beat = to_next.Send("POST", "/v1/groups/" + group + "/heartbeat",
                           "{\"member_id\":\"" + member + "\",\"generation\":" +
                               std::to_string(generation) + "}");
  ASSERT_TRUE(beat.ok());
  EXPECT_EQ(beat->status, 404) << beat->body;
  auto rejoined = to_next.Send("POST", "/v1/groups/" + group + "/join", join);
  ASSERT_TRUE(rejoined.ok());
  ASSERT_EQ(rejoined->status, 200) << rejoined->body;
  d.Parse(rejoined->body.c_str());
  auto again = commit(to_next, d["member_id"].GetString(), d["generation"].GetInt64(), 9);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->status, 200) << again->body;

  // Only the brokers write the offsets topic.
  auto forged = to_next.Send("POST", "/v1/topics/__consumer_offsets/records", Batch(0, 1),
                             "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->status, 400) << forged->body;
  auto created = to_next.Send("POST", "/v1/topics", "{\"name\":\"__consumer_offsets\"}");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->status, 400) << created->body;
  EXPECT_EQ(CommittedOffset(group, other, &last), 9) << last;

  // The killed broker comes back as a follower and takes the group's offsets with it.
  ASSERT_TRUE(StartNode(ci));
  EXPECT_EQ(CommittedOffset(group, ci, &last), 9) << last;
}

TEST_F(ReplicatedGroupsTest, TheCliFollowsTheGroupsCoordinatorThroughAFailover) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  HttpClient to_leader(nodes_[IndexOf(leader.id)].url());
  std::string last;
  ASSERT_TRUE(ProduceOk(to_leader, Batch(0, 20), &last)) << last;
  std::string brokers;
  for (const Node& n : nodes_) {
    brokers += (brokers.empty() ? "" : ",") + n.url();
  }
  auto consume = [&](const std::string& name, int max) {
    const std::string out = dir_.Sub(name + ".out");
    const int rc = testing::RunCommand(
        {testing::BinPath("sluice"), "consume", "--broker", brokers, "--topic", "sensors",
         "--group", "readers", "--max", std::to_string(max), "--idle-ms", "3000"},
        out, 90000);
    const std::string printed = testing::ReadFileOrEmpty(out);
    EXPECT_EQ(rc, 0) << printed;
    std::vector<int64_t> seqs;
    for (size_t at = printed.find("\"seq\":"); at != std::string::npos;
         at = printed.find("\"seq\":", at + 1)) {
      seqs.push_back(std::stoll(printed.substr(at + 6)));
    }
    return seqs;
  };
  std::vector<int64_t> first = consume("first", 8);
  ASSERT_EQ(first.size(), 8u);
  EXPECT_EQ(first.front(), 0);
  EXPECT_EQ(first.back(), 7);

  // Its coordinator dies; the next run finds the new one and resumes at the committed offset.
  const Coordinator coord = CoordinatorOf("readers", 0);
  const int ci = IndexOf(coord.broker_id);
  ASSERT_GE(ci, 0);
  nodes_[ci].proc->Stop(9, 5000);
  std::vector<int64_t> second = consume("second", 5);
  ASSERT_EQ(second.size(), 5u);
  EXPECT_EQ(second.front(), 8) << "resumed where the group committed before the failover";
  EXPECT_EQ(second.back(), 12);
}

// Offsets retention in a replicated region: a group without members and inactive for
// groups.offsets_retention (2 s here) is forgotten by its coordinator through a replicated
// "expired" record of __consumer_offsets, so no later leader brings it back; a group with a
// live member keeps its offsets.
class ReplicatedGroupsRetentionTest : public ReplicatedGroupsTest {
 protected:
  std::vector<std::string> ExtraSets() const override {
    return {"groups.offsets_retention=2s"};
  }
};

TEST_F(ReplicatedGroupsRetentionTest, InactiveGroupsAreForgottenByAReplicatedRecord) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  // Joins `group` at its coordinator and commits offset 7 of sensors-0 (retrying while the
  // coordinator is being elected: 421 / 503); the member stays. Returns the coordinator's
  // index, -1 on failure with the last answer in *last.
  auto commit_once = [&](const std::string& group, std::string* member, std::string* last) {
    int ci = -1;
    auto call = [&](const std::string& verb, const std::string& body, rapidjson::Document* d) {
      return WaitFor([&] {
        ci = IndexOf(CoordinatorOf(group, 0).broker_id);
        if (ci < 0) {
          return false;
        }
        HttpClient to_coord(nodes_[ci].url());
        auto r = to_coord.Send("POST", "/v1/groups/" + group + "/" + verb, body);
        *last = r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString();
        if (!r.ok() || r->status != 200) {
          return false;
        }
        d->Parse(r->body.c_str());
        return !d->HasParseError() && d->IsObject();
      }, 30000, 200);
    };
    rapidjson::Document d;
    if (!call("join", R"({"topics":["sensors"],"session_timeout_ms":60000})", &d) ||
        !d.HasMember("member_id") || !d.HasMember("generation")) {
      return -1;
    }
    *member = d["member_id"].GetString();
    const std::string generation = std::to_string(d["generation"].GetInt64());
    rapidjson::Document ignored;
    if (!call("commit",
              "{\"member_id\":\"" + *member + "\",\"generation\":" + generation +
                  ",\"offsets\":[{\"topic\":\"sensors\",\"partition\":0,\"offset\":7}]}",
              &ignored)) {
      return -1;
    }
    return ci;
  };
  std::string idle_member;
  std::string busy_member;
  std::string last;
  const int busy_coord = commit_once("busy", &busy_member, &last);
  ASSERT_GE(busy_coord, 0) << last;
  // The idle group's offsets are there while its member is (retention counts from its leave).
  const int idle_coord = commit_once("idle", &idle_member, &last);
  ASSERT_GE(idle_coord, 0) << last;
  ASSERT_EQ(CommittedOffset("idle", 0, &last), 7) << last;
  HttpClient to_idle(nodes_[idle_coord].url());
  auto left = to_idle.Send("POST", "/v1/groups/idle/leave",
                           "{\"member_id\":\"" + idle_member + "\"}");
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->status, 200) << left->body;

  // Within a few retention checks the idle group's offsets are gone; the busy one keeps its
  // member alive (heartbeats) and its offsets.
  HttpClient to_busy(nodes_[busy_coord].url());
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    auto beat = to_busy.Send("POST", "/v1/groups/busy/heartbeat",
                             "{\"member_id\":\"" + busy_member + "\",\"generation\":1}");
    ASSERT_TRUE(beat.ok());
    ASSERT_EQ(beat->status, 200) << beat->body;
    gone = CommittedOffset("idle", 0, &last) == -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(gone) << "the idle group's offsets were never forgotten: " << last;
  EXPECT_EQ(CommittedOffset("busy", 0, &last), 7) << last;

  // Durable and replicated: every broker's copy of __consumer_offsets holds the "expired"
  // record (kind 3) of the idle group, so whichever broker leads its partition next has it.
  auto has_expired_record = [&](int b) {
    for (int p = 0; p < 64; ++p) {
      std::string body;
      const int st = testing::HttpGet(nodes_[b].port,
                                      "/v1/topics/__consumer_offsets/partitions/" +
                                          std::to_string(p) + "/records?offset=0",
                                      &body, 3000);
      if (st == 404) {
        return false;  // past the last partition
      }
      rapidjson::Document d;
      d.Parse(body.c_str());
      if (st != 200 || d.HasParseError() || !d.HasMember("records")) {
        continue;
      }
      for (const auto& r : d["records"].GetArray()) {
        if (!r["device_id"].IsString() || std::string(r["device_id"].GetString()) != "idle" ||
            !r.HasMember("payload_encoding")) {
          continue;
        }
        Result<std::string> value = Base64Decode(r["payload"].GetString());
        if (value.ok() && !value->empty() && (*value)[0] == 3) {
          return true;
        }
      }
    }
    return false;
  };
  for (int b = 0; b < kBrokers; ++b) {
    EXPECT_TRUE(WaitFor([&] { return has_expired_record(b); }, 10000, 200))
        << "broker " << b << " has no expired record of the idle group";
  }
}

// topics.max_partitions in a replicated region counts the region's topics from etcd (internal
// ones excluded): a create past it is 409 partition_limit at whichever broker takes it.
class ReplicatedPartitionLimitTest : public ReplicatedGroupsTest {
 protected:
  std::vector<std::string> ExtraSets() const override { return {"topics.max_partitions=3"}; }
};

TEST_F(ReplicatedPartitionLimitTest, ACreatePastTheRegionsLimitIs409) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));  // sensors: 1 partition
  for (int b = 0; b < kBrokers; ++b) {
    HttpClient admin(nodes_[b].url());
    auto over = admin.Send("POST", "/v1/topics", R"({"name":"big","partitions":3})");
    ASSERT_TRUE(over.ok());
    EXPECT_EQ(over->status, 409) << over->body;
    EXPECT_NE(over->body.find("partition_limit"), std::string::npos) << over->body;
    EXPECT_NE(over->body.find("topics.max_partitions"), std::string::npos) << over->body;
  }
  HttpClient admin(nodes_[1].url());
  auto fits = admin.Send("POST", "/v1/topics", R"({"name":"small","partitions":2})");
  ASSERT_TRUE(fits.ok());
  EXPECT_EQ(fits->status, 201) << fits->body;
}

}  // namespace
}  // namespace sluice
