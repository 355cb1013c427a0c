// Notification: the configured command (notify.command) runs once per event
// at or above notify.min_severity, through /bin/sh -c, with the event as one
// JSON object (events::EventToJson) and a newline on its standard input. It
// runs on a thread of its own, one at a time, each for at most `timeout`
// (then SIGKILL); a failure or timeout is logged as event 927, which is never
// itself notified. At most `max_queue` events wait; beyond that the oldest
// are dropped and counted (the next run's event carries no count: see
// dropped()). Running a command makes the process ignore SIGPIPE.
#ifndef RDF_MONITOR_NOTIFIER_H_
#define RDF_MONITOR_NOTIFIER_H_

#include <cstdint>
#include <deque>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/events/log.h"
#include "event.pb.h"

namespace rdf::monitor {

class Notifier {
 public:
  Notifier(std::string command, proto::Severity min_severity, events::EventLog* log,
           absl::Duration timeout = absl::Seconds(10), size_t max_queue = 1000);
  ~Notifier();  // waits for the running command (at most `timeout`)

  // Queues `event` when it is at or above the minimum severity.
  void Offer(const proto::Event& event);

  uint64_t runs() const;
  uint64_t failures() const;
  uint64_t dropped() const;

  // Runs `command` once with `input` on stdin; "" when it exited 0,
  // otherwise what went wrong. Public for tests.
  static std::string RunOnce(const std::string& command, const std::string& input,
                             absl::Duration timeout);

 private:
  void Loop();
  const std::string command_;
  const proto::Severity min_severity_;
  events::EventLog* const log_;
  const absl::Duration timeout_;
  const size_t max_queue_;
  mutable absl::Mutex mu_;
  std::deque<proto::Event> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t runs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace rdf::monitor

#endif  // RDF_MONITOR_NOTIFIER_H_
