// ChildProcess: fork + exec of a real binary in its own process group, with stdout/stderr
// appended to a log file, killed with the test (PR_SET_PDEATHSIG) and by PID on destruction.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "tests/common/test_env.h"

extern char** environ;

namespace sluice::testing {

namespace {

// Finds `name` on PATH (from `env`) unless it already names a path.
std::string ResolveExecutable(const std::string& name,
                              const std::map<std::string, std::string>& env) {
  if (name.find('/') != std::string::npos) {
    return name;
  }
  auto it = env.find("PATH");
  std::string path = it != env.end() ? it->second : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    std::string dir = path.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return name;
}

int StatusToExitCode(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

}  // namespace

std::unique_ptr<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                                  const std::string& log_path,
                                                  const std::map<std::string, std::string>& env) {
  if (argv.empty()) {
    std::cerr << "ChildProcess::Start: empty argv" << std::endl;
    return nullptr;
  }
  // Everything the child needs is prepared before fork: the child only calls
  // async-signal-safe functions.
  std::map<std::string, std::string> merged;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string::npos) {
      merged[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : env) {
    merged[k] = v;
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) {
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) {
    envp.push_back(s.data());
  }
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& s : args) {
    argp.push_back(s.data());
  }
  argp.push_back(nullptr);
  const std::string exe = ResolveExecutable(argv[0], merged);

  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    std::cerr << "ChildProcess::Start: open " << log_path << ": " << std::strerror(errno)
              << std::endl;
    return nullptr;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2];  // the child writes errno here if exec fails; CLOEXEC closes it on success
  if (null_fd < 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    std::cerr << "ChildProcess::Start: " << std::strerror(errno) << std::endl;
    ::close(log_fd);
    if (null_fd >= 0) {
      ::close(null_fd);
    }
    return nullptr;
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "ChildProcess::Start: fork: " << std::strerror(errno) << std::endl;
    ::close(log_fd);
    ::close(null_fd);
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    return nullptr;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);  // the test died before prctl took effect
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execve(exe.c_str(), argp.data(), envp.data());
    int e = errno;
    ssize_t ignored = ::write(err_pipe[1], &e, sizeof(e));
    (void)ignored;
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so a kill(-pid) right after Start works
  ::close(err_pipe[1]);
  ::close(log_fd);
  ::close(null_fd);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(err_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::cerr << "ChildProcess::Start: exec " << exe << ": " << std::strerror(child_errno)
              << std::endl;
    return nullptr;
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }
}

bool ChildProcess::Running() {
  if (reaped_) {
    return false;
  }
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    reaped_ = true;
    status_ = status;
    return false;
  }
  return true;
}

int ChildProcess::Stop(int sig, int64_t timeout_ms) {
  if (!Running()) {
    return status_;
  }
  ::kill(-pid_, sig);
  if (WaitFor([this] { return !Running(); }, timeout_ms, 10)) {
    return status_;
  }
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  status_ = status;
  return -1;
}

int ChildProcess::WaitExit(int64_t timeout_ms) {
  if (!WaitFor([this] { return !Running(); }, timeout_ms, 10)) {
    return -1;
  }
  return StatusToExitCode(status_);
}

std::string ChildProcess::ReadLog() const { return ReadFileOrEmpty(log_path_); }

int RunCommand(const std::vector<std::string>& argv, const std::string& log_path,
               int64_t timeout_ms, const std::map<std::string, std::string>& env) {
  auto proc = ChildProcess::Start(argv, log_path, env);
  if (proc == nullptr) {
    return -1;
  }
  int code = proc->WaitExit(timeout_ms);
  if (code < 0) {
    proc->Stop(SIGKILL, 1000);
  }
  return code;
}

}  // namespace sluice::testing
