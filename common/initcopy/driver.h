// The driver of the online initial copy, `rdfcom initialize` (docs/rdfcom.md
// "initialize"; rdfcom/main.cc only parses its flags and prints).
//
// Gives the backup a consistent copy of every protected primary volume while
// the application keeps committing on the primary, and the position from
// which replication then continues, so that nothing is missing or doubled.
// The node-side steps are source.h (the primary: hold the audit, snapshot,
// scan, move the pin) and target.h (the backup: mark, stage, prepare,
// install, write the state), served by each monitor through service.h;
// this file picks where they run and drives them.
//
// Modes:
//  - through the monitors (the normal case, the nodes on different
//    machines): both monitors answer STATUS. rdfcom asks the backup's
//    monitor to begin (INIT_TARGET_BEGIN: its set is stopped, the mark set,
//    staging empty), the primary's to snapshot and scan (INIT_SOURCE_BEGIN,
//    polled), relays every snapshot in chunks of at most 512 KiB with their
//    CRC32C (INIT_SOURCE_READ -> INIT_TARGET_WRITE), asks the backup to
//    install (INIT_TARGET_COMMIT, polled) and the primary to move its pin to
//    the start ASN (INIT_SOURCE_END). rdfcom opens no file of either node.
//  - local files (a fallback): neither monitor answers and both data
//    directories exist here; rdfcom runs both sides itself, the snapshots
//    going straight into the backup's staging folder.
//  Otherwise it refuses, naming the monitor to start.
//
// Failures: before the backup installs, both sides are aborted (the pin and
// audit/pin.released put back, the staging and the mark removed; a backup
// monitor that died keeps the mark until the next initialize). A failure
// while or after the backup installs leaves the mark and the pin at the
// start ASN; initialize is run again.
#ifndef RDF_COMMON_INITCOPY_DRIVER_H_
#define RDF_COMMON_INITCOPY_DRIVER_H_

#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/net/control_client.h"
#include "initialize.pb.h"

namespace rdf::initcopy {

struct DriverOptions {
  const config::Config* config = nullptr;  // not owned
  std::ostream* progress = nullptr;        // progress lines (may be null)
  // Local mode: how long to wait after writing the pin before listing the
  // audit, so a retention pass of tmf that read the old pin has finished.
  absl::Duration pin_settle = absl::Milliseconds(500);
  // How rdfcom reaches the monitors: `probe` for the first STATUS of each
  // (short), `call` for the rest. Empty: CallMonitor with 3 s, and a
  // MonitorChannel per node with 15 s (every request is short: the long
  // steps are polled).
  control::ControlCall probe, call;
  // Chunk size asked of the primary (at most 512 KiB), and a pause after
  // each chunk (tests slow a copy down with it).
  uint32_t chunk_bytes = 512 << 10;
  absl::Duration chunk_pause = absl::ZeroDuration();
  // Between polls of INIT_SOURCE_BEGIN / INIT_TARGET_COMMIT.
  absl::Duration poll_interval = absl::Milliseconds(100);
};

// The state written to <backup data_dir>/initialize/state.
absl::StatusOr<proto::InitialCopy> Drive(const DriverOptions& options);

// The summary printed by `rdfcom initialize`.
std::string SummaryText(const proto::InitialCopy& state);

}  // namespace rdf::initcopy

#endif  // RDF_COMMON_INITCOPY_DRIVER_H_
