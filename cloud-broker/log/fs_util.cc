#include "cloud-broker/log/fs_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sluice::broker {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return ErrnoStatus(what, path, errno);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return ".";
  }
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return ErrnoStatus("mkdir", path, ec.value());
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& path, FileOps& ops) {
  Result<int> opened = OpenFile(ops, path, O_RDONLY | O_DIRECTORY);
  if (!opened.ok()) {
    return opened.status();
  }
  const int fd = *opened;
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    return Errno("fsync dir", path);
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const std::string& contents, FileOps& ops) {
  std::string tmp = path + ".tmp";
  Result<int> opened = OpenFile(ops, tmp, O_WRONLY | O_CREAT | O_TRUNC);
  if (!opened.ok()) {
    return opened.status();
  }
  const int fd = *opened;
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      Status st = Errno("write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status st = Errno("fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = Errno("rename", tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(DirName(path), ops);
}

Result<std::string> ReadWholeFile(const std::string& path, FileOps& ops) {
  // Not an ifstream: it hides errno, and "cannot open" must not read as "no such topic" when
  // the real cause is EMFILE.
  Result<int> opened = OpenFile(ops, path, O_RDONLY);
  if (!opened.ok()) {
    return opened.status();
  }
  const int fd = *opened;
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      Status st = Errno("read", path);
      ::close(fd);
      return st;
    }
    if (n == 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) {
    return Status::IOError("remove " + path + ": " + ec.message());
  }
  return Status::Ok();
}

Status RemoveDirOf(const std::string& dir, const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Errno("unlink", path);
    }
  }
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) {
    return Status::Ok();
  }
  if (errno != ENOTEMPTY && errno != EEXIST) {
    return Errno("rmdir", dir);
  }
  return RemoveAll(dir);
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return ec && ec.value() != ENOENT ? ErrnoStatus("stat", dir, ec.value())
                                      : Status::NotFound("no directory " + dir);
  }
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  if (ec) {
    return ErrnoStatus("list", dir, ec.value());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace sluice::broker
