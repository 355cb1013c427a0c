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
#ifndef RDF_COMMON_LMDB_CHECKPOINT_H_
#define RDF_COMMON_LMDB_CHECKPOINT_H_

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "checkpoint.pb.h"
#include "common/lmdb_env.h"

namespace rdf::lmdb {

// <dir>/checkpoint: two slots of kCheckpointSlotBytes.
std::string CheckpointPath(const std::string& dir);
inline constexpr size_t kCheckpointSlotBytes = 96 << 10;  // a 64 KiB meta page fits

// The current record of the environment in `dir` (the valid slot with the
// highest sequence); nullopt when there is no record file; kDataLoss when
// neither slot holds a valid record.
absl::StatusOr<std::optional<proto::LmdbCheckpoint>> ReadCheckpoint(const std::string& dir);

// One slot's bytes for `record`: length and masked CRC32C (little-endian
// 32-bit each), then the message.
std::string EncodeCheckpointSlot(const proto::LmdbCheckpoint& record);

// This boot of the machine (/proc/sys/kernel/random/boot_id; the process
// tests pretend a restart with RDF_TEST_BOOT_ID).
std::string BootId();

struct Recovery {
  bool restored = false;       // the meta pages were put back to the record's
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
};

// Takes the checkpoints of one environment opened with Durability::kDeferred.
// Its methods are called by the environment's only writer thread, never while
// that thread has a write transaction open.
class Checkpointer {
 public:
  // Makes everything committed so far durable and records it before
  // returning; later checkpoints run in the background.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Start(Env* env, absl::Duration interval,
                                                             const CheckpointState& now);
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
  // Map growth needs every transaction of the process ended: SyncNow, then
  // the pins are released. Repin() after growing, before the next commit.
  absl::Status ReleaseForGrow(const CheckpointState& now);
  absl::Status Repin();

  uint64_t checkpoints() const;    // records written
  uint64_t durable_txnid() const;  // the newest recorded checkpoint

 private:
  struct Job {
    MDB_txn* pin = nullptr;
    proto::LmdbCheckpoint record;
  };
  Checkpointer(Env* env, absl::Duration interval) : env_(env), interval_(interval) {}
  // Pins the newest commit and fills the record but for durability.
  absl::StatusOr<Job> Prepare(const CheckpointState& now, bool clean);
  // fdatasync, then the record; on success the job's pin replaces the held one.
  absl::Status Persist(Job job);
  // Opens (or makes) the record file; finds the slot to write next.
  absl::Status OpenRecordFile();
  void Background();

  Env* const env_;
  const absl::Duration interval_;
  std::string boot_id_;
  uint64_t device_ = 0, inode_ = 0;
  absl::Time last_begun_ = absl::InfinitePast();
  uint64_t last_pinned_txnid_ = 0;  // writer thread only
  // The record file; used by Persist only (never two at once).
  int record_fd_ = -1;
  uint32_t next_slot_ = 0;
  uint64_t sequence_ = 0;

  mutable absl::Mutex mu_;
  MDB_txn* pin_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the newest record
  std::optional<Job> job_ ABSL_GUARDED_BY(mu_);  // for the background thread
  bool running_ ABSL_GUARDED_BY(mu_) = false;    // a job is queued or persisting
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  uint64_t checkpoints_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_txnid_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace rdf::lmdb

#endif  // RDF_COMMON_LMDB_CHECKPOINT_H_
