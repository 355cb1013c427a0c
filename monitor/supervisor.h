// The monitor's process table: which processes a node runs, starting them,
// noticing deaths, restarting with capped backoff, and stopping them in a
// safe order (docs/monitor.md).
//
// Single-threaded: the monitor's main loop calls every method. Children are
// started with PR_SET_PDEATHSIG (they die with the monitor's main thread),
// and each child holds its own lock file (locks/<name>.lock), so no two
// copies of a process can run; on Create, leftover holders of those locks
// (from a monitor that was SIGKILLed before its children noticed) are ended
// by pid.
#ifndef RDF_MONITOR_SUPERVISOR_H_
#define RDF_MONITOR_SUPERVISOR_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/event_log.h"
#include "control.pb.h"

namespace rdf::monitor {

// One process of a node's set.
struct ProcessSpec {
  std::string name;     // lock and status name: "receiver", "updater-DATA01"
  std::string program;  // "rdf-updater"
  std::string volume;   // "$DATA01" for updaters
  std::vector<std::string> argv;
  // Stop order: lower phases stop first (purger, then updaters, then the
  // receiver); the start order is the reverse.
  int phase = 0;
  bool updater() const { return program == "rdf-updater"; }
};

// The process set of `node`: on the primary the extractor; on the backup
// the receiver, one updater per protected volume and the purger. `bin_dir`
// holds the executables.
std::vector<ProcessSpec> ProcessSet(const config::Config& config, const proto::NodeConfig& node,
                                    const std::string& bin_dir);

// Delay before restart number `deaths` (1 = first death in a row): 0.5 s,
// doubling, at most 30 s.
absl::Duration RestartBackoff(uint32_t deaths);

class Supervisor {
 public:
  // Ends leftover lock holders of `specs` (SIGTERM, then SIGKILL after
  // `grace`), logging event 923 for each. Starts nothing.
  static absl::StatusOr<std::unique_ptr<Supervisor>> Create(const config::Config& config,
                                                            const proto::NodeConfig& node,
                                                            std::vector<ProcessSpec> specs,
                                                            events::EventLog* events,
                                                            absl::Duration grace);
  ~Supervisor();  // kills (SIGKILL) children still running

  // Whether a process may be (re)started now; the monitor holds updaters and
  // the purger from the moment a takeover begins.
  using Gate = std::function<bool(const ProcessSpec&)>;
  void set_gate(Gate gate) { gate_ = std::move(gate); }

  // Reaps children that exited and (re)starts what is due. Call often.
  void Tick();

  // Starts every process (or only those `which` selects) that is not
  // running, clearing STOPPED/HELD.
  void Start(const std::function<bool(const ProcessSpec&)>& which = nullptr);
  // Stops the selected processes (all when empty) in phase order, SIGTERM
  // then SIGKILL after the grace, and marks them `held ? HELD : STOPPED`.
  void Stop(const std::function<bool(const ProcessSpec&)>& which, bool held,
            const std::string& reason);

  // Whether every process not stopped or held on purpose is running.
  bool AllRunning() const;
  bool AnyRunning() const;

  // The table for status (status files are filled in by the caller).
  std::vector<proto::ManagedProcess> Snapshot() const;

 private:
  struct Child {
    ProcessSpec spec;
    std::string state = "STOPPED";  // RUNNING, BACKOFF, STOPPED, HELD
    pid_t pid = 0;
    absl::Time started;
    absl::Time next_start;
    uint32_t deaths_in_a_row = 0;
    uint32_t restarts = 0;
    std::vector<absl::Time> recent_deaths;  // for crash-loop detection
    bool crash_loop_reported = false;
    std::string last_exit;
  };
  Supervisor(const config::Config& config, const proto::NodeConfig& node,
             events::EventLog* events, absl::Duration grace);
  void Launch(Child& c);
  void Reap();
  std::string lock_dir_;
  events::EventLog* events_;
  absl::Duration grace_;
  Gate gate_;
  std::vector<Child> children_;
};

}  // namespace rdf::monitor

#endif  // RDF_MONITOR_SUPERVISOR_H_
