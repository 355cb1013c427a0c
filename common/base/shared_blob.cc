#include "common/base/shared_blob.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace rdf {

struct SharedBlob::Layout {
  uint32_t magic;
  uint32_t index;      // newest complete slot (0 or 1)
  uint32_t futex;      // bumped after each Write
  uint32_t pad;
  uint64_t generation;
  struct Slot {
    uint32_t seq;      // odd while being written
    uint32_t len;
    char data[SharedBlob::kCapacity];
  } slots[2];
};

namespace {
constexpr uint32_t kMagic = 0x424c4f42;  // "BLOB"
template <typename T>
std::atomic_ref<T> A(T& v) { return std::atomic_ref<T>(v); }

absl::StatusOr<SharedBlob::Layout*> Map(const std::string& path, bool writable) {
  int fd = open(path.c_str(), writable ? (O_RDWR | O_CREAT | O_CLOEXEC) : (O_RDONLY | O_CLOEXEC), 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  if (writable && ftruncate(fd, sizeof(SharedBlob::Layout)) != 0) {
    int err = errno;
    close(fd);
    return ErrnoToStatus(err, absl::StrCat("size ", path));
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size < static_cast<off_t>(sizeof(SharedBlob::Layout))) {
    close(fd);
    return absl::UnavailableError(absl::StrCat(path, " is not initialized yet"));
  }
  void* p = mmap(nullptr, sizeof(SharedBlob::Layout), writable ? PROT_READ | PROT_WRITE : PROT_READ,
                 MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) return ErrnoToStatus(err, absl::StrCat("mmap ", path));
  return static_cast<SharedBlob::Layout*>(p);
}
}  // namespace

absl::StatusOr<std::unique_ptr<SharedBlob>> SharedBlob::Create(const std::string& path) {
  RDF_ASSIGN_OR_RETURN(Layout * m, Map(path, true));
  if (A(m->magic).load() != kMagic) {
    std::memset(static_cast<void*>(m), 0, sizeof(Layout));
    A(m->magic).store(kMagic);
  }
  return std::unique_ptr<SharedBlob>(new SharedBlob(m, true));
}

absl::StatusOr<std::unique_ptr<SharedBlob>> SharedBlob::OpenReadOnly(const std::string& path) {
  RDF_ASSIGN_OR_RETURN(Layout * m, Map(path, false));
  return std::unique_ptr<SharedBlob>(new SharedBlob(m, false));
}

SharedBlob::~SharedBlob() { munmap(map_, sizeof(Layout)); }

absl::Status SharedBlob::Write(absl::string_view data) {
  if (!writable_) return absl::FailedPreconditionError("shared blob opened read-only");
  if (data.size() > kCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("value of ", data.size(), " bytes exceeds ", kCapacity));
  }
  uint32_t next = 1 - A(map_->index).load(std::memory_order_acquire);
  Layout::Slot& s = map_->slots[next];
  A(s.seq).fetch_add(1, std::memory_order_acq_rel);  // odd: writing
  std::memcpy(s.data, data.data(), data.size());
  A(s.len).store(static_cast<uint32_t>(data.size()), std::memory_order_relaxed);
  A(s.seq).fetch_add(1, std::memory_order_release);  // even: complete
  A(map_->index).store(next, std::memory_order_release);
  A(map_->generation).fetch_add(1, std::memory_order_acq_rel);
  A(map_->futex).fetch_add(1, std::memory_order_acq_rel);
  syscall(SYS_futex, &map_->futex, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  return absl::OkStatus();
}

std::string SharedBlob::Read(uint64_t* generation) const {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint64_t gen = A(map_->generation).load(std::memory_order_acquire);
    uint32_t i = A(map_->index).load(std::memory_order_acquire);
    Layout::Slot& s = map_->slots[i & 1];
    uint32_t before = A(s.seq).load(std::memory_order_acquire);
    if (before & 1) continue;
    uint32_t len = std::min<uint32_t>(A(s.len).load(std::memory_order_relaxed), kCapacity);
    std::string out(s.data, len);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (A(s.seq).load(std::memory_order_relaxed) != before) continue;
    if (generation != nullptr) *generation = gen;
    return out;
  }
  if (generation != nullptr) *generation = 0;
  return "";
}

void SharedBlob::WaitChange(uint64_t known, absl::Duration timeout) const {
  uint32_t word = A(map_->futex).load(std::memory_order_acquire);
  if (A(map_->generation).load(std::memory_order_acquire) != known) return;
  timespec ts = absl::ToTimespec(timeout);
  syscall(SYS_futex, &map_->futex, FUTEX_WAIT, word, &ts, nullptr, 0);
}

}  // namespace rdf
