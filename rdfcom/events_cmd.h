// rdfcom events: the EMS events of one node or of both, merged by time
// (docs/rdfcom.md). Each process keeps its own event trail under
// <data_dir>/events (common/event_log.h); this reads every trail of the
// selected nodes' data directories, so it works only where those folders are
// readable (on loopback both are local).
#ifndef RDF_RDFCOM_EVENTS_CMD_H_
#define RDF_RDFCOM_EVENTS_CMD_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/event_log.h"
#include "common/file_system.h"
#include "event.pb.h"

namespace rdf::rdfcom {

// Reads the events of several event folders (one per node) that `filter`
// admits, merged by time (ties: folder order, then each folder's own
// order). Errors as events::ReadEvents.
absl::StatusOr<std::vector<proto::Event>> ReadMergedEvents(FileSystem* fs,
                                                           const std::vector<std::string>& dirs,
                                                           const events::EventFilter& filter);

// Returns, on each call, the events that appeared since the previous call.
// Each call re-reads the trails from `overlap` before the newest event seen
// so far, and leaves out those it already returned; so an event that becomes
// visible late (INFO and WARNING events are synced within ~100 ms, and
// processes log concurrently) is still returned once, as long as it is not
// older than the newest seen event minus `overlap`. Not thread-safe.
class EventFollower {
 public:
  EventFollower(FileSystem* fs, std::vector<std::string> dirs, events::EventFilter filter,
                absl::Duration overlap = absl::Seconds(5));
  absl::StatusOr<std::vector<proto::Event>> Next();

 private:
  FileSystem* const fs_;
  const std::vector<std::string> dirs_;
  const events::EventFilter filter_;
  const int64_t overlap_us_;
  std::optional<int64_t> newest_us_;  // time of the newest event read so far
  std::set<std::string> recent_;  // identities of events at or after the horizon
};

struct EventsOptions {
  std::vector<const proto::NodeConfig*> nodes;  // whose events; not owned
  events::EventFilter filter;
  bool json = false;  // events::EventToJson lines instead of FormatEventLine
  // With --follow: asked before each poll (about once a second); polling
  // ends when it returns false. Empty: print what is there and return.
  std::function<bool()> keep_following;
  absl::Duration poll_interval = absl::Seconds(1);
};

// Prints the selected nodes' events, one per line, then (when following)
// new ones as they appear, flushing `out` after each batch.
absl::Status RunEvents(const EventsOptions& options, std::ostream& out,
                       FileSystem* fs = FileSystem::Default());


}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_EVENTS_CMD_H_
