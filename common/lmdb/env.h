// One LMDB environment (a volume on either node), opened with settings that
// cannot corrupt on power loss: no MDB_MAPASYNC or MDB_WRITEMAP, and
// MDB_NOSYNC only for a writer that keeps checkpoints (Durability::kDeferred,
// common/lmdb/checkpoint.h). MDB_NOMETASYNC is used: a system crash may undo
// the last commit, never corrupt, and callers keep their restart position
// inside each commit.
// Stale reader slots left by killed processes are cleared on open
// (mdb_reader_check), and the map grows when it fills.
//
// Map growth (docs/updater.md, "Map growth"): a map is never smaller than the
// one recorded in the environment's newest meta page, so a size an earlier
// run grew to is kept across restarts whatever `map_bytes` says; and a
// process whose map is smaller than another process grew it to (a reader
// of a volume an updater or tmf writes) adopts the new size when it begins
// its next transaction (MDB_MAP_RESIZED), once, in Env::BeginShared, which
// every ReadTxn, WriteTxn and OpenDb goes through.
//
// Named databases are user files; names starting with "__" are bookkeeping.
// Thread-safe: read and write transactions take `resize_mu()` shared, and
// Grow() takes it exclusively, because LMDB may resize the map only while
// this process has no transaction open.
#ifndef RDF_COMMON_LMDB_ENV_H_
#define RDF_COMMON_LMDB_ENV_H_

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rdf::lmdb {

// A volume's gate between its writer's recovery and readers in other
// processes (verify, initialize). A writer that starts may write its
// checkpoint back under data.mdb (lmdb::RecoverToCheckpoint). A process that
// has the environment open meanwhile keeps LMDB's lock region (lock.mdb)
// alive, naming a transaction newer than the one put back, and the
// writer's own open then trusts it: its first checkpoint finds "no meta
// page names the newest transaction" and it dies at every start (the purger
// did this once). So the writer holds the gate exclusively from before its
// recovery until its environment is open, and such a reader holds it shared
// for as long as its environment is open. flock(2) on "gate.lock" in the
// volume's folder: the kernel lets go with the process.
class VolumeGate {
 public:
  // How long either side waits for the other before kUnavailable.
  static constexpr absl::Duration kWait = absl::Seconds(60);

  // Exclusive: waits while readers hold it (each holds it for one request).
  // Creates `dir` when missing.
  static absl::StatusOr<VolumeGate> ForWriter(const std::string& dir,
                                              absl::Duration wait = kWait);
  // Shared: waits while the writer recovers. Holds nothing (and creates
  // nothing) when `dir` does not exist.
  static absl::StatusOr<VolumeGate> ForReader(const std::string& dir,
                                              absl::Duration wait = kWait);

  VolumeGate() = default;
  VolumeGate(VolumeGate&& other) noexcept;
  VolumeGate& operator=(VolumeGate&& other) noexcept;
  VolumeGate(const VolumeGate&) = delete;
  VolumeGate& operator=(const VolumeGate&) = delete;
  ~VolumeGate();

 private:
  static absl::StatusOr<VolumeGate> Take(const std::string& dir, bool exclusive,
                                         absl::Duration wait);
  int fd_ = -1;
};

// Maps an LMDB return code to a status: MDB_MAP_FULL and ENOSPC ->
// kResourceExhausted, MDB_NOTFOUND -> kNotFound, others -> kInternal.
absl::Status MdbError(int rc, absl::string_view context);

// True for the status MdbError gives MDB_MAP_FULL (not for ENOSPC, which a
// bigger map cannot cure).
bool IsMapFull(const absl::Status& s);

// How often one begin adopts a grown map before giving up (the writer grew
// again each time in between).
inline constexpr int kMaxMapAdoptions = 8;

// mdb_txn_begin for an environment not wrapped in Env (a read-only scan
// that holds one transaction per environment): on MDB_MAP_RESIZED adopts
// the grown map (mdb_env_set_mapsize(env, 0)) and begins again.
// REQUIRES: no other transaction of this process is open on `env`.
absl::StatusOr<MDB_txn*> BeginTxn(MDB_env* env, unsigned flags, absl::string_view context);

inline MDB_val Val(absl::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline absl::string_view View(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

enum class Durability {
  kEachCommit,  // every commit is durable when it returns (one fdatasync)
  // Commits only write to the page cache (MDB_NOSYNC): visible to readers at
  // once, durable at the next checkpoint. Only under a lmdb::Checkpointer,
  // which keeps what a system crash can take back recoverable.
  kDeferred,
};

class Env {
 public:
  // Creates `dir` if missing and opens the environment in it, read-write,
  // with a map of max(map_bytes, the size in its newest meta page).
  static absl::StatusOr<std::unique_ptr<Env>> Open(
      const std::string& dir, uint64_t map_bytes, uint32_t max_dbs,
      Durability durability = Durability::kEachCommit);
  // Opens the environment in `dir` read-only (MDB_RDONLY) with the map its
  // newest meta page names: creates no folder and no data.mdb (LMDB adds
  // lock.mdb when missing). kNotFound when `dir` holds no data.mdb. Only
  // ReadTxn and OpenDb(name, false) may be used on it. Holds the volume's
  // gate shared while it is open (VolumeGate).
  static absl::StatusOr<std::unique_ptr<Env>> OpenReadOnly(const std::string& dir,
                                                           uint32_t max_dbs);
  ~Env();

  MDB_env* env() const { return env_; }
  const std::string& dir() const { return dir_; }
  absl::Mutex& resize_mu() { return resize_mu_; }

  // The handle of named database `name`, opened once and cached. With
  // `create`, the database is created when missing (in its own write
  // transaction); without, kNotFound when missing. REQUIRES: the calling
  // thread holds no transaction of this environment.
  absl::StatusOr<MDB_dbi> OpenDb(const std::string& name, bool create);
  // Names of the named databases present (user files and bookkeeping).
  absl::StatusOr<std::vector<std::string>> ListDbs();
  // Drops (deletes) a named database. REQUIRES: no transaction open on it.
  absl::Status DropDb(const std::string& name);

  // Doubles the map size (or to at least `min_bytes`). Takes resize_mu()
  // exclusively: every transaction of this process must have ended.
  absl::Status Grow(uint64_t min_bytes = 0);
  uint64_t map_bytes() const;

  // Begins a transaction (mdb_txn_begin `flags`) holding resize_mu()
  // shared; the caller releases it (ReaderUnlock) after ending the
  // transaction. On MDB_MAP_RESIZED adopts the grown map under resize_mu()
  // exclusively and begins again (at most kMaxMapAdoptions times).
  // REQUIRES: the calling thread holds no transaction of this environment.
  // Not analysed (-Wthread-safety): a lock held only when the returned
  // StatusOr is ok is more than the annotations can express.
  absl::StatusOr<MDB_txn*> BeginShared(unsigned flags, absl::string_view context)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;

 private:
  Env() = default;
  static absl::StatusOr<std::unique_ptr<Env>> OpenWith(const std::string& dir,
                                                       uint64_t map_bytes, uint32_t max_dbs,
                                                       unsigned flags);
  VolumeGate gate_;  // a read-only environment's (OpenReadOnly); outlives env_
  MDB_env* env_ = nullptr;
  std::string dir_;
  absl::Mutex resize_mu_;
  absl::Mutex dbs_mu_;
  absl::flat_hash_map<std::string, MDB_dbi> dbs_ ABSL_GUARDED_BY(dbs_mu_);
};

// A read-only transaction holding resize_mu() shared for its lifetime.
class ReadTxn {
 public:
  static absl::StatusOr<std::unique_ptr<ReadTxn>> Begin(Env* env);
  ~ReadTxn();
  MDB_txn* txn() const { return txn_; }
  // nullopt when the key is missing.
  absl::StatusOr<std::optional<std::string>> Get(MDB_dbi dbi,
                                                 absl::string_view key);

 private:
  ReadTxn(Env* env, MDB_txn* txn) : env_(env), txn_(txn) {}
  Env* env_;
  MDB_txn* txn_;
};

// A write transaction (holding resize_mu() shared). Destroying it without
// Commit aborts it.
class WriteTxn {
 public:
  static absl::StatusOr<std::unique_ptr<WriteTxn>> Begin(Env* env);
  ~WriteTxn();
  MDB_txn* txn() const { return txn_; }
  absl::StatusOr<std::optional<std::string>> Get(MDB_dbi dbi,
                                                 absl::string_view key);
  absl::Status Put(MDB_dbi dbi, absl::string_view key, absl::string_view value);
  // kNotFound when the key is missing.
  absl::Status Delete(MDB_dbi dbi, absl::string_view key);
  // Commits (syncs). On failure the transaction is gone either way.
  absl::Status Commit();

 private:
  WriteTxn(Env* env, MDB_txn* txn) : env_(env), txn_(txn) {}
  Env* env_;
  MDB_txn* txn_;
};

// Bookkeeping record kept in a volume's "__meta" database: small named
// unsigned integers (applied ASN, restart points, ...).
inline constexpr char kMetaDb[] = "__meta";
absl::StatusOr<std::optional<uint64_t>> GetU64(ReadTxn* txn, MDB_dbi dbi,
                                               absl::string_view key);
absl::StatusOr<std::optional<uint64_t>> GetU64(WriteTxn* txn, MDB_dbi dbi,
                                               absl::string_view key);
absl::Status PutU64(WriteTxn* txn, MDB_dbi dbi, absl::string_view key,
                    uint64_t value);

}  // namespace rdf::lmdb

#endif  // RDF_COMMON_LMDB_ENV_H_
