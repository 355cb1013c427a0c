// rdfcom events: the EMS events of one node or of both, merged by time
// (docs/rdfcom.md). Each process keeps its own event trail under
// <data_dir>/events (common/events/log.h); this reads every trail of the
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
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "common/events/log.h"
#include "event.pb.h"

namespace rdf::rdfcom {

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
