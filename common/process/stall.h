// Honest status (docs/architecture.md, invariant 8): a stage whose position does not
// advance while work waits for it is stalled, and must be shown so, with the
// reason, however healthy its own state says it is. The monitor feeds each
// process's published status to a StallDetector of its own on every refresh;
// the detector needs nothing but the statuses and the time.
//
// What "position" and "work waits" mean, per process (ProgressOf):
//   extractor  acked_asn (what the backup confirmed durable); waits while the
//              primary's audit end is above it
//   receiver   save_point_asn; waits while the primary's audit end (from its
//              batches and heartbeats) is above it
//   updater-*  applied_asn; waits while the save point is above it, or while
//              it retries a storage error
//   purger     purged_segments; waits while its passes fail (RETRYING)
//   tmf        applied_asn; waits while committed changes wait for the
//              volumes, or while its audit sync or applier fails
// A process in an error state (RETRYING, DISK_FULL, AUDIT_DAMAGED,
// AUDIT_MISSING, AUDIT_SYNC_FAILING, APPLY_RETRYING, REFUSING_COMMITS) always
// counts as waiting.
#ifndef RDF_COMMON_PROCESS_STALL_H_
#define RDF_COMMON_PROCESS_STALL_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "status.pb.h"

namespace rdf::status {

// The default of how long a position may stand still while work waits.
inline constexpr absl::Duration kDefaultStallAfter = absl::Seconds(10);

struct Progress {
  uint64_t position = 0;
  bool waiting = false;
  std::string why;  // what waits, e.g. "applied through ASN 10, save point 20"
};
Progress ProgressOf(const proto::ProcessStatus& st);

class StallDetector {
 public:
  explicit StallDetector(absl::Duration after = kDefaultStallAfter) : after_(after) {}

  struct Verdict {
    bool stalled = false;
    bool began = false;   // the stall began with this observation (log it once)
    bool ended = false;   // a stall ended with this observation
    int64_t for_ms = 0;   // how long the position has stood while work waited
    std::string reason;   // Progress::why, then the process's last_error
  };
  // The newest status of one process, observed at `now` (monotonic).
  Verdict Observe(const proto::ProcessStatus& st, absl::Time now);

 private:
  const absl::Duration after_;
  bool seen_ = false;
  uint64_t position_ = 0;
  absl::Time since_;  // when the position last advanced, or work last did not wait
  bool stalled_ = false;
};

}  // namespace rdf::status

#endif  // RDF_COMMON_PROCESS_STALL_H_
