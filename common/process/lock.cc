#include "common/process/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"
#include "common/layout/layout.h"

namespace rdf {
namespace {
std::string LockPath(const std::string& dir, const std::string& name) {
  return layout::LockFile(dir, name);
}
int ReadPid(int fd) {
  char buf[32] = {0};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  int pid = 0;
  absl::string_view s(buf, n > 0 ? n : 0);
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(s), &pid) ? pid : 0;
}
}  // namespace

absl::StatusOr<std::unique_ptr<ProcessLock>> ProcessLock::Acquire(
    const std::string& lock_dir, const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(lock_dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("create ", lock_dir));
  std::string path = LockPath(lock_dir, name);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int pid = ReadPid(fd);
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is already running as pid ", pid, " (lock ",
                     path, "); stop it first"));
  }
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int err = errno;
    close(fd);
    return ErrnoToStatus(err, absl::StrCat("write ", path));
  }
  return std::unique_ptr<ProcessLock>(new ProcessLock(fd, path));
}

ProcessLock::~ProcessLock() { close(fd_); }

int ProcessLock::HolderPid(const std::string& lock_dir,
                           const std::string& name) {
  std::string path = LockPath(lock_dir, name);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  int pid = 0;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) pid = ReadPid(fd);
  else flock(fd, LOCK_UN);
  close(fd);
  return pid;
}

}  // namespace rdf
