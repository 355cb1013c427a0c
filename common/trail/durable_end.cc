#include "common/trail/durable_end.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "common/base/boot_id.h"
#include "common/base/file_system.h"
#include "common/base/status_macros.h"
#include "common/layout/layout.h"

namespace rdf::trail {

// ---------------------------------------------------------------------------
// LocalEnd

void LocalEnd::Publish(const End& end) {
  absl::MutexLock l(&mu_);
  end_ = end;
  this_boot_ = true;
}

End LocalEnd::Get() {
  absl::MutexLock l(&mu_);
  return end_;
}

bool LocalEnd::PublishedThisBoot() {
  absl::MutexLock l(&mu_);
  return this_boot_;
}

void LocalEnd::SimulateReboot() {
  absl::MutexLock l(&mu_);
  this_boot_ = false;
}

void LocalEnd::WaitBeyond(uint64_t asn, absl::Duration timeout) {
  auto beyond = [this, asn]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return end_.asn > asn;
  };
  mu_.LockWhenWithTimeout(absl::Condition(&beyond), timeout);
  mu_.Unlock();
}

// ---------------------------------------------------------------------------
// SharedEnd
//
// The mapped page holds two slots, each under its own seqlock, and the index
// of the newest complete slot. The writer fills the slot the index does not
// name, then flips the index, so a writer killed in the middle of a Publish
// leaves the index naming a complete slot: readers never wait on a dead
// writer. A reader that finds the named slot odd or changing has raced two
// publishes; it reloads the index and tries again.
//
// All fields are accessed through std::atomic_ref: the page is shared with
// other processes, so the fields cannot be std::atomic objects themselves,
// but aligned 4- and 8-byte atomic accesses are address-free and lock-free.

namespace {

constexpr uint32_t kEndMagic = 0x444e4552;  // "REND"
constexpr uint32_t kEndVersion = 1;
constexpr size_t kMapSize = 4096;
constexpr size_t kBootIdBytes = 40;

// This boot's id (rdf::BootId), cut to the end file's field: the end file
// is never synced, so after a machine restart (or a test's "reboot") it may
// hold an older end than what was acknowledged, and must not be trusted.
const std::string& BootIdForEndFile() {
  static const std::string* const id = [] {
    const std::string& s = BootId();
    return new std::string(s.size() >= kBootIdBytes ? "" : s);
  }();
  return *id;
}

struct Slot {
  uint32_t seq;  // odd while the writer fills the slot
  uint32_t pad;
  uint64_t asn;
  uint64_t segment;
  uint64_t offset;
  int64_t time_us;
};

template <typename T>
std::atomic_ref<T> A(T& v) {
  return std::atomic_ref<T>(v);
}

long Futex(uint32_t* addr, int op, uint32_t val, const timespec* timeout) {
  // FUTEX_WAIT / FUTEX_WAKE, not the _PRIVATE variants: the word lives in a
  // MAP_SHARED file mapping and waiters are in other processes.
  return syscall(SYS_futex, addr, op, val, timeout, nullptr, 0);
}

}  // namespace

struct SharedEnd::Shared {
  uint32_t magic;
  uint32_t version;
  uint32_t futex;  // bumped after every Publish; FUTEX_WAIT target
  uint32_t index;  // newest complete slot, 0 or 1
  Slot slots[2];
  // Boot id of the last Publish (read by the writer only). Files made
  // before it existed hold zeros here: never this boot, never trusted.
  char boot_id[kBootIdBytes];
};
static_assert(sizeof(SharedEnd::Shared) <= kMapSize);

namespace {

using Shared = SharedEnd::Shared;

// Reads one slot; false when a concurrent Publish was filling it.
bool TryReadSlot(Slot& slot, End* out) {
  uint32_t s1 = A(slot.seq).load(std::memory_order_acquire);
  if (s1 & 1) return false;
  End e;
  e.asn = A(slot.asn).load(std::memory_order_relaxed);
  e.pos.segment = A(slot.segment).load(std::memory_order_relaxed);
  e.pos.offset = A(slot.offset).load(std::memory_order_relaxed);
  e.time_us = A(slot.time_us).load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (A(slot.seq).load(std::memory_order_relaxed) != s1) return false;
  *out = e;
  return true;
}

void WriteSlot(Slot& slot, const End& end) {
  uint32_t s = A(slot.seq).load(std::memory_order_relaxed);
  s += (s & 1);  // a writer killed mid-Publish left it odd
  A(slot.seq).store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  A(slot.asn).store(end.asn, std::memory_order_relaxed);
  A(slot.segment).store(end.pos.segment, std::memory_order_relaxed);
  A(slot.offset).store(end.pos.offset, std::memory_order_relaxed);
  A(slot.time_us).store(end.time_us, std::memory_order_relaxed);
  A(slot.seq).store(s + 2, std::memory_order_release);
}

absl::StatusOr<Shared*> Map(int fd, bool writable, const std::string& path) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = mmap(nullptr, kMapSize, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoToStatus(errno, absl::StrCat("mmap ", path));
  return static_cast<Shared*>(p);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedEnd>> SharedEnd::Create(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  absl::Status s;
  if (fstat(fd, &st) != 0) {
    s = ErrnoToStatus(errno, absl::StrCat("fstat ", path));
  } else if (st.st_size < static_cast<off_t>(kMapSize) &&
             ftruncate(fd, kMapSize) != 0) {
    s = ErrnoToStatus(errno, absl::StrCat("ftruncate ", path));
  }
  absl::StatusOr<Shared*> map =
      s.ok() ? Map(fd, /*writable=*/true, path) : absl::StatusOr<Shared*>(s);
  close(fd);  // the mapping keeps the file
  if (!map.ok()) return map.status();
  Shared* m = *map;
  if (A(m->magic).load() != kEndMagic || m->version != kEndVersion) {
    // New (or foreign) file: start from "nothing durable".
    *m = Shared{};
    m->version = kEndVersion;
    A(m->magic).store(kEndMagic, std::memory_order_release);
  }
  return std::unique_ptr<SharedEnd>(new SharedEnd(m, /*writable=*/true));
}

absl::StatusOr<std::unique_ptr<SharedEnd>> SharedEnd::OpenReadOnly(
    const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  struct stat st;
  absl::Status s;
  if (fstat(fd, &st) != 0) {
    s = ErrnoToStatus(errno, absl::StrCat("fstat ", path));
  } else if (st.st_size < static_cast<off_t>(kMapSize)) {
    // Mapping past the end would fault on access; the writer is still
    // creating the file.
    s = absl::NotFoundError(absl::StrCat(path, ": not yet initialized"));
  }
  absl::StatusOr<Shared*> map =
      s.ok() ? Map(fd, /*writable=*/false, path) : absl::StatusOr<Shared*>(s);
  close(fd);
  if (!map.ok()) return map.status();
  if (A((*map)->magic).load(std::memory_order_acquire) != kEndMagic) {
    munmap(*map, kMapSize);
    return absl::NotFoundError(absl::StrCat(path, ": not yet initialized"));
  }
  return std::unique_ptr<SharedEnd>(new SharedEnd(*map, /*writable=*/false));
}

SharedEnd::~SharedEnd() { munmap(map_, kMapSize); }

void SharedEnd::Publish(const End& end) {
  if (!writable_) return;  // REQUIRES violated: a read-only mapping would fault
  uint32_t next = 1 - (A(map_->index).load(std::memory_order_relaxed) & 1);
  WriteSlot(map_->slots[next], end);
  A(map_->index).store(next, std::memory_order_release);
  A(map_->futex).fetch_add(1, std::memory_order_seq_cst);
  Futex(&map_->futex, FUTEX_WAKE, INT_MAX, nullptr);
  // After the end: see PublishedThisBoot.
  const std::string& boot = BootIdForEndFile();
  if (!boot.empty() && std::strncmp(map_->boot_id, boot.c_str(), kBootIdBytes) != 0) {
    char id[kBootIdBytes] = {};
    std::memcpy(id, boot.data(), boot.size());
    std::memcpy(map_->boot_id, id, kBootIdBytes);
  }
}

bool SharedEnd::PublishedThisBoot() {
  const std::string& boot = BootIdForEndFile();
  return !boot.empty() && std::strncmp(map_->boot_id, boot.c_str(), kBootIdBytes) == 0;
}

End SharedEnd::Get() {
  End e;
  for (;;) {
    uint32_t i = A(map_->index).load(std::memory_order_acquire) & 1;
    if (TryReadSlot(map_->slots[i], &e)) return e;
  }
}

void SharedEnd::WaitBeyond(uint64_t asn, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    // Load the word before checking the ASN: a Publish after the check bumps
    // the word, and FUTEX_WAIT then returns at once.
    uint32_t word = A(map_->futex).load(std::memory_order_seq_cst);
    if (Get().asn > asn) return;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    timespec ts = absl::ToTimespec(left);
    const timespec* tsp = left == absl::InfiniteDuration() ? nullptr : &ts;
    Futex(&map_->futex, FUTEX_WAIT, word, tsp);
  }
}

std::string EndFilePath(const std::string& dir, const std::string& trail) {
  return layout::TrailEndFile(dir, trail);
}

}  // namespace rdf::trail
