// A node's half of the initial copy, served by its monitor (docs/monitor.md
// "initialize"; monitor/monitor.cc only routes INIT_* requests here): on the primary it serves the snapshots of its volumes
// (INIT_SOURCE_*, source.h), on the backup it receives and
// installs them (INIT_TARGET_*, target.h). The driver (driver.h) relays
// the chunks from one monitor to the other.
//
// One session per node at a time, named by the request's copy_id; another
// id is refused while it lives. The long steps (the primary's snapshots and
// audit scan, the backup's prepare and install) run in a worker thread and
// are polled (INIT_SOURCE_BEGIN, INIT_TARGET_COMMIT again with the same id
// until the reply has init_ready), so the monitor's control loop keeps
// answering STATUS; every other request is short (a chunk is at most
// 512 KiB). A session that gets no request for kIdle (rdfcom died) is
// abandoned by Tick: the primary's pin is put back, the backup's staging and
// mark are removed (unless it was installing).
//
// Thread: the monitor's control loop only (the workers are internal).
#ifndef RDF_COMMON_INITCOPY_SERVICE_H_
#define RDF_COMMON_INITCOPY_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/config/config.h"
#include "common/events/log.h"
#include "control.pb.h"
#include "initialize.pb.h"

namespace rdf::initcopy {

class Service {
 public:
  static constexpr absl::Duration kIdle = absl::Seconds(120);

  // Not owned; all outlive the service. `events`: the monitor's log (835).
  Service(const config::Config& config, const proto::NodeConfig& node,
                    events::EventLog* events);
  ~Service();  // abandons a live session (waits for its worker)

  // Whether `command` is one of INIT_*.
  static bool Serves(proto::ControlRequest::Command command);

  // Answers an INIT_* request into `reply` (its ok and error too).
  // `set_stopped`: the monitor's process set is stopped (`rdfcom stop`,
  // --no-start), which a new session requires.
  void Handle(const proto::ControlRequest& request, bool set_stopped, proto::ControlReply* reply);

  // A session lives (the monitor refuses START meanwhile); its copy id.
  bool busy() const;
  std::string copy_id() const;

  // Finishes an abort queued while a worker ran; abandons an idle session.
  void Tick();

  struct Session;

 private:
  absl::Status Dispatch(const proto::ControlRequest& req, bool set_stopped,
                        proto::ControlReply* reply);
  absl::Status SourceBegin(const proto::ControlRequest& req, bool set_stopped,
                           proto::ControlReply* reply);
  absl::Status SourceRead(const proto::ControlRequest& req, proto::ControlReply* reply);
  absl::Status SourceEnd(const proto::ControlRequest& req);
  absl::Status TargetBegin(const proto::ControlRequest& req, bool set_stopped);
  absl::Status TargetWrite(const proto::ControlRequest& req);
  absl::Status TargetCommit(const proto::ControlRequest& req, proto::ControlReply* reply);
  absl::Status TargetAbort(const proto::ControlRequest& req);
  // The live session when `copy_id` names it; kFailedPrecondition otherwise.
  absl::StatusOr<Session*> Find(const std::string& copy_id);
  absl::Status Refuse(const std::string& copy_id) const;
  absl::Status End(const char* why);

  const config::Config& config_;
  const proto::NodeConfig& node_;
  events::EventLog* events_;
  std::unique_ptr<Session> session_;
  // The last committed target session, for a repeated INIT_TARGET_COMMIT
  // whose first reply was lost.
  std::string done_id_;
  proto::InitialCopy done_state_;
};

}  // namespace rdf::initcopy

#endif  // RDF_COMMON_INITCOPY_SERVICE_H_
