// The backup node's side of the online initial copy (docs/rdfcom.md
// "initialize"): mark the backup in progress, receive the copies into
// <backup data_dir>/initialize/staging/, prepare them with the primary's
// plan (common/initcopy/source.h), replace the backup's volumes, image
// trails and takeover state by them, and write the state
// (common/state/initial_copy.h). Used by rdfcom's local mode (the primary's side
// writes the staging folder directly) and by the backup's monitor (rdfcom
// appends chunks with AppendChunk).
//
//   Target t(config, backup, fs);
//   t.Begin("rdfcom initialize (pid 12) started ...");
//   ... the snapshots arrive in t.staging() ...
//   absl::StatusOr<proto::InitialCopy> state = t.Commit(plan, partial_state);
//   // on any failure: t.Abort()
//
// A failure before Commit starts replacing the backup's data leaves the
// backup as it was once Abort ran (no staging, no mark); one after it
// leaves the mark (installing() is true), and initialize must run again.
#ifndef RDF_COMMON_INITCOPY_TARGET_H_
#define RDF_COMMON_INITCOPY_TARGET_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "common/events/log.h"
#include "initialize.pb.h"

namespace rdf::initcopy {

// How a failed commit that left the backup as it was ends its message
// (rdfcom then puts the primary's pin back; otherwise it keeps the pin at
// the start ASN, which a backup that did install needs).
inline constexpr char kBackupUnchanged[] = "the backup was not changed";

// OK when no process of the backup's set (receiver, updaters, purger,
// takeover) holds its lock; otherwise kFailedPrecondition naming it and
// `rdfcom stop`.
absl::Status CheckBackupStopped(const config::Config& config, const proto::NodeConfig& backup);

// Event 982 on `log` (the backup's, process "initialize") for `state`.
void LogInitialized(events::EventLog* log, const proto::InitialCopy& state);

class Target {
 public:
  // Not owned; all must outlive the Target.
  Target(const config::Config& config, const proto::NodeConfig& backup, FileSystem* fs);

  // Writes the in-progress mark (with `who` in it) and empties staging().
  absl::Status Begin(const std::string& who);

  // <backup data_dir>/initialize/staging: SnapshotPath(staging(), volume)
  // is where each volume's copy goes.
  const std::string& staging() const { return staging_; }

  // Checks each staged copy has the plan's size and syncs it, prepares it
  // (drops files that are not shipped, applies the plan's DDL, removes
  // tmf's, updaters' and takeover's bookkeeping from __meta), replaces the
  // backup's volumes, image trails and takeover state, writes the state
  // (`partial` with number, backup_node, start ASN, volumes, completed_us
  // and duration_ms filled in: duration from partial.started_us) and clears
  // the mark. Returns the state written. Right before it replaces anything
  // it checks CheckBackupStopped again: kFailedPrecondition naming the
  // running process, with the backup unchanged (Abort cleans up).
  absl::StatusOr<proto::InitialCopy> Commit(const proto::CopyPlan& plan,
                                            proto::InitialCopy partial);

  // Before Commit began replacing data: removes staging and the mark. After:
  // leaves both (the backup is incomplete) and says so (kFailedPrecondition).
  absl::Status Abort();

  // Commit has begun replacing the backup's data.
  bool installing() const { return installing_; }

 private:
  absl::Status CheckStaged(const proto::VolumePlan& v);
  absl::Status Prepare(const proto::VolumePlan& v, proto::VolumeCopy* out);
  absl::Status Install();

  const config::Config& cfg_;
  const proto::NodeConfig& backup_;
  FileSystem* fs_;
  const std::string staging_;
  bool installing_ = false;
};

}  // namespace rdf::initcopy

#endif  // RDF_COMMON_INITCOPY_TARGET_H_
