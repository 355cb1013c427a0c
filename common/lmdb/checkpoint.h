// Deferred durability for an LMDB environment whose writer can redo what it
// committed from a durable log (an updater from its image trail), the way a
// database replays its redo log from its last checkpoint.
//
// The writer commits without syncing (Durability::kDeferred): a commit is
// visible to readers at once and costs no fdatasync. Every `interval` a
// checkpoint makes everything committed so far durable:
//   1. right after commit C (no write transaction open) a read transaction
//      is begun on C: the pin. While it is held LMDB reuses no page that C
//      can reach, so C's pages on disk stay as they are whatever later
//      commits write;
//   2. C's meta page is read from data.mdb (commit C+2 overwrites its slot);
//   3. in a background thread: fdatasync of data.mdb (C's pages and meta are
//      durable), then the record <dir>/checkpoint (proto::LmdbCheckpoint:
//      C's meta page, the writer's restart point in C, the boot id) is
//      written into the slot of the record file that does not hold the
//      current record and synced (no rename, no journal commit), then the
//      previous checkpoint's pin is released.
// A process crash (kill -9) loses nothing: the page cache holds every commit.
// After a system crash, pages written after C may be missing or torn and a
// meta slot may name a later transaction whose pages never reached the disk.
// RecoverToCheckpoint, run before the environment is opened, then puts C's
// meta page back into both slots (the record's boot id differs from the
// running system's): LMDB opens C, whose pages are intact, and the writer
// redoes from C's restart point.
//
// That is Mode::kInPlace. Its cost is that no page freed after C is reused
// before the next checkpoint, so every commit writes whole new pages (about
// one per changed row for random keys) and all of them reach the disk. For a
// volume small enough to copy, Mode::kCopy holds no pin between checkpoints
// (LMDB reuses pages, so the page cache merges the commits of one interval
// and the kernel writes each page back once at most) and is never synced in
// place; instead each checkpoint copies C while pinned, from the page cache,
// into the copy slot <dir>/checkpoint.mdb.<0|1> that is not current (C's
// meta page into both meta slots, then pages 2..C's last page), releases the
// pin, syncs the copy and then writes the record naming it. After a system
// crash RecoverToCheckpoint writes the copy back over data.mdb (checking its
// size and CRC32C). The copy is taken in the writer's thread (a memory copy,
// so that no commit frees pages while C is pinned: a swollen LMDB free list
// slows every later commit), and reaches the disk in the background, paced
// (kCopyBytesPerSecond), so that it does not hold up the other processes'
// syncs. Start and SyncNow copy and sync at once; a clean stop syncs data.mdb
// in place in either mode.
#ifndef RDF_COMMON_LMDB_CHECKPOINT_H_
#define RDF_COMMON_LMDB_CHECKPOINT_H_

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "checkpoint.pb.h"
#include "common/base/file_system.h"
#include "common/lmdb/env.h"
#include "config.pb.h"

namespace rdf::lmdb {

// <dir>/checkpoint: two slots of kCheckpointSlotBytes.
std::string CheckpointPath(const std::string& dir);
inline constexpr size_t kCheckpointSlotBytes = 96 << 10;  // a 64 KiB meta page fits

// The current record of the environment in `dir` (the valid slot with the
// highest sequence); nullopt when there is no record file; kDataLoss when
// neither slot holds a valid record.
absl::StatusOr<std::optional<proto::LmdbCheckpoint>> ReadCheckpoint(
    const std::string& dir, FileSystem* fs = FileSystem::Default());

// One slot's bytes for `record`: length and masked CRC32C (little-endian
// 32-bit each), then the message.
std::string EncodeCheckpointSlot(const proto::LmdbCheckpoint& record);

// Copy slot `slot` (0 or 1) of the environment in `dir`.
std::string CheckpointCopyPath(const std::string& dir, uint32_t slot);

struct Recovery {
  bool restored = false;       // the meta pages (or the copy) were put back
  proto::LmdbCheckpoint record;  // when restored: the checkpoint opened
};

// Before the environment in `dir` is opened by its deferred-durability
// writer: restores the last checkpoint when the machine restarted since an
// unclean record of this very data.mdb. kDataLoss when data.mdb holds no
// transaction as new as a durable checkpoint (its disk lost synced data).
absl::StatusOr<Recovery> RecoverToCheckpoint(const std::string& dir);

// The writer's state in the newest commit, recorded with its checkpoint.
struct CheckpointState {
  uint64_t restart_segment = 0;
  uint64_t restart_offset = 0;
  uint64_t applied_asn = 0;
  uint64_t redo_from_asn = 0;  // tmf: the audit its recovery needs from this commit
};

// The oldest writer state any crash can bring the environment in `dir`
// back to: `live` (its newest commit, which a process crash keeps) and the
// state in its current checkpoint record (a system crash restores that).
// The current record may have been read between the checkpointer's pwrite
// and its fdatasync, when a power loss would still bring back the older
// one: so the record file is synced (`fs`) after it is read, and what was
// read is then what a crash restores (or a newer record). Fields are
// reduced separately: the restart position (segment, offset) and each ASN
// to its minimum. `live` alone when there is no record file; kDataLoss when
// the file holds no valid record. For those that keep what a restart needs
// (the purger keeps image-trail segments from it).
absl::StatusOr<CheckpointState> OldestRestorable(const std::string& dir,
                                                 const CheckpointState& live,
                                                 FileSystem* fs = FileSystem::Default());

// Takes the checkpoints of one environment opened with Durability::kDeferred.
// Its methods are called by the environment's only writer thread, never while
// that thread has a write transaction open.
class Checkpointer {
 public:
  enum class Mode { kInPlace, kCopy };
  // Makes everything committed so far durable and records it before
  // returning; later checkpoints run in the background.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(Env* env, absl::Duration interval,
                                                             const CheckpointState& now,
                                                             Mode mode = Mode::kInPlace);
  // Waits for a background checkpoint and releases the pins. Writes no
  // clean record: call SyncNow(.., true) first for a clean stop.
  ~Checkpointer();

  // After each commit, and now and then when idle, with the writer's state
  // in its newest commit: begins a background checkpoint of it when
  // `interval` has passed since the last began and none is running. Returns
  // (once) the error of a background checkpoint that failed.
  absl::Status AfterCommit(const CheckpointState& now);
  // Everything committed so far durable and recorded before returning. With
  // `clean` (the writer stops) the record says there is nothing to recover.
  absl::Status SyncNow(const CheckpointState& now, bool clean);
  // Map growth needs every transaction of the process ended: SyncNow (in
  // place mode; in copy mode, which holds no pin, the running checkpoint is
  // waited for), then the pins are released. Repin() after growing, before
  // the next commit.
  absl::Status ReleaseForGrow(const CheckpointState& now);
  absl::Status Repin();

  uint64_t checkpoints() const;    // records written
  uint64_t durable_txnid() const;  // the newest recorded checkpoint
  uint64_t durable_redo_from_asn() const;  // its CheckpointState's

 private:
  struct Job {
    MDB_txn* pin = nullptr;
    proto::LmdbCheckpoint record;
    // Copy mode: the copy is in the page cache (CopyOut), its file open,
    // its pin released; Persist syncs it.
    int copy_fd = -1;
    bool copy_created = false;  // the copy file is new: sync its folder too
    uint32_t copy_crc = 0;
  };
  Checkpointer(Env* env, absl::Duration interval, Mode mode)
      : env_(env), interval_(interval), mode_(mode) {}
  // Pins the newest commit and fills the record but for durability.
  absl::StatusOr<Job> Prepare(const CheckpointState& now, bool clean);
  // Prepare, then in copy mode (unless clean) CopyOut.
  absl::StatusOr<Job> PrepareAndCopy(const CheckpointState& now, bool clean);
  // fdatasync (or the copy's, `paced` in the background), then the record;
  // on success in place the job's pin replaces the held one.
  absl::Status Persist(Job job, bool paced);
  // Copy mode, in the writer's thread (no commit can free a page while the
  // pin holds C, so LMDB's free list never swells): the pinned commit into
  // the copy slot not current, in the page cache; then the pin is released.
  absl::Status CopyOut(Job& job);
  // Copy mode: the copy written back (paced, or at once) and synced, and the
  // record's copy fields filled.
  absl::Status SyncCopy(Job& job, bool paced);
  void WaitIdle();
  // The wait before the next background checkpoint: `interval` (copy mode:
  // +-20 %, so that the copies of several volumes seldom coincide).
  absl::Duration NextInterval();
  // Opens (or makes) the record file; finds the slot to write next.
  absl::Status OpenRecordFile();
  void Background();

  Env* const env_;
  const absl::Duration interval_;
  const Mode mode_;
  std::string boot_id_;
  uint64_t device_ = 0, inode_ = 0;
  absl::Time last_begun_ = absl::InfinitePast();
  absl::Duration next_interval_;  // writer thread only
  std::minstd_rand rng_{std::random_device{}()};  // writer thread only
  uint64_t last_pinned_txnid_ = 0;  // writer thread only
  // The record file; used by Persist only (never two at once).
  int record_fd_ = -1;
  uint32_t next_slot_ = 0;
  uint64_t sequence_ = 0;
  uint32_t next_copy_slot_ = 0;  // copy mode: the slot the next copy goes to

  mutable absl::Mutex mu_;
  MDB_txn* pin_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the newest record
  std::optional<Job> job_ ABSL_GUARDED_BY(mu_);  // for the background thread
  bool running_ ABSL_GUARDED_BY(mu_) = false;    // a job is queued or persisting
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  uint64_t checkpoints_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_txnid_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_redo_from_asn_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// The mode a `checkpoint_mode` setting (tmf or updater) asks for the
// environment in `dir`: AUTO is kCopy when its data.mdb is at most
// `copy_max_bytes` now (or does not exist yet).
// Removes the record and the copies of the environment in `dir`: its writer
// now syncs every commit, so none of them may ever be restored.
absl::Status RemoveCheckpoint(const std::string& dir);

absl::StatusOr<Checkpointer::Mode> ChooseMode(proto::UpdaterConfig::CheckpointMode mode,
                                              uint64_t copy_max_bytes, const std::string& dir);

}  // namespace rdf::lmdb

#endif  // RDF_COMMON_LMDB_CHECKPOINT_H_
