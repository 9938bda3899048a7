// EtcdCluster: members named m0..mN-1 with a static initial cluster on free loopback ports;
// short heartbeat and election timeouts so a killed member's leadership moves within a second.
#include "tests/common/etcd.h"

#include <unistd.h>

#include <iostream>

namespace sluice::testing {

std::string EtcdBinary() {
  for (const char* p : {"/usr/bin/etcd", "/usr/local/bin/etcd"}) {
    if (::access(p, X_OK) == 0) {
      return p;
    }
  }
  return "";
}

std::unique_ptr<EtcdCluster> EtcdCluster::Start(const TempDir& dir, int members) {
  return StartTry(dir, members, 0);
}

std::unique_ptr<EtcdCluster> EtcdCluster::StartTry(const TempDir& dir, int members,
                                                   int attempt) {
  if (EtcdBinary().empty()) {
    std::cerr << "EtcdCluster::Start: no etcd binary (run scripts/setup)" << std::endl;
    return nullptr;
  }
  auto c = std::unique_ptr<EtcdCluster>(new EtcdCluster());
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.client_port = FreePort();
    m.peer_port = FreePort();
    m.data_dir = dir.Sub("etcd-" + m.name + "-" + std::to_string(m.client_port));
    m.log = dir.Sub("etcd-" + m.name + ".log");
    c->initial_cluster_ += (i > 0 ? "," : "") + m.name + "=http://127.0.0.1:" +
                           std::to_string(m.peer_port);
    c->members_.push_back(std::move(m));
  }
  for (Member& m : c->members_) {
    if (!c->StartMember(m, true)) {
      return nullptr;
    }
  }
  // A member that could not bind its ports (another test process took one) exits: then the
  // /health below could be answered by someone else's etcd. Start over on fresh ports.
  for (Member& m : c->members_) {
    ChildProcess* proc = m.proc.get();
    const int port = m.client_port;
    WaitFor([&] { return !proc->Running() || PortAcceptsConnections(port); }, 10000, 20);
    if (!proc->Running()) {
      if (attempt >= 3) {
        std::cerr << "EtcdCluster::Start: " << m.name << " exited:\n" << proc->ReadLog()
                  << std::endl;
        return nullptr;
      }
      return StartTry(dir, members, attempt + 1);
    }
  }
  // Up once every member reports itself healthy (a leader exists).
  for (Member& m : c->members_) {
    std::string body;
    const int port = m.client_port;
    if (!WaitFor([&] { return HttpGet(port, "/health", &body, 2000) == 200 &&
                             body.find("\"true\"") != std::string::npos; },
                 20000, 50)) {
      std::cerr << "EtcdCluster::Start: " << m.name << " not healthy: " << body << "\n"
                << m.proc->ReadLog() << std::endl;
      return nullptr;
    }
  }
  return c;
}

bool EtcdCluster::StartMember(Member& m, bool fresh) {
  const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  m.proc = ChildProcess::Start(
      {EtcdBinary(), "--name", m.name, "--data-dir", m.data_dir, "--listen-client-urls", client,
       "--advertise-client-urls", client, "--listen-peer-urls", peer,
       "--initial-advertise-peer-urls", peer, "--initial-cluster", initial_cluster_,
       "--initial-cluster-state", fresh ? "new" : "existing", "--initial-cluster-token",
       "sluice-test", "--heartbeat-interval", "50", "--election-timeout", "500",
       "--log-level", "warn"},
      m.log);
  if (m.proc == nullptr) {
    std::cerr << "EtcdCluster: cannot start " << m.name << std::endl;
    return false;
  }
  return true;
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const Member& m : members_) {
    out.push_back("http://127.0.0.1:" + std::to_string(m.client_port));
  }
  return out;
}

void EtcdCluster::Kill(int i) {
  if (members_[i].proc) {
    members_[i].proc->Stop(9, 5000);
  }
}

bool EtcdCluster::Restart(int i) {
  Member& m = members_[i];
  if (!StartMember(m, false)) {
    return false;
  }
  const int port = m.client_port;
  return WaitFor([&] { return HttpGet(port, "/health", nullptr, 2000) == 200; }, 20000, 50);
}

}  // namespace sluice::testing
