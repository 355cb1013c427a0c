// rdf-monitor: runs one node's process set (see monitor.h, docs/monitor.md).
#include <csignal>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"
#include "common/events/catalog.h"
#include "common/process/main.h"
#include "monitor/monitor.h"

int main(int argc, char** argv) {
  bool no_start = false;
  rdf::ProcessMainSpec spec;
  spec.program = "rdf-monitor";
  spec.usage = "rdf-monitor --config FILE --node NAME [--no-start]";
  spec.description =
      "Runs the node's process set in the foreground: on the primary the\n"
      "extractor; on the backup the receiver, one updater per protected volume\n"
      "and the purger. Restarts a process that dies (backoff 0.5 s doubling to\n"
      "30 s; events 920-923), kills and restarts one whose status goes stale (hung;\n"
      "983, 984), ends leftovers of an earlier monitor by pid, answers rdfcom on\n"
      "the node's control_port (CURVE; operator keys change state) and serves\n"
      "Prometheus metrics on its metrics_port. SIGTERM or SIGINT stops the set\n"
      "in safe order (purger, updaters, receiver), then the monitor. Its\n"
      "children die with it.";
  spec.role = rdf::proto::NODE_ROLE_UNSPECIFIED;
  spec.add_options = [&](rdf::cli::Parser& p) {
    p.AddBool("no-start", &no_start, "do not start the process set until `rdfcom start`");
    p.Require("node");
  };
  spec.run = [&](const rdf::config::Config& cfg, const std::string& node,
                 const std::atomic<bool>* stop) -> absl::Status {
    std::signal(SIGPIPE, SIG_IGN);
    RDF_ASSIGN_OR_RETURN(
        rdf::ProcessBase base,
        rdf::StartProcess(cfg, node, rdf::proto::NODE_ROLE_UNSPECIFIED, "monitor",
                          rdf::FileSystem::Default(), rdf::Clock::Real()));
    // The monitor logs one 920/921/923 per process of the set at once:
    // reopen its log with a burst that fits a whole set before rate limiting.
    base.events.reset();
    rdf::events::EventLogOptions eo = rdf::EventLogOptionsFor(
        cfg, *base.node, "monitor", rdf::FileSystem::Default(), rdf::Clock::Real());
    eo.repeat_burst = 64;
    RDF_ASSIGN_OR_RETURN(base.events, rdf::events::EventLog::Open(eo));
    rdf::monitor::MonitorOptions o;
    o.config = &cfg;
    o.node = base.node;
    o.bin_dir = rdf::ExecutableDir();
    o.events = base.events.get();
    o.start = !no_start;
    RDF_ASSIGN_OR_RETURN(std::unique_ptr<rdf::monitor::Monitor> m,
                         rdf::monitor::Monitor::Create(o));
    base.events->Log(rdf::events::kProcessReady,
                     {{"control_port", absl::StrCat(base.node->control_port())},
                      {"metrics_port", absl::StrCat(base.node->metrics_port())}});
    absl::Status s = m->Run(stop);
    base.events->Log(rdf::events::kProcessStopping, {{"reason", "signal"}});
    return s;
  };
  return rdf::ProcessMain(argc, argv, spec);
}
