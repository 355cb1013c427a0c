// rdfcom initialize: the online initial copy (docs/rdfcom.md "initialize").
//
// Gives the backup a consistent copy of every protected primary volume while
// the application keeps committing on the primary, and the position from
// which replication then continues, so that nothing is missing or doubled:
//
//  1. Preconditions: the backup's process set (receiver, updaters, purger,
//     takeover) and the primary's extractor do not run (their locks are
//     free). tmf (the application) may run. Both nodes' data directories
//     must be reachable here as files (loopback, or a shared file system).
//  2. Marks the backup "initialize in progress" (its receiver and updaters
//     refuse to start until the end), then holds the primary's audit: the
//     pin goes to just before the first retained record and
//     audit/pin.released is removed, so tmf keeps every segment it has.
//  3. Copies each protected volume (mdb_env_copy2, MDB_CP_COMPACT: one
//     consistent LMDB snapshot while tmf writes) into
//     <backup>/initialize/staging/, and reads tmf's applied ASN S_v there.
//  4. Scans the audit (rdfcom/initialize_scan.h): per volume its snapshot
//     ASN, its open transactions and its DDL; the start ASN R.
//  5. Prepares each copy: files that are not shipped are dropped, the DDL up
//     to the snapshot applied, tmf's and any updater's bookkeeping removed
//     from __meta (the updater starts from the beginning of its new image
//     trail).
//  6. Replaces the backup's image trails, takeover/ and protected volumes by
//     the copies; writes the state (common/initial_copy.h) durably; clears
//     the in-progress mark.
//  7. Moves the pin to R - 1 and checks the audit from R is still there;
//     logs event 982 on the backup (process "initialize").
//
// A failure before step 6 leaves the backup as it was and restores the pin;
// a failure during or after it leaves the mark, and initialize is run again.
#ifndef RDF_RDFCOM_INITIALIZE_H_
#define RDF_RDFCOM_INITIALIZE_H_

#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "initialize.pb.h"

namespace rdf::rdfcom {

struct InitializeOptions {
  const config::Config* config = nullptr;  // not owned
  std::ostream* progress = nullptr;        // progress lines (may be null)
  // How long to wait after writing the pin before listing the audit, so a
  // retention pass of tmf that read the old pin has finished.
  absl::Duration pin_settle = absl::Milliseconds(500);
};

// The state written to <backup data_dir>/initialize/state.
absl::StatusOr<proto::InitialCopy> RunInitialize(const InitializeOptions& options);

// The summary printed by `rdfcom initialize`.
std::string InitializeSummaryText(const proto::InitialCopy& state);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_INITIALIZE_H_
