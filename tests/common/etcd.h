// A real etcd (Debian's etcd-server 3.4) for tests: one member or a cluster of several, each on
// free loopback ports with its data under the test's TempDir, killed by PID when destroyed.
// Thread-safety: not thread-safe; use from the test's main thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/common/test_env.h"

namespace sluice::testing {

// Path of the etcd binary, or "" if it is not installed (scripts/setup installs etcd-server).
std::string EtcdBinary();

class EtcdCluster {
 public:
  // Starts `members` members and waits until the cluster answers (a leader is elected).
  // nullptr (and the reason on stderr) if etcd is missing or does not come up.
  static std::unique_ptr<EtcdCluster> Start(const TempDir& dir, int members = 1);

  // Client URLs, "http://127.0.0.1:<port>", one per member.
  std::vector<std::string> endpoints() const;
  int size() const { return static_cast<int>(members_.size()); }
  ChildProcess* member(int i) { return members_[i].proc.get(); }
  // SIGKILLs member i (the others keep a quorum if there are three).
  void Kill(int i);
  // Starts member i again with its data (it rejoins the cluster).
  bool Restart(int i);

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string data_dir;
    std::string log;
    std::unique_ptr<ChildProcess> proc;
  };
  bool StartMember(Member& m, bool fresh);
  // Start with a try count: a member that exits (a port taken meanwhile) starts all over on
  // fresh ports, a few times at most.
  static std::unique_ptr<EtcdCluster> StartTry(const TempDir& dir, int members, int attempt);

  std::string initial_cluster_;
  std::vector<Member> members_;
};

}  // namespace sluice::testing
