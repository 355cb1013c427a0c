// What every rdf process does first: check that it runs on a node of the
// right role, take its lock (one copy per node), open its event log; and the
// common main(): --config/--node parsing, SIGTERM/SIGINT handling, errors on
// stderr with exit 1, usage errors with exit 2.
#ifndef RDF_COMMON_PROCESS_MAIN_H_
#define RDF_COMMON_PROCESS_MAIN_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/cli.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "common/events/log.h"
#include "common/process/lock.h"

namespace rdf {

// Event log options for `process` on `node` from the configuration.
events::EventLogOptions EventLogOptionsFor(const config::Config& config,
                                           const proto::NodeConfig& node,
                                           const std::string& process, FileSystem* fs,
                                           Clock* clock);

struct ProcessBase {
  const proto::NodeConfig* node = nullptr;
  std::unique_ptr<ProcessLock> lock;
  std::unique_ptr<events::EventLog> events;
};

// kInvalidArgument when `node_name` is not a node of `role` (any role when
// `role` is NODE_ROLE_UNSPECIFIED: the monitor) ("the
// <process> runs on the <role>"); kFailedPrecondition when another copy
// holds the lock.
absl::StatusOr<ProcessBase> StartProcess(const config::Config& config,
                                         absl::string_view node_name, proto::NodeRole role,
                                         const std::string& process, FileSystem* fs,
                                         Clock* clock);

struct ProcessMainSpec {
  std::string program;      // "rdf-receiver"
  std::string usage;        // first line of --help
  std::string description;
  proto::NodeRole role = proto::NODE_ROLE_UNSPECIFIED;  // default --node
  // Adds process-specific options (may be empty).
  std::function<void(cli::Parser&)> add_options;
  // Runs the process until *stop (SIGTERM/SIGINT).
  std::function<absl::Status(const config::Config&, const std::string& node,
                             const std::atomic<bool>* stop)>
      run;
};

int ProcessMain(int argc, char** argv, const ProcessMainSpec& spec);

}  // namespace rdf

#endif  // RDF_COMMON_PROCESS_MAIN_H_
