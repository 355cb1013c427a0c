// rdfcom takeover: the backup becomes the primary (docs/takeover.md).
//
//  1. Writes the takeover epoch durably (or reuses the epoch of an
//     unfinished takeover): from then on the receiver refuses the old
//     primary.
//  2. Waits for the running receiver to fix its final save point, or runs
//     `rdf-receiver --finalize` when none runs.
//  3. Stops the running updaters and runs `rdf-updater --takeover` for every
//     protected volume in parallel: REDO up to the final save point, then
//     UNDO of the transactions without an outcome.
//     An updater that fails, or makes no progress for `stall_timeout`
//     (then it is killed), fails the takeover (726, 725) naming the volume
//     and its last error: a takeover always ends.
//  4. Writes takeover/report.json and report.txt; events 970, 971, 724, 735
//     (725 and 726 on failure).
// After `rdfcom initialize`, while the backup is still catching up (the
// save point below some volume's snapshot ASN), such a volume would keep
// work the backup never received and half of a lost transaction: takeover
// refuses unless `force`, and a forced one names each such volume and the
// transactions concerned in the report and in event 987.
// Restartable: a takeover that was killed or failed is issued again and
// finishes the job; a completed one prints its report again.
#ifndef RDF_RDFCOM_TAKEOVER_H_
#define RDF_RDFCOM_TAKEOVER_H_

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "imagetrail.pb.h"
#include "initialize.pb.h"
#include "status.pb.h"
#include "takeover.pb.h"

namespace rdf::rdfcom {

struct TakeoverOptions {
  const config::Config* config = nullptr;  // not owned
  std::string node;       // the BACKUP node; empty: the configuration's backup
  std::string bin_dir;    // where rdf-receiver and rdf-updater are
  std::ostream* progress = nullptr;  // progress lines (may be null)
  // Take over even when a volume is inconsistent (see the file comment).
  bool force = false;
  // An updater whose status shows no progress this long is killed and the
  // takeover fails (docs/takeover.md). REQUIRES: > 0.
  absl::Duration stall_timeout = absl::Seconds(60);
};

absl::StatusOr<proto::TakeoverReport> RunTakeover(const TakeoverOptions& options);

// The volumes of `copy` (the backup's initial copy state) that a takeover
// at save point `sp` leaves inconsistent: snapshot_asn > sp.asn. For each,
// the lost transactions (sp.open) that may stay half applied there: begun
// at or below the snapshot (first_asn <= snapshot_asn) and not open in the
// copy (not in open_txids), so the updater skipped their records as "in
// the copy" (a superset: takeover narrows it with TransactionsWithDataIn).
// In configuration order of `copy`; empty when all is well.
std::vector<proto::InconsistentVolume> InconsistentVolumes(const proto::InitialCopy& copy,
                                                           const proto::SavePoint& sp);

// Of `candidates`, the transactions with a DATA record in image trail
// `trail` (segments in folder `dir`) at an ASN in [from_asn, through_asn],
// ascending: InconsistentVolumes' half-applied candidates narrowed to those
// that have records on the volume that the copy holds. Reads that part of
// the trail forward; memory is the candidates. Errors: the trail's
// (kDataLoss for damage).
absl::StatusOr<std::vector<uint64_t>> TransactionsWithDataIn(
    FileSystem* fs, const std::string& dir, const std::string& trail, uint64_t from_asn,
    uint64_t through_asn, const absl::flat_hash_set<uint64_t>& candidates);

// Whether a takeover updater still makes progress, from its published
// status (one per poll). Progress is a change of state, applied ASN, record
// or batch count, or of the time of its last progress (time_us -
// last_progress_age_ms: undo batches move only that). Not thread-safe.
class UpdaterProgressWatch {
 public:
  UpdaterProgressWatch(absl::Duration limit, absl::Time started)
      : limit_(limit), last_progress_(started) {}
  // `st`: the updater's status now, or null when it has published none
  // (the caller passes only a status of this updater process: its pid).
  void Observe(absl::Time now, const proto::ProcessStatus* st);
  // No progress for `limit` up to `now`.
  bool Stalled(absl::Time now) const { return now - last_progress_ >= limit_; }
  // Why, for the operator: "no progress for 1m (state RETRYING, applied
  // ASN 120): <last error>".
  std::string Cause(absl::Time now) const;

 private:
  absl::Duration limit_;
  absl::Time last_progress_;
  std::optional<proto::ProcessStatus> seen_;
  int64_t seen_progress_us_ = 0;
};

// The human-readable report (report.txt).
std::string TakeoverReportText(const proto::TakeoverReport& r);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_TAKEOVER_H_
