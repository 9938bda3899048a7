#include "cloud-broker/auth/producer_owners.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace sluice::broker {

Result<std::unique_ptr<ProducerOwners>> ProducerOwners::Open(const std::string& data_dir,
                                                             int64_t max_ids_per_principal) {
  const std::string path = data_dir + "/producer-owners";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Status::IOError("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  std::unique_ptr<ProducerOwners> owners(new ProducerOwners(fd, max_ids_per_principal));
  size_t start = 0;
  size_t complete = 0;  // bytes up to the last whole line
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      break;  // torn tail of a claim whose fdatasync never returned: not acknowledged
    }
    const std::string line = text.substr(start, nl - start);
    const size_t sp = line.find(' ');
    if (sp != std::string::npos && sp > 0) {
      const int64_t id = std::strtoll(line.c_str(), nullptr, 10);
      const std::string who = line.substr(sp + 1);
      if (owners->owner_.emplace(id, who).second) {
        ++owners->count_[who];
      }
    }
    start = nl + 1;
    complete = start;
  }
  if (complete != text.size() && ftruncate(fd, static_cast<off_t>(complete)) != 0) {
    return Status::IOError("cannot cut the torn tail of " + path + ": " + std::strerror(errno));
  }
  lseek(fd, 0, SEEK_END);
  return owners;
}

ProducerOwners::~ProducerOwners() { close(fd_); }

Status ProducerOwners::Claim(int64_t producer_id, const std::string& principal) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = owner_.find(producer_id);
  if (it != owner_.end()) {
    if (it->second == principal) {
      return Status::Ok();
    }
    return Status::PermissionDenied("producer_id " + std::to_string(producer_id) +
                                    " belongs to another principal");
  }
  if (count_[principal] >= max_ids_) {
    return Status::ResourceExhausted("principal " + principal + " owns " +
                                     std::to_string(max_ids_) +
                                     " producer ids already (producers.max_ids_per_principal)");
  }
  const std::string line = std::to_string(producer_id) + " " + principal + "\n";
  if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
      fdatasync(fd_) != 0) {
    return Status::IOError(std::string("cannot record a producer id claim: ") +
                           std::strerror(errno));
  }
  owner_.emplace(producer_id, principal);
  ++count_[principal];
  return Status::Ok();
}

std::string ProducerOwners::OwnerOf(int64_t producer_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = owner_.find(producer_id);
  return it == owner_.end() ? "" : it->second;
}

}  // namespace sluice::broker
