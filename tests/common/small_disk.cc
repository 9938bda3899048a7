#include "tests/common/small_disk.h"

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace sluice::testing {

std::unique_ptr<SmallDisk> SmallDisk::Mount(const std::string& dir, int64_t bytes,
                                            std::string* why) {
  if (geteuid() != 0) {
    *why = "mounting a small tmpfs needs root (CI runs as root)";
    return nullptr;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    *why = "mount tmpfs on " + dir + ": " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<SmallDisk>(new SmallDisk(dir));
}

SmallDisk::~SmallDisk() { ::umount2(path_.c_str(), MNT_DETACH); }

int64_t SmallDisk::FreeBytes() const {
  struct statvfs fs {};
  if (::statvfs(path_.c_str(), &fs) != 0) {
    return -1;
  }
  return static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
}

bool SmallDisk::Fill(const std::string& name, int64_t bytes) const {
  std::ofstream f(Sub(name), std::ios::binary | std::ios::trunc);
  const std::string block(64 << 10, 'f');
  for (int64_t left = bytes; left > 0 && f; left -= static_cast<int64_t>(block.size())) {
    f.write(block.data(), static_cast<std::streamsize>(std::min<int64_t>(left, block.size())));
  }
  f.flush();
  return static_cast<bool>(f);
}

}  // namespace sluice::testing
