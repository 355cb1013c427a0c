// Starting and waiting for rdf's own processes (rdfcom takeover runs the
// receiver and updaters; the monitor runs a node's process set).
#ifndef RDF_COMMON_BASE_SUBPROCESS_H_
#define RDF_COMMON_BASE_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rdf {

// The directory of the running executable (build/bin/ holds every rdf
// executable, so siblings are found there).
std::string ExecutableDir();

// fork + exec of argv[0] with argv. With `die_with_parent`, the child gets
// SIGKILL when the calling thread's process dies (PR_SET_PDEATHSIG). With
// `quiet_stdout` its stdout goes to /dev/null (stderr is inherited).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, bool die_with_parent,
                            bool quiet_stdout = false);

// How a child ended.
struct ExitInfo {
  int code = 0;    // exit code when it exited
  int signal = 0;  // the signal that killed it, or 0
  bool ok() const { return code == 0 && signal == 0; }
  std::string ToString() const;  // "exit status 1", "killed by SIGKILL"
};

// Waits up to `timeout` for child `pid`; nullopt when it is still running.
std::optional<ExitInfo> WaitChild(pid_t pid, absl::Duration timeout);

// Whether process `pid` exists.
bool ProcessAlive(pid_t pid);

// Sends SIGTERM to `pid` and waits up to `grace` for `gone()` to be true
// (polling), then SIGKILL and waits up to `grace` again. Returns whether
// `gone()` became true.
bool TerminateProcess(pid_t pid, absl::Duration grace, const std::function<bool()>& gone);

}  // namespace rdf

#endif  // RDF_COMMON_BASE_SUBPROCESS_H_
