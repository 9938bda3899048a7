// A real, small filesystem for disk-full tests: a tmpfs of a fixed size mounted on a fresh
// directory, unmounted on destruction. Mounting needs root (CI runs as root); a test skips,
// saying why, where it cannot mount.
// Thread-safety: not thread-safe; use from the test's main thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace sluice::testing {

class SmallDisk {
 public:
  // Mounts a tmpfs of `bytes` on `dir` (created). nullptr with *why set if it cannot.
  static std::unique_ptr<SmallDisk> Mount(const std::string& dir, int64_t bytes,
                                          std::string* why);
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }
  // Bytes an unprivileged writer may still use (statvfs f_bavail).
  int64_t FreeBytes() const;
  // Takes space with a file of `bytes` at Sub(name); false if it could not be written whole.
  bool Fill(const std::string& name, int64_t bytes) const;

 private:
  explicit SmallDisk(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace sluice::testing
