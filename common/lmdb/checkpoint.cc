#include "common/lmdb/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/boot_id.h"
#include "common/base/crc32c.h"
#include "common/base/file_system.h"
#include "common/base/status_macros.h"
#include "common/base/test_point.h"
#include "common/layout/layout.h"
#include "common/lmdb/meta.h"
#include "common/trail/format.h"

namespace rdf::lmdb {
namespace {

constexpr uint32_t kRecordVersion = 1;

// The meta page layout is in common/lmdb/meta.h.
constexpr size_t kCopyChunkBytes = 1 << 20;
// The pace at which a copy is written back (then one fdatasync).
constexpr double kCopyBytesPerSecond = 32 << 20;

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

std::string DataPath(const std::string& dir) { return layout::VolumeDataFile(dir); }

// `page`, the meta page of slot `from`, as it must read in slot `to` (the
// page header starts with the page number).
std::string MetaPageFor(std::string page, uint32_t to) {
  const uint64_t pgno = to;
  std::memcpy(page.data(), &pgno, sizeof pgno);
  return page;
}

absl::Status WriteAll(int fd, const char* data, size_t n, off_t at, const std::string& path) {
  while (n > 0) {
    ssize_t w = pwrite(fd, data, n, at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return ErrnoToStatus(w < 0 ? errno : EIO, absl::StrCat("write ", path));
    data += w;
    n -= static_cast<size_t>(w);
    at += w;
  }
  return absl::OkStatus();
}

absl::Status ReadAll(int fd, char* data, size_t n, off_t at, const std::string& path) {
  while (n > 0) {
    ssize_t r = pread(fd, data, n, at);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoToStatus(errno, absl::StrCat("read ", path));
    if (r == 0) return absl::DataLossError(absl::StrCat(path, ": ends early"));
    data += r;
    n -= static_cast<size_t>(r);
    at += r;
  }
  return absl::OkStatus();
}

// Copy mode, after a system crash: the record's copy written back over
// data.mdb (whose pages past the copy's last one LMDB never reads).
absl::Status RestoreCopy(const std::string& dir, const proto::LmdbCheckpoint& rec) {
  const std::string from = CheckpointCopyPath(dir, rec.copy_slot());
  const std::string to = DataPath(dir);
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return ErrnoToStatus(errno, absl::StrCat("open the checkpoint copy ", from,
                                             " (initialize this volume again if it is lost)"));
  }
  absl::Cleanup close_in = [in] { close(in); };
  struct stat st;
  if (fstat(in, &st) != 0) return ErrnoToStatus(errno, absl::StrCat("stat ", from));
  if (static_cast<uint64_t>(st.st_size) != rec.copy_bytes()) {
    return absl::DataLossError(absl::StrCat(from, " holds ", st.st_size, " bytes, its record says ",
                                            rec.copy_bytes(),
                                            ": the checkpoint copy is damaged; initialize "
                                            "this volume again"));
  }
  // The whole copy is checked before anything is written over data.mdb.
  std::string buf(kCopyChunkBytes, '\0');
  uint32_t crc = 0;
  for (uint64_t at = 0; at < rec.copy_bytes(); at += kCopyChunkBytes) {
    const size_t n = std::min<uint64_t>(kCopyChunkBytes, rec.copy_bytes() - at);
    RDF_RETURN_IF_ERROR(ReadAll(in, buf.data(), n, static_cast<off_t>(at), from));
    crc = crc32c::Extend(crc, buf.data(), n);
  }
  if (crc32c::Mask(crc) != rec.copy_crc32c()) {
    return absl::DataLossError(absl::StrCat(
        from, ": CRC32C differs from its record: the checkpoint copy is damaged; "
              "initialize this volume again"));
  }
  int out = open(to.c_str(), O_RDWR | O_CLOEXEC);
  if (out < 0) return ErrnoToStatus(errno, absl::StrCat("open ", to));
  absl::Cleanup close_out = [out] { close(out); };
  for (uint64_t at = 0; at < rec.copy_bytes(); at += kCopyChunkBytes) {
    const size_t n = std::min<uint64_t>(kCopyChunkBytes, rec.copy_bytes() - at);
    RDF_RETURN_IF_ERROR(ReadAll(in, buf.data(), n, static_cast<off_t>(at), from));
    RDF_RETURN_IF_ERROR(WriteAll(out, buf.data(), n, static_cast<off_t>(at), to));
  }
  if (fdatasync(out) != 0) return ErrnoToStatus(errno, absl::StrCat("fdatasync ", to));
  return absl::OkStatus();
}

}  // namespace

std::string CheckpointCopyPath(const std::string& dir, uint32_t slot) {
  return layout::CheckpointCopyFile(dir, slot);
}

std::string CheckpointPath(const std::string& dir) { return layout::CheckpointFile(dir); }

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

// Whether the file is as Checkpointer::OpenRecordFile made it, whole and
// zeroed, with at most its first record (slot 0) begun: slot 1 was never
// written. A writer killed there (or a power loss in that first write) had
// applied nothing yet, since Start returns only once the first record is
// durable: the volume has no checkpoint, as when the file does not exist.
bool FirstRecordNeverCompleted(const std::string& file) {
  if (file.size() != 2 * kCheckpointSlotBytes) return false;
  return std::all_of(file.begin() + kCheckpointSlotBytes, file.end(),
                     [](char c) { return c == '\0'; });
}

}  // namespace

absl::StatusOr<std::optional<proto::LmdbCheckpoint>> ReadCheckpoint(const std::string& dir,
                                                                    FileSystem* fs) {
  const std::string path = CheckpointPath(dir);
  if (!fs->Exists(path)) return std::optional<proto::LmdbCheckpoint>();
  RDF_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(fs, path));
  std::optional<proto::LmdbCheckpoint> slots[2] = {ParseSlot(bytes, 0), ParseSlot(bytes, 1)};
  const int current = CurrentSlot(slots);
  if (current < 0 && FirstRecordNeverCompleted(bytes)) {
    return std::optional<proto::LmdbCheckpoint>();
  }
  if (current < 0) {
    return absl::DataLossError(absl::StrCat(path, ": neither slot holds a version ",
                                            kRecordVersion, " checkpoint record"));
  }
  return std::move(slots[current]);
}

absl::StatusOr<CheckpointState> OldestRestorable(const std::string& dir,
                                                 const CheckpointState& live, FileSystem* fs) {
  RDF_ASSIGN_OR_RETURN(std::optional<proto::LmdbCheckpoint> r, ReadCheckpoint(dir, fs));
  if (!r.has_value()) return live;
  // Read, then synced: every byte read was written before the sync, so the
  // record read is durable now (its precondition, data.mdb or the copy
  // synced, held before it was written). A record written meanwhile is
  // newer, so whichever a power loss keeps is at least as new as `r`.
  {
    RDF_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> f,
                         fs->OpenWritable(CheckpointPath(dir), /*create=*/false));
    RDF_RETURN_IF_ERROR(f->Sync());
    RDF_RETURN_IF_ERROR(f->Close());
  }
  CheckpointState out = live;
  if (std::pair(r->restart_segment(), r->restart_offset()) <
      std::pair(out.restart_segment, out.restart_offset)) {
    out.restart_segment = r->restart_segment();
    out.restart_offset = r->restart_offset();
  }
  out.applied_asn = std::min(out.applied_asn, r->applied_asn());
  out.redo_from_asn = std::min(out.redo_from_asn, r->redo_from_asn());
  return out;
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
  if (rec->copy_bytes() > 0) {
    RDF_RETURN_IF_ERROR(RestoreCopy(dir, *rec));
    out.restored = true;
    out.record = *std::move(rec);
    return out;
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
    const std::string page = MetaPageFor(rec->meta_page(), s);
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
                                                                  const CheckpointState& now,
                                                                  Mode mode) {
  std::unique_ptr<Checkpointer> c(new Checkpointer(env, interval, mode));
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
    TestPoint("checkpoint.record_file_made");  // before any record is in it
  }
  std::optional<proto::LmdbCheckpoint> slots[2] = {ParseSlot(bytes, 0), ParseSlot(bytes, 1)};
  const int current = CurrentSlot(slots);
  next_slot_ = current == 0 ? 1 : 0;
  sequence_ = current < 0 ? 0 : slots[current]->sequence();
  // Never overwrite the copy that the current record names.
  if (current >= 0 && slots[current]->copy_bytes() > 0) {
    next_copy_slot_ = slots[current]->copy_slot() ^ 1;
  }
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
  if (job_.has_value()) {
    if (job_->pin != nullptr) mdb_txn_abort(job_->pin);
    if (job_->copy_fd >= 0) close(job_->copy_fd);
  }
  if (pin_ != nullptr) mdb_txn_abort(pin_);
}

absl::StatusOr<Checkpointer::Job> Checkpointer::Prepare(const CheckpointState& now, bool clean) {
  Job job;
  // A raw begin, not Env::BeginShared: a pin outlives the call and holds no
  // resize_mu. It cannot meet MDB_MAP_RESIZED: only the writer checkpoints,
  // and its own map is never smaller than the data (Env::Open, Grow); nor
  // could it adopt a size while the previous pin is held.
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
  r.set_redo_from_asn(now.redo_from_asn);
  std::move(unpin).Cancel();
  last_pinned_txnid_ = txnid;
  last_begun_ = absl::Now();
  return job;
}

absl::Status Checkpointer::CopyOut(Job& job) {
  const std::string data_path = DataPath(env_->dir());
  const std::string path = CheckpointCopyPath(env_->dir(), next_copy_slot_);
  int data_fd = -1;
  int rc = mdb_env_get_fd(env_->env(), &data_fd);
  if (rc != 0) return MdbError(rc, "checkpoint: mdb_env_get_fd");
  const std::string& meta = job.record.meta_page();
  const size_t psize = job.record.page_size();
  const uint64_t bytes = (MetaLastPage(meta) + 1) * psize;
  job.copy_created = !FileSystem::Default()->Exists(path);
  // Rewritten in place, never truncated first: the slot's blocks are
  // overwritten as they are and only growth allocates (up front). Truncating
  // freed the whole last copy every interval, and on a file system mounted
  // with `discard` freeing trims, which holds every other fsync on the disk
  // meanwhile (see PosixFileSystem::RemoveGradually).
  job.copy_fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (job.copy_fd < 0) return ErrnoToStatus(errno, absl::StrCat("checkpoint: open ", path));
  struct stat st;
  if (fstat(job.copy_fd, &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("checkpoint: stat ", path));
  }
  if (static_cast<uint64_t>(st.st_size) > bytes &&
      ftruncate(job.copy_fd, static_cast<off_t>(bytes)) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("checkpoint: truncate ", path));
  }
  if (static_cast<uint64_t>(st.st_size) < bytes) {
    const int r = fallocate(job.copy_fd, 0, 0, static_cast<off_t>(bytes));
    if (r != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
      return ErrnoToStatus(errno, absl::StrCat("checkpoint: allocate ", path));
    }
  }
  // C's meta page in both slots, as RecoverToCheckpoint puts it back.
  uint32_t crc = 0;
  for (uint32_t slot = 0; slot < 2; ++slot) {
    const std::string page = MetaPageFor(meta, slot);
    crc = crc32c::Extend(crc, page.data(), page.size());
    RDF_RETURN_IF_ERROR(
        WriteAll(job.copy_fd, page.data(), psize, static_cast<off_t>(slot * psize), path));
  }
  // Every page C can reach lies below its last page and stays as it is in
  // the page cache while the pin holds C. data.mdb may end before C's last
  // page: pages a transaction took from the end of the file and freed again
  // before it committed (a value written and deleted, or overwritten, in
  // one transaction) are counted in the meta page but never written. No
  // page C reaches lies there (LMDB could not read it either), so the copy
  // holds zeros for them.
  struct stat data_st;
  if (fstat(data_fd, &data_st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("checkpoint: stat ", data_path));
  }
  const uint64_t data_bytes = static_cast<uint64_t>(data_st.st_size);
  std::string buf(kCopyChunkBytes, '\0');
  for (uint64_t at = 2 * psize; at < bytes; at += kCopyChunkBytes) {
    const size_t n = std::min<uint64_t>(kCopyChunkBytes, bytes - at);
    const size_t written = at < data_bytes ? std::min<uint64_t>(n, data_bytes - at) : 0;
    RDF_RETURN_IF_ERROR(
        ReadAll(data_fd, buf.data(), written, static_cast<off_t>(at), data_path));
    std::fill(buf.begin() + static_cast<std::ptrdiff_t>(written),
              buf.begin() + static_cast<std::ptrdiff_t>(n), '\0');
    crc = crc32c::Extend(crc, buf.data(), n);
    RDF_RETURN_IF_ERROR(WriteAll(job.copy_fd, buf.data(), n, static_cast<off_t>(at), path));
  }
  mdb_txn_abort(job.pin);  // the writer may reuse C's pages now
  job.pin = nullptr;
  job.copy_crc = crc;
  job.record.set_copy_slot(next_copy_slot_);
  job.record.set_copy_bytes(bytes);
  return absl::OkStatus();
}

absl::Status Checkpointer::SyncCopy(Job& job, bool paced) {
  const std::string path = CheckpointCopyPath(env_->dir(), job.record.copy_slot());
  absl::Cleanup close_fd = [&job] {
    close(job.copy_fd);
    job.copy_fd = -1;
  };
  const uint64_t bytes = job.record.copy_bytes();
  // Written back a chunk at a time at a bounded pace: each sync of any
  // process on this disk then carries little of it.
  const absl::Time began = absl::Now();
  for (uint64_t at = 0; paced && at < bytes; at += kCopyChunkBytes) {
    const size_t n = std::min<uint64_t>(kCopyChunkBytes, bytes - at);
    if (sync_file_range(job.copy_fd, static_cast<off_t>(at), static_cast<off_t>(n),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("checkpoint: write back ", path));
    }
    const absl::Time due = began + absl::Seconds(static_cast<double>(at + n) / kCopyBytesPerSecond);
    const absl::Duration ahead = due - absl::Now();
    if (ahead > absl::ZeroDuration()) absl::SleepFor(ahead);
  }
  if (fdatasync(job.copy_fd) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("checkpoint: fdatasync ", path));
  }
  if (job.copy_created) RDF_RETURN_IF_ERROR(FileSystem::Default()->SyncDir(env_->dir()));
  job.record.set_copy_crc32c(crc32c::Mask(job.copy_crc));
  return absl::OkStatus();
}

absl::Status Checkpointer::Persist(Job job, bool paced) {
  absl::Status s;
  const bool copy = job.copy_fd >= 0;
  if (copy) {
    s = SyncCopy(job, paced);
  } else {
    int fd = -1;
    int rc = mdb_env_get_fd(env_->env(), &fd);
    s = rc == 0 ? absl::OkStatus() : MdbError(rc, "checkpoint: mdb_env_get_fd");
    if (s.ok() && fdatasync(fd) != 0) {
      s = ErrnoToStatus(errno, absl::StrCat("checkpoint: fdatasync ", DataPath(env_->dir())));
    }
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
      if (job.record.copy_bytes() > 0) next_copy_slot_ ^= 1;
    }
  }
  MDB_txn* release = job.pin;
  {
    absl::MutexLock l(&mu_);
    if (s.ok()) {
      // In place: the older checkpoint's pages may be reused now. A copy
      // needs no pin: any older one goes.
      std::swap(release, pin_);
      if (mode_ == Mode::kCopy && pin_ != nullptr) {
        mdb_txn_abort(pin_);
        pin_ = nullptr;
      }
      ++checkpoints_;
      durable_txnid_ = job.record.txnid();
      durable_redo_from_asn_ = job.record.redo_from_asn();
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
    absl::Status s = Persist(*std::move(job), /*paced=*/true);
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
  if (absl::Now() - last_begun_ < next_interval_) return absl::OkStatus();
  MDB_envinfo info;
  mdb_env_info(env_->env(), &info);
  if (info.me_last_txnid == last_pinned_txnid_) return absl::OkStatus();  // nothing new
  RDF_ASSIGN_OR_RETURN(Job job, PrepareAndCopy(now, false));
  next_interval_ = NextInterval();
  absl::MutexLock l(&mu_);
  job_ = std::move(job);
  running_ = true;
  return absl::OkStatus();
}

absl::Status Checkpointer::SyncNow(const CheckpointState& now, bool clean) {
  WaitIdle();
  {
    absl::MutexLock l(&mu_);
    error_ = absl::OkStatus();  // superseded by this checkpoint
  }
  RDF_ASSIGN_OR_RETURN(Job job, PrepareAndCopy(now, clean));
  next_interval_ = NextInterval();
  return Persist(std::move(job), /*paced=*/false);
}

absl::StatusOr<Checkpointer::Job> Checkpointer::PrepareAndCopy(const CheckpointState& now,
                                                               bool clean) {
  RDF_ASSIGN_OR_RETURN(Job job, Prepare(now, clean));
  if (mode_ == Mode::kCopy && !clean) {
    absl::Status s = CopyOut(job);
    if (!s.ok()) {
      if (job.pin != nullptr) mdb_txn_abort(job.pin);
      if (job.copy_fd >= 0) close(job.copy_fd);
      return s;
    }
  }
  return job;
}

absl::Duration Checkpointer::NextInterval() {
  if (mode_ == Mode::kInPlace) return interval_;
  return interval_ * std::uniform_real_distribution<double>(0.8, 1.2)(rng_);
}

void Checkpointer::WaitIdle() {
  absl::MutexLock l(&mu_);
  mu_.Await(absl::Condition(
      +[](Checkpointer* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) { return !c->running_; }, this));
}

absl::Status Checkpointer::ReleaseForGrow(const CheckpointState& now) {
  if (mode_ == Mode::kCopy) {
    WaitIdle();  // copy mode holds no pin
    return absl::OkStatus();
  }
  RDF_RETURN_IF_ERROR(SyncNow(now, false));
  absl::MutexLock l(&mu_);
  if (pin_ != nullptr) mdb_txn_abort(pin_);
  pin_ = nullptr;
  return absl::OkStatus();
}

absl::Status Checkpointer::Repin() {
  if (mode_ == Mode::kCopy) return absl::OkStatus();
  MDB_txn* txn = nullptr;
  // Raw, as in Prepare: the writer's own pin.
  int rc = mdb_txn_begin(env_->env(), nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return MdbError(rc, "checkpoint: pin after growing the map");
  absl::MutexLock l(&mu_);
  if (pin_ != nullptr) mdb_txn_abort(pin_);
  pin_ = txn;
  return absl::OkStatus();
}

absl::StatusOr<Checkpointer::Mode> ChooseMode(proto::UpdaterConfig::CheckpointMode mode,
                                              uint64_t copy_max_bytes, const std::string& dir) {
  if (mode == proto::UpdaterConfig::COPY) return Checkpointer::Mode::kCopy;
  if (mode == proto::UpdaterConfig::IN_PLACE) return Checkpointer::Mode::kInPlace;
  const std::string path = DataPath(dir);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Checkpointer::Mode::kCopy;  // a new volume
    return ErrnoToStatus(errno, absl::StrCat("stat ", path));
  }
  return static_cast<uint64_t>(st.st_size) <= copy_max_bytes ? Checkpointer::Mode::kCopy
                                                             : Checkpointer::Mode::kInPlace;
}

absl::Status RemoveCheckpoint(const std::string& dir) {
  FileSystem* fs = FileSystem::Default();
  bool removed = false;
  for (const std::string& path :
       {CheckpointPath(dir), CheckpointCopyPath(dir, 0), CheckpointCopyPath(dir, 1)}) {
    if (!fs->Exists(path)) continue;
    RDF_RETURN_IF_ERROR(fs->Remove(path));
    removed = true;
  }
  return removed ? fs->SyncDir(dir) : absl::OkStatus();
}

uint64_t Checkpointer::durable_redo_from_asn() const {
  absl::MutexLock l(&mu_);
  return durable_redo_from_asn_;
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
