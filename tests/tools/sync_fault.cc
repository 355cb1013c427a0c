// librdf-sync-fault.so: a file-system seam for the fault campaign and the
// process tests (docs/chaos.md, fault "sync_eio"). Loaded with LD_PRELOAD into
// a process (and so into every child that inherits its environment), it makes
// fdatasync, fsync and msync(MS_SYNC) fail with EIO, without syncing anything,
// for as long as the file named by RDF_SYNC_FAULT_FILE exists. Without that
// variable, or while the file is absent, every call goes to the C library.
//
// This is what a disk that reports a write error does to its callers
// (fsyncgate): the process must not take anything it wrote since its last
// good sync as durable. It is weaker than a real failed writeback in one way:
// the pages stay dirty in the page cache, so a later good sync still makes
// them durable (Linux marks them clean and may drop them); a power cut while
// the file exists does lose them.
//
// Each failed call is noted, at most 10,000 per process, in
// "$RDF_SYNC_FAULT_FILE.log": "<pid> <call> <path of the descriptor>".
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

const char* FlagPath() {
  static const char* const path = std::getenv("RDF_SYNC_FAULT_FILE");
  return path != nullptr && path[0] != '\0' ? path : nullptr;
}

bool Armed() {
  const char* path = FlagPath();
  struct stat st;
  return path != nullptr && stat(path, &st) == 0;
}

std::atomic<int> notes{0};

void Note(const char* call, int fd) {
  if (notes.fetch_add(1) >= 10000) return;
  char link[64], target[512] = "?";
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = fd >= 0 ? readlink(link, target, sizeof(target) - 1) : -1;
  if (n > 0) target[n] = '\0';
  char log[1024], line[768];
  std::snprintf(log, sizeof(log), "%s.log", FlagPath());
  int len = std::snprintf(line, sizeof(line), "%d %s %s\n", static_cast<int>(getpid()), call,
                          target);
  int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (out < 0) return;
  if (write(out, line, static_cast<size_t>(len)) < 0) {
    // Only a note: nothing to do.
  }
  close(out);
}

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

int Fail(const char* call, int fd) {
  Note(call, fd);
  errno = EIO;
  return -1;
}

}  // namespace

extern "C" {

int fdatasync(int fd) {
  if (Armed()) return Fail("fdatasync", fd);
  static const auto next = Next<int (*)(int)>("fdatasync");
  return next(fd);
}

int fsync(int fd) {
  if (Armed()) return Fail("fsync", fd);
  static const auto next = Next<int (*)(int)>("fsync");
  return next(fd);
}

int msync(void* addr, size_t length, int flags) {
  if ((flags & MS_SYNC) != 0 && Armed()) return Fail("msync", -1);
  static const auto next = Next<int (*)(void*, size_t, int)>("msync");
  return next(addr, length, flags);
}

}  // extern "C"
