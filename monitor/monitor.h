// rdf-monitor: runs one node's process set in the foreground, restarts what
// dies, gathers status, answers rdfcom on the control port (CURVE, like the
// audit link), exports Prometheus metrics, and runs the notify command for
// serious events (docs/monitor.md).
#ifndef RDF_MONITOR_MONITOR_H_
#define RDF_MONITOR_MONITOR_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/events/log.h"
#include "control.pb.h"

namespace rdf::monitor {

struct MonitorOptions {
  const config::Config* config = nullptr;  // not owned
  const proto::NodeConfig* node = nullptr;  // one of config's nodes
  std::string bin_dir;                      // where rdf-receiver etc. are
  events::EventLog* events = nullptr;       // the monitor's own event log
  // SIGTERM grace per stop phase before SIGKILL.
  absl::Duration stop_grace = absl::Seconds(15);
  // Whether to start the process set at once (false: wait for rdfcom start).
  bool start = true;
  // Tests only: how signals reach the children (Supervisor::set_signal_sender);
  // empty: kill(2).
  std::function<int(pid_t, int)> send_signal;
};

class Monitor {
 public:
  // Ends leftover processes of an earlier monitor, binds the control port
  // (and the metrics port when configured). kUnavailable when a port cannot
  // be bound; key errors as curve::ReadNodeKeyPair.
  static absl::StatusOr<std::unique_ptr<Monitor>> Create(const MonitorOptions& options);
  ~Monitor();

  // Starts the set (unless options.start is false), then supervises and
  // serves until *stop; then stops the set in safe order and returns.
  absl::Status Run(const std::atomic<bool>* stop);

  // Answers one control request as the control port does once the request's
  // key is allowed it (monitor/control_access.h): an in-process caller is
  // trusted, with no key check.
  proto::ControlReply Handle(const proto::ControlRequest& request);

  struct Impl;

 private:
  explicit Monitor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::monitor

#endif  // RDF_MONITOR_MONITOR_H_
