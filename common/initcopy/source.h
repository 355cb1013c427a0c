// The primary node's side of the online initial copy (docs/rdfcom.md
// "initialize"): hold the audit, snapshot every protected volume while tmf
// commits, scan the audit, and at the end move the pin to the start ASN (or
// put it back). Used by rdfcom's local mode (snapshots straight into the
// backup's staging folder) and by the primary's monitor (snapshots into
// <primary data_dir>/initialize/outgoing/, read by rdfcom in chunks).
//
//   Source s(options);
//   absl::StatusOr<proto::CopyPlan> plan = s.Begin();  // pin held
//   ... the backup installs the copies ...
//   s.Commit(plan->start_asn());                       // or s.Abort()
//
// Threads: one Source is used by one thread at a time (the monitor runs
// Begin in a worker and the rest on its control loop, one after the other).
#ifndef RDF_COMMON_INITCOPY_SOURCE_H_
#define RDF_COMMON_INITCOPY_SOURCE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "initialize.pb.h"

namespace rdf::initcopy {

struct SourceOptions {
  const config::Config* config = nullptr;        // not owned
  const proto::NodeConfig* primary = nullptr;    // one of config's nodes
  FileSystem* fs = FileSystem::Default();
  // Where the snapshots go: <out_dir>/<VOL>/data.mdb (VOL without '$').
  // Emptied by Begin; removed by Commit and Abort unless keep_out_dir.
  std::string out_dir;
  bool keep_out_dir = false;  // local mode: out_dir is the backup's staging
  // How long to wait after writing the pin before listing the audit, so a
  // retention pass of tmf that read the old pin has finished.
  absl::Duration pin_settle = absl::Milliseconds(500);
  std::function<void(const std::string&)> progress;  // lines for people; may be empty
};

// OK when no process holds the primary's extractor lock; otherwise
// kFailedPrecondition naming its pid and `rdfcom stop`.
absl::Status CheckExtractorStopped(const proto::NodeConfig& primary);

// <dir>/<VOL>/data.mdb: where a volume's snapshot (or staged copy) is.
std::string SnapshotPath(const std::string& dir, const std::string& volume);

class Source {
 public:
  explicit Source(SourceOptions options);

  // Saves the pin and audit/pin.released, holds the audit (pin just below
  // the first kept record, pin.released removed), snapshots each protected
  // volume (mdb_env_copy2, compacting) into out_dir and scans the audit.
  // On failure the pin is put back and out_dir removed before it returns.
  // REQUIRES: called once.
  absl::StatusOr<proto::CopyPlan> Begin();

  // The pin at start_asn - 1, then checks tmf did not release it and the
  // audit from start_asn is still there (kFailedPrecondition otherwise).
  // REQUIRES: Begin succeeded.
  absl::Status Commit(uint64_t start_asn);

  // Puts the pin and pin.released back as Begin found them (when Begin got
  // that far) and removes out_dir. Safe to call more than once.
  absl::Status Abort();

 private:
  struct SavedPin {
    std::optional<std::string> pin, released;
  };
  void Progress(const std::string& line) const;
  std::string ReleasedPath() const;
  absl::Status SavePin();
  absl::Status RestorePin();
  absl::Status HoldAudit(uint64_t* first_segment);
  absl::Status Snapshot(proto::CopyPlan* plan);
  absl::Status Scan(uint64_t first_segment, proto::CopyPlan* plan);
  absl::Status CheckPinHeld();
  absl::Status Steps(proto::CopyPlan* plan);
  absl::Status RemoveOutDir();

  SourceOptions o_;
  const std::string audit_dir_;
  std::optional<SavedPin> saved_;
};

}  // namespace rdf::initcopy

#endif  // RDF_COMMON_INITCOPY_SOURCE_H_
