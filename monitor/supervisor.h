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

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/events/log.h"
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

// When a running child counts as hung (docs/monitor.md, "Hung processes").
struct LivenessOptions {
  // A child whose status file is older than this is HUNG (0: never).
  absl::Duration hung_after = absl::ZeroDuration();
  // A HUNG child whose status is older than this is killed (SIGKILL) and
  // restarted like one that died (0: never). Only a child that published at
  // least once since it started is killed: a slow start is shown, not cut.
  absl::Duration restart_after = absl::ZeroDuration();
};

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

  // How signals reach children: ::kill unless a test replaces it (to play a
  // child that SIGKILL does not end at once, as one in an uninterruptible
  // wait).
  using SignalSender = std::function<int(pid_t pid, int signal)>;
  void set_signal_sender(SignalSender send) { send_signal_ = std::move(send); }

  void set_liveness(const LivenessOptions& liveness) { liveness_ = liveness; }

  // Reaps children that exited and (re)starts what is due. Call often.
  // A child that exits while STOPPED or HELD (one that outlived Stop) is
  // never restarted: it stays as it was asked to be.
  void Tick();

  // Starts every process (or only those `which` selects) that is not
  // running, clearing STOPPED/HELD. A child that outlived Stop and still
  // runs is started anew once it exits.
  void Start(const std::function<bool(const ProcessSpec&)>& which = nullptr);
  // Stops the selected processes (all when empty) in phase order, SIGTERM
  // then SIGKILL after the grace, and marks them `held ? HELD : STOPPED`.
  // kDeadlineExceeded naming each process (and pid) still alive a grace
  // after SIGKILL, with event 929 for each; such a child shows as
  // STOP_FAILED until it exits, and is not restarted when it does.
  absl::Status Stop(const std::function<bool(const ProcessSpec&)>& which, bool held,
                    const std::string& reason);

  // Judges each running child by the time its status was last published
  // (`last_published`: nullopt when it never was), per set_liveness: marks
  // it HUNG (event 983, once per episode), back to RUNNING when it publishes
  // again, and kills a HUNG child past restart_after (event 984; Tick then
  // restarts it with the usual backoff).
  using LastPublished = std::function<std::optional<absl::Time>(const ProcessSpec&)>;
  void CheckLiveness(const LastPublished& last_published, absl::Time now);

  // Whether every process not stopped or held on purpose is running.
  bool AllRunning() const;
  bool AnyRunning() const;

  // The table for status (status files are filled in by the caller).
  std::vector<proto::ManagedProcess> Snapshot() const;

 private:
  struct Child {
    ProcessSpec spec;
    std::string state = "STOPPED";  // RUNNING, HUNG, BACKOFF, STOPPED, HELD
    pid_t pid = 0;
    absl::Time started;
    absl::Time next_start;
    uint32_t deaths_in_a_row = 0;
    uint32_t restarts = 0;
    std::vector<absl::Time> recent_deaths;  // for crash-loop detection
    bool crash_loop_reported = false;
    std::string last_exit;
    bool stop_failed = false;  // outlived Stop; still running (STOPPED/HELD)
    bool hung_killed = false;  // SIGKILLed by CheckLiveness, not yet reaped
  };
  Supervisor(const config::Config& config, const proto::NodeConfig& node,
             events::EventLog* events, absl::Duration grace);
  void Launch(Child& c);
  void Reap();
  // The child exited while stopped or held: logged, never restarted.
  void ReapStopped(Child& c, pid_t pid);
  // The child's status is `age` old: HUNG, recovered, or killed.
  void JudgeLiveness(Child& c, std::optional<absl::Time> published, absl::Time now);
  std::string lock_dir_;
  events::EventLog* events_;
  absl::Duration grace_;
  Gate gate_;
  SignalSender send_signal_ = [](pid_t pid, int sig) { return kill(pid, sig); };
  LivenessOptions liveness_;
  std::vector<Child> children_;
};

}  // namespace rdf::monitor

#endif  // RDF_MONITOR_SUPERVISOR_H_
