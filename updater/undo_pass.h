// Takeover's UNDO for one volume (docs/takeover.md, step 3): puts back, newest
// first, every record of the transactions still open at the final save
// point (the lost set), reading the volume's image trail backwards from the
// save point down to the first ASN of the oldest of them. A record is undone
// by writing its before image, or deleting its key when it had none (an
// insert); a compensation record is undone like any other. Left alone:
// records REDO never applied, that is those it skipped on error 10 or 11
// (the volume's __skipped database, matched by ASN and txid) and those
// already in an initial copy (SnapshotFilter); and records of a file that a
// later DDL purged.
//
// Exactly once across any crash: each batch of undos is one LMDB write
// transaction that also holds the undo cursor (the trail position the
// backward scan has reached), the epoch it belongs to and the count undone
// so far (kMetaUndo* in common/state/takeover_state.h). The pass resumes
// from that cursor when it finds one of the same epoch, so a crash or a stop
// between two batches neither undoes a record twice nor skips one. The last
// batch also fences transaction ids (kMetaMaxTxid above every txid received,
// for the tmf that opens the volume as the new primary) and marks the epoch
// done (kMetaDoneEpoch).
//
// Component-internal: the updater (Updater::Impl::Undo) drives it and keeps
// what belongs to the process (events, status, checkpoints, the stop flag).
// Not thread-safe; one pass at a time per volume (the updater's lock).
#ifndef RDF_UPDATER_UNDO_PASS_H_
#define RDF_UPDATER_UNDO_PASS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/lmdb/env.h"
#include "common/state/initial_copy.h"
#include "common/trail/reader.h"
#include "imagetrail.pb.h"

namespace rdf::updater {

// What the pass needs of the updater that runs it: its write path and the
// records REDO skipped.
class UndoVolume {
 public:
  virtual ~UndoVolume() = default;
  // Begins a write transaction of the volume, has `fill` write into it and
  // commits it. On a full map the updater grows the map and does it all
  // again, so `fill` must give the same writes each time it runs.
  virtual absl::Status Write(const std::function<absl::Status(lmdb::WriteTxn*)>& fill) = 0;
  // The records REDO skipped (error 10 or 11), from `from_asn` on: ASN ->
  // txid.
  virtual absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>> SkippedByRedo(
      uint64_t from_asn) = 0;
};

struct UndoPassOptions {
  lmdb::Env* env = nullptr;        // the volume (not owned)
  MDB_dbi meta = 0;                // its lmdb::kMetaDb
  UndoVolume* volume = nullptr;    // not owned
  // The final save point, with its open set; its trail end for this volume
  // is what `trail.limit` gives. Both must outlive the pass.
  const proto::SavePoint* save_point = nullptr;
  trail::ReaderOptions trail;      // the volume's image trail, up to the final save point
  uint64_t epoch = 0;              // the takeover epoch
  size_t batch_records = 1;        // undos per LMDB transaction at most
  uint64_t batch_bytes = 0;        // and payload bytes (a batch stops once past it)
  const SnapshotFilter* copy = nullptr;  // records already in an initial copy (not owned)
};

class UndoPass {
 public:
  // The pass for options.epoch: where an earlier run of it stopped (the
  // durable cursor and count), else the trail's end at the save point.
  // Reads the volume; opens nothing else.
  // REQUIRES: every pointer in `options` is set and outlives the pass.
  static absl::StatusOr<std::unique_ptr<UndoPass>> Resume(const UndoPassOptions& options);

  // Positions the backward reader at cursor() and reads what REDO skipped.
  // REQUIRES: called once, before the first UndoBatch.
  absl::Status OpenTrail();

  // Undoes the next batch (up to batch_records and batch_bytes, newest
  // first; at most kScanPerBatch records are looked at) in one LMDB
  // transaction holding the cursor after it. Returns true when the pass is
  // complete: that last transaction also fenced txids and marked the epoch
  // done. A pass with nothing to undo completes in its first batch.
  // An error leaves the volume at the last committed batch; this pass is
  // then spent, and a new one (Resume) goes on from there.
  absl::StatusOr<bool> UndoBatch();

  // Records looked at per undo transaction at most: bounds the time between
  // two durable cursors when the lost transactions' records are sparse.
  static constexpr size_t kScanPerBatch = 1 << 20;

  size_t lost_transactions() const { return lost_.size(); }
  trail::Position cursor() const { return cursor_; }  // the scan's durable position
  uint64_t undone() const { return undone_; }         // records undone, this epoch

 private:
  explicit UndoPass(const UndoPassOptions& options) : opt_(options) {}
  // Reads backwards from the cursor to the next batch of records to undo.
  absl::StatusOr<std::vector<proto::AuditRecord>> Scan();
  // The handles of the files `undo` names that still exist, opened outside
  // any write transaction.
  absl::Status OpenFiles(const std::vector<proto::AuditRecord>& undo);
  // In `txn`: the undos, the cursor, and when done the fencing.
  absl::Status WriteBatch(lmdb::WriteTxn* txn, const std::vector<proto::AuditRecord>& undo,
                          uint64_t undone_after);

  UndoPassOptions opt_;
  absl::flat_hash_set<uint64_t> lost_;  // the save point's open transactions
  uint64_t from_asn_ = UINT64_MAX;      // the first ASN of the oldest of them
  trail::Position cursor_;
  uint64_t undone_ = 0;
  bool done_ = false;  // the scan reached from_asn_ (or there is nothing to scan)
  std::unique_ptr<trail::TrailReader> back_;
  absl::flat_hash_map<uint64_t, uint64_t> skipped_by_redo_;  // ASN -> txid
  absl::flat_hash_map<std::string, MDB_dbi> files_;          // opened so far
};

}  // namespace rdf::updater

#endif  // RDF_UPDATER_UNDO_PASS_H_
