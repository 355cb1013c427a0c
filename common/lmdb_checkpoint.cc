#include "common/lmdb_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/crc32c.h"
#include "common/file_system.h"
#include "common/status_macros.h"
#include "common/trail_format.h"

namespace rdf::lmdb {
namespace {

constexpr uint32_t kRecordVersion = 1;

// LMDB 0.9's meta page (lmdb.h does not export it): a 16-byte page header
// (mp_pgno first), then MDB_meta: mm_magic, mm_version, mm_address,
// mm_mapsize, mm_dbs[2] (48 bytes each), mm_last_pg, mm_txnid. The magic and
// version are checked on every read, so another layout is refused, never
// misread.
constexpr size_t kMetaOffset = 16;
constexpr uint32_t kMetaMagic = 0xBEEFC0DE;
constexpr uint32_t kMetaVersion = 1;
constexpr size_t kTxnidOffset = kMetaOffset + 128;

template <typename T>
T Load(const std::string& page, size_t offset) {
  T v;
  std::memcpy(&v, page.data() + offset, sizeof v);
  return v;
}

// The transaction id a meta page names, or an error when it is no LMDB 0.9
// meta page.
absl::StatusOr<uint64_t> MetaTxnid(const std::string& page, const std::string& path) {
  if (page.size() < kTxnidOffset + 8 || Load<uint32_t>(page, kMetaOffset) != kMetaMagic ||
      Load<uint32_t>(page, kMetaOffset + 4) != kMetaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": not an LMDB 0.9 meta page (magic or version differ)"));
  }
  return Load<uint64_t>(page, kTxnidOffset);
}

absl::StatusOr<std::string> ReadPage(int fd, size_t page_size, uint32_t slot,
                                     const std::string& path) {
  std::string page(page_size, '\0');
  ssize_t n = pread(fd, page.data(), page_size, static_cast<off_t>(slot * page_size));
  if (n < 0) return ErrnoToStatus(errno, absl::StrCat("read meta page ", slot, " of ", path));
  if (static_cast<size_t>(n) != page_size) {
    return absl::DataLossError(absl::StrCat(path, ": short meta page ", slot));
  }
  return page;
}

std::string DataPath(const std::string& dir) { return JoinPath(dir, "data.mdb"); }

}  // namespace

std::string CheckpointPath(const std::string& dir) { return JoinPath(dir, "checkpoint"); }

std::string EncodeCheckpointSlot(const proto::LmdbCheckpoint& record) {
  const std::string payload = record.SerializeAsString();
  const uint32_t fields[2] = {static_cast<uint32_t>(payload.size()),
                              crc32c::Mask(crc32c::Value(payload.data(), payload.size()))};
  std::string slot;
  for (uint32_t v : fields) {
    for (int i = 0; i < 4; ++i) slot.push_back(static_cast<char>(v >> (8 * i)));
  }
  return slot + payload;
}

std::string BootId() {
  // Test hook (process tests only): a machine restart, as the updater sees it.
  if (const char* fake = std::getenv("RDF_TEST_BOOT_ID")) return fake;
  // A /proc file reports size 0: read it as a stream.
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return std::string(absl::StripAsciiWhitespace(id));
}

namespace {

// The record in slot `slot` of the file's bytes; nullopt when the slot holds
// none (never written, torn, or another version).
std::optional<proto::LmdbCheckpoint> ParseSlot(const std::string& file, uint32_t slot) {
  const size_t at = slot * kCheckpointSlotBytes;
  if (file.size() < at + 8) return std::nullopt;
  const uint32_t len = trail::DecodeFixed32(file.data() + at);
  const uint32_t crc = trail::DecodeFixed32(file.data() + at + 4);
  if (len == 0 || len > kCheckpointSlotBytes - 8 || file.size() < at + 8 + len) {
    return std::nullopt;
  }
  const char* payload = file.data() + at + 8;
  if (crc32c::Unmask(crc) != crc32c::Value(payload, len)) return std::nullopt;
  proto::LmdbCheckpoint r;
  if (!r.ParseFromArray(payload, static_cast<int>(len)) || r.version() != kRecordVersion) {
    return std::nullopt;
  }
  return r;
}

// The slot holding the current record (highest sequence), or -1.
int CurrentSlot(const std::optional<proto::LmdbCheckpoint> (&slots)[2]) {
  if (!slots[0] && !slots[1]) return -1;
  if (!slots[1]) return 0;
  if (!slots[0]) return 1;
  return slots[1]->sequence() > slots[0]->sequence() ? 1 : 0;
}

}  // namespace

absl::StatusOr<std::optional<proto::LmdbCheckpoint>> ReadCheckpoint(const std::string& dir) {
  const std::string path = CheckpointPath(dir);
  if (!FileSystem::Default()->Exists(path)) return std::optional<proto::LmdbCheckpoint>();
  RDF_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(FileSystem::Default(), path));
  std::optional<proto::LmdbCheckpoint> slots[2] = {ParseSlot(bytes, 0), ParseSlot(bytes, 1)};
  const int current = CurrentSlot(slots);
  if (current < 0) {
    return absl::DataLossError(absl::StrCat(path, ": neither slot holds a version ",
                                            kRecordVersion, " checkpoint record"));
  }
  return std::move(slots[current]);
}

absl::StatusOr<Recovery> RecoverToCheckpoint(const std::string& dir) {
  Recovery out;
  RDF_ASSIGN_OR_RETURN(std::optional<proto::LmdbCheckpoint> rec, ReadCheckpoint(dir));
  // No record, a clean stop, or the same boot (the page cache survived, so
  // the newest commit is whole): LMDB's newest meta page is right. (With no
  // boot id known, the checkpoint is restored: always safe, as nothing wrote
  // to the volume since its writer died; only redone work is lost.)
  if (!rec.has_value() || rec->clean()) return out;
  if (!rec->boot_id().empty() && rec->boot_id() == BootId()) return out;
  const std::string path = DataPath(dir);
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || st.st_dev != rec->device() || st.st_ino != rec->inode()) {
    return out;  // the record belongs to a data.mdb that was replaced since
  }
  const size_t psize = rec->page_size();
  const uint32_t slot = rec->meta_slot();
  if (slot > 1 || rec->meta_page().size() != psize) {
    return absl::DataLossError(absl::StrCat(CheckpointPath(dir), ": malformed meta page"));
  }
  RDF_ASSIGN_OR_RETURN(uint64_t saved, MetaTxnid(rec->meta_page(), CheckpointPath(dir)));
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  absl::Cleanup close_fd = [fd] { close(fd); };
  uint64_t newest = 0;
  for (uint32_t s = 0; s < 2; ++s) {
    RDF_ASSIGN_OR_RETURN(std::string page, ReadPage(fd, psize, s, path));
    absl::StatusOr<uint64_t> t = MetaTxnid(page, path);
    if (t.ok()) newest = std::max(newest, *t);
  }
  if (newest < saved) {
    return absl::DataLossError(absl::StrCat(
        path, " holds no transaction as new as its durable checkpoint ", saved, " (newest ",
        newest, "): the disk lost synced data; initialize this volume again"));
  }
  // The saved page into its own slot, and into the other with that slot's
  // page number, so both name the checkpoint.
  for (uint32_t s = 0; s < 2; ++s) {
    std::string page = rec->meta_page();
    const uint64_t pgno = s;
    if (s != slot) std::memcpy(page.data(), &pgno, sizeof pgno);
    if (pwrite(fd, page.data(), psize, static_cast<off_t>(s * psize)) !=
        static_cast<ssize_t>(psize)) {
      return ErrnoToStatus(errno, absl::StrCat("restore meta page ", s, " of ", path));
    }
  }
  if (fdatasync(fd) != 0) return ErrnoToStatus(errno, absl::StrCat("fdatasync ", path));
  out.restored = true;
  out.record = *std::move(rec);
  return out;
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Start(Env* env,
                                                                  absl::Duration interval,
                                                                  const CheckpointState& now) {
  std::unique_ptr<Checkpointer> c(new Checkpointer(env, interval));
  c->boot_id_ = BootId();
  struct stat st;
  const std::string path = DataPath(env->dir());
  if (stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  c->device_ = st.st_dev;
  c->inode_ = st.st_ino;
  RDF_RETURN_IF_ERROR(c->OpenRecordFile());
  RDF_RETURN_IF_ERROR(c->SyncNow(now, false));
  c->thread_ = std::thread([p = c.get()] { p->Background(); });
  return c;
}

absl::Status Checkpointer::OpenRecordFile() {
  const std::string path = CheckpointPath(env_->dir());
  FileSystem* fs = FileSystem::Default();
  std::string bytes;
  if (fs->Exists(path)) {
    RDF_ASSIGN_OR_RETURN(bytes, ReadFileToString(fs, path));
  }
  if (bytes.size() != 2 * kCheckpointSlotBytes) {
    // Made once, whole, so that later records overwrite in place.
    bytes.assign(2 * kCheckpointSlotBytes, '\0');
    RDF_RETURN_IF_ERROR(WriteFileAtomically(fs, path, bytes));
  }
  std::optional<proto::LmdbCheckpoint> slots[2] = {ParseSlot(bytes, 0), ParseSlot(bytes, 1)};
  const int current = CurrentSlot(slots);
  next_slot_ = current == 0 ? 1 : 0;
  sequence_ = current < 0 ? 0 : slots[current]->sequence();
  record_fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (record_fd_ < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  return absl::OkStatus();
}

Checkpointer::~Checkpointer() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (record_fd_ >= 0) close(record_fd_);
  absl::MutexLock l(&mu_);
  if (job_.has_value()) mdb_txn_abort(job_->pin);
  if (pin_ != nullptr) mdb_txn_abort(pin_);
}

absl::StatusOr<Checkpointer::Job> Checkpointer::Prepare(const CheckpointState& now, bool clean) {
  Job job;
  int rc = mdb_txn_begin(env_->env(), nullptr, MDB_RDONLY, &job.pin);
  if (rc != 0) return MdbError(rc, "checkpoint: pin the newest commit");
  absl::Cleanup unpin = [&job] { mdb_txn_abort(job.pin); };
  const uint64_t txnid = mdb_txn_id(job.pin);
  MDB_stat stat;
  mdb_env_stat(env_->env(), &stat);
  int fd = -1;
  rc = mdb_env_get_fd(env_->env(), &fd);
  if (rc != 0) return MdbError(rc, "checkpoint: mdb_env_get_fd");
  const std::string path = DataPath(env_->dir());
  proto::LmdbCheckpoint& r = job.record;
  for (uint32_t s = 0; s < 2 && r.meta_page().empty(); ++s) {
    RDF_ASSIGN_OR_RETURN(std::string page, ReadPage(fd, stat.ms_psize, s, path));
    RDF_ASSIGN_OR_RETURN(uint64_t t, MetaTxnid(page, path));
    if (t != txnid) continue;
    r.set_meta_page(std::move(page));
    r.set_meta_slot(s);
  }
  if (r.meta_page().empty()) {
    return absl::InternalError(
        absl::StrCat(path, ": no meta page names the newest transaction ", txnid));
  }
  r.set_version(kRecordVersion);
  r.set_txnid(txnid);
  r.set_page_size(stat.ms_psize);
  r.set_boot_id(boot_id_);
  r.set_device(device_);
  r.set_inode(inode_);
  r.set_clean(clean);
  r.set_time_us(absl::ToUnixMicros(absl::Now()));
  r.set_restart_segment(now.restart_segment);
  r.set_restart_offset(now.restart_offset);
  r.set_applied_asn(now.applied_asn);
  std::move(unpin).Cancel();
  last_pinned_txnid_ = txnid;
  last_begun_ = absl::Now();
  return job;
}

absl::Status Checkpointer::Persist(Job job) {
  int fd = -1;
  int rc = mdb_env_get_fd(env_->env(), &fd);
  absl::Status s = rc == 0 ? absl::OkStatus() : MdbError(rc, "checkpoint: mdb_env_get_fd");
  if (s.ok() && fdatasync(fd) != 0) {
    s = ErrnoToStatus(errno, absl::StrCat("checkpoint: fdatasync ", DataPath(env_->dir())));
  }
  if (s.ok()) {
    job.record.set_sequence(sequence_ + 1);
    const std::string slot = EncodeCheckpointSlot(job.record);
    const std::string path = CheckpointPath(env_->dir());
    if (slot.size() > kCheckpointSlotBytes) {
      s = absl::InternalError(absl::StrCat(path, ": record of ", slot.size(),
                                           " bytes exceeds its slot"));
    } else if (pwrite(record_fd_, slot.data(), slot.size(),
                      static_cast<off_t>(next_slot_ * kCheckpointSlotBytes)) !=
               static_cast<ssize_t>(slot.size())) {
      s = ErrnoToStatus(errno, absl::StrCat("checkpoint: write ", path));
    } else if (fdatasync(record_fd_) != 0) {
      s = ErrnoToStatus(errno, absl::StrCat("checkpoint: fdatasync ", path));
    } else {
      ++sequence_;
      next_slot_ ^= 1;
    }
  }
  MDB_txn* release = job.pin;
  {
    absl::MutexLock l(&mu_);
    if (s.ok()) {
      std::swap(release, pin_);  // the older checkpoint's pages may be reused now
      ++checkpoints_;
      durable_txnid_ = job.record.txnid();
    }
  }
  if (release != nullptr) mdb_txn_abort(release);
  return s;
}

void Checkpointer::Background() {
  for (;;) {
    std::optional<Job> job;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](Checkpointer* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
            return c->job_.has_value() || c->stopping_;
          },
          this));
      if (!job_.has_value()) return;  // stopping, nothing queued
      job = std::move(job_);
      job_.reset();
    }
    absl::Status s = Persist(*std::move(job));
    absl::MutexLock l(&mu_);
    if (!s.ok() && error_.ok()) error_ = s;
    running_ = false;
  }
}

absl::Status Checkpointer::AfterCommit(const CheckpointState& now) {
  {
    absl::MutexLock l(&mu_);
    if (!error_.ok()) return std::exchange(error_, absl::OkStatus());
    if (running_) return absl::OkStatus();
  }
  if (absl::Now() - last_begun_ < interval_) return absl::OkStatus();
  MDB_envinfo info;
  mdb_env_info(env_->env(), &info);
  if (info.me_last_txnid == last_pinned_txnid_) return absl::OkStatus();  // nothing new
  RDF_ASSIGN_OR_RETURN(Job job, Prepare(now, false));
  absl::MutexLock l(&mu_);
  job_ = std::move(job);
  running_ = true;
  return absl::OkStatus();
}

absl::Status Checkpointer::SyncNow(const CheckpointState& now, bool clean) {
  {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](Checkpointer* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) { return !c->running_; },
        this));
    error_ = absl::OkStatus();  // superseded by this checkpoint
  }
  RDF_ASSIGN_OR_RETURN(Job job, Prepare(now, clean));
  return Persist(std::move(job));
}

absl::Status Checkpointer::ReleaseForGrow(const CheckpointState& now) {
  RDF_RETURN_IF_ERROR(SyncNow(now, false));
  absl::MutexLock l(&mu_);
  if (pin_ != nullptr) mdb_txn_abort(pin_);
  pin_ = nullptr;
  return absl::OkStatus();
}

absl::Status Checkpointer::Repin() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_->env(), nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return MdbError(rc, "checkpoint: pin after growing the map");
  absl::MutexLock l(&mu_);
  if (pin_ != nullptr) mdb_txn_abort(pin_);
  pin_ = txn;
  return absl::OkStatus();
}

uint64_t Checkpointer::checkpoints() const {
  absl::MutexLock l(&mu_);
  return checkpoints_;
}

uint64_t Checkpointer::durable_txnid() const {
  absl::MutexLock l(&mu_);
  return durable_txnid_;
}

}  // namespace rdf::lmdb
