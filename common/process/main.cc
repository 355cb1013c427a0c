#include "common/process/main.h"

#include "absl/synchronization/mutex.h"

#include <csignal>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace rdf {

events::EventLogOptions EventLogOptionsFor(const config::Config& config,
                                           const proto::NodeConfig& node,
                                           const std::string& process, FileSystem* fs,
                                           Clock* clock) {
  events::EventLogOptions eo;
  eo.dir = config::EventDir(node);
  eo.node = node.name();
  eo.process = process;
  eo.fs = fs;
  eo.clock = clock;
  eo.segment_bytes = config.proto.trail().event_segment_bytes();
  eo.segments_kept = config.proto.trail().event_segments_kept();
  return eo;
}

absl::StatusOr<ProcessBase> StartProcess(const config::Config& config,
                                         absl::string_view node_name, proto::NodeRole role,
                                         const std::string& process, FileSystem* fs,
                                         Clock* clock) {
  // Debian's Abseil checks every Mutex acquisition against a lock-order
  // graph keyed by address, which reports false cycles once a mutex's memory
  // is reused by another; rdf's lock order is fixed and tested.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ProcessBase b;
  b.node = config.FindNode(std::string(node_name));
  if (b.node == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("no node named '", node_name, "' in ", config.path));
  }
  if (role != proto::NODE_ROLE_UNSPECIFIED && b.node->role() != role) {
    return absl::InvalidArgumentError(absl::StrCat(
        "node '", node_name, "' is not the ", role == proto::PRIMARY ? "primary" : "backup",
        " node of ", config.path, "; the ", process, " runs on the ",
        role == proto::PRIMARY ? "primary" : "backup"));
  }
  RDF_ASSIGN_OR_RETURN(b.lock, ProcessLock::Acquire(config::LockDir(*b.node), process));
  RDF_ASSIGN_OR_RETURN(b.events,
                       events::EventLog::Open(EventLogOptionsFor(config, *b.node, process, fs, clock)));
  return b;
}

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
int Fail(const std::string& program, const absl::Status& s) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), std::string(s.message()).c_str());
  return 1;
}
}  // namespace

int ProcessMain(int argc, char** argv, const ProcessMainSpec& spec) {
  std::string config_path, node;
  cli::Parser p(spec.usage, spec.description);
  p.AddString("config", &config_path, "system configuration (text proto)");
  p.AddString("node", &node,
              absl::StrCat("node name (default: the node with role ",
                           proto::NodeRole_Name(spec.role), ")"));
  if (spec.add_options) spec.add_options(p);
  p.Require("config");
  std::vector<std::string> rest = p.Parse(argc, argv);
  if (!rest.empty()) p.Fail(absl::StrCat("unexpected argument '", rest[0], "'"));
  absl::StatusOr<config::Config> cfg = config::Load(config_path);
  if (!cfg.ok()) return Fail(spec.program, cfg.status());
  absl::StatusOr<const proto::NodeConfig*> n = config::SelectNode(*cfg, node, spec.role);
  if (!n.ok()) return Fail(spec.program, n.status());
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  absl::Status s = spec.run(*cfg, (*n)->name(), &g_stop);
  if (!s.ok()) return Fail(spec.program, s);
  return 0;
}

}  // namespace rdf
