// One writer per file: each process holds an exclusive flock on
// "<data_dir>/locks/<name>.lock" for its lifetime, with its pid written
// inside, so a second copy refuses to start and a monitor can find (and end)
// a leftover holder by pid.
#ifndef RDF_COMMON_PROCESS_LOCK_H_
#define RDF_COMMON_PROCESS_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace rdf {

class ProcessLock {
 public:
  // Takes the lock or fails with kFailedPrecondition naming the holder's
  // pid ("already running as pid 1234"). Creates the directory if missing.
  static absl::StatusOr<std::unique_ptr<ProcessLock>> Acquire(
      const std::string& lock_dir, const std::string& name);
  ~ProcessLock();  // releases (the file stays, with a stale pid)

  const std::string& path() const { return path_; }

  // The pid recorded in a lock file whose lock is currently held, or 0 when
  // nobody holds it.
  static int HolderPid(const std::string& lock_dir, const std::string& name);

 private:
  ProcessLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace rdf

#endif  // RDF_COMMON_PROCESS_LOCK_H_
