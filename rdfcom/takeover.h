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
//  4. Writes takeover/report.json and report.txt; events 970, 971, 724, 735
//     (725 and 726 on failure).
// Restartable: a takeover that was killed or failed is issued again and
// finishes the job; a completed one prints its report again.
#ifndef RDF_RDFCOM_TAKEOVER_H_
#define RDF_RDFCOM_TAKEOVER_H_

#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "takeover.pb.h"

namespace rdf::rdfcom {

struct TakeoverOptions {
  const config::Config* config = nullptr;  // not owned
  std::string node;       // the BACKUP node; empty: the configuration's backup
  std::string bin_dir;    // where rdf-receiver and rdf-updater are
  std::ostream* progress = nullptr;  // progress lines (may be null)
};

absl::StatusOr<proto::TakeoverReport> RunTakeover(const TakeoverOptions& options);

// The human-readable report (report.txt).
std::string TakeoverReportText(const proto::TakeoverReport& r);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_TAKEOVER_H_
