// rdfcom status, start, stop [--drain], update stop|start: the commands that
// talk to the monitors (docs/rdfcom.md, docs/status.md).
#ifndef RDF_RDFCOM_STATUS_CMD_H_
#define RDF_RDFCOM_STATUS_CMD_H_

#include <functional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/net/control_client.h"
#include "control.pb.h"
#include "status.pb.h"

namespace rdf::rdfcom {

using control::ControlCall;

// The system's status from both monitors' replies. A node whose monitor
// cannot be reached is marked `reachable: false` with its last known
// values: those of `last_known` when given (--watch keeps them), otherwise
// its processes' status files when its data directory is readable here.
proto::SystemStatus GatherStatus(const config::Config& config, const ControlCall& call,
                                 const proto::SystemStatus* last_known = nullptr);

// The people's form: a header (system, time, state, both nodes) and a row
// per process.
std::string StatusText(const proto::SystemStatus& s);

// "m:ss.mmm" for an RTD in ms; "-" when unknown (< 0).
std::string FormatRtd(int64_t rtd_ms);

struct StatusOptions {
  bool json = false;
  // --watch: asked before each refresh (about once a second); ends when it
  // returns false. Empty: print once.
  std::function<bool()> keep_watching;
  absl::Duration interval = absl::Seconds(1);
};

// Prints the status once or until keep_watching says stop. Printed once,
// it fails (kUnavailable, naming the node and why) when a node cannot be
// reached, after printing what is known.
absl::Status RunStatus(const config::Config& config, const ControlCall& call,
                       const StatusOptions& options, std::ostream& out);

// Sends `command` (START, STOP, UPDATE_STOP, UPDATE_START) to `nodes` (in
// that order) and prints one line per node.
absl::Status RunSimpleCommand(const config::Config& config, const ControlCall& call,
                              const std::vector<const proto::NodeConfig*>& nodes,
                              proto::ControlRequest::Command command, std::ostream& out);

struct DrainOptions {
  absl::Duration timeout = absl::Minutes(10);
  std::ostream* progress = nullptr;
};

// stop --drain: notes the primary's audit end A, waits until the receiver's
// save point and every updater have reached A (everything written so far
// shipped and applied), then stops the primary's set and the backup's set
// (event 852 with A on the backup). kDeadlineExceeded, stopping nothing,
// when that does not happen within the timeout; kFailedPrecondition when
// an updater is not running (it could never catch up).
absl::StatusOr<uint64_t> RunDrain(const config::Config& config, const ControlCall& call,
                                  const DrainOptions& options);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_STATUS_CMD_H_
