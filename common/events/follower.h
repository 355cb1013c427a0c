// Reading the EMS events of several event folders (one per node) merged by
// time, and following them as new ones appear: `rdfcom events` prints them,
// the monitor counts them for metrics and notifies people of the serious
// ones.
#ifndef RDF_COMMON_EVENTS_FOLLOWER_H_
#define RDF_COMMON_EVENTS_FOLLOWER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/file_system.h"
#include "common/events/log.h"
#include "event.pb.h"

namespace rdf::events {

// Reads the events of several event folders that `filter` admits, merged by
// time (ties: folder order, then each folder's own order). Errors as
// ReadEvents.
absl::StatusOr<std::vector<proto::Event>> ReadMergedEvents(FileSystem* fs,
                                                           const std::vector<std::string>& dirs,
                                                           const EventFilter& filter);

// Returns, on each call, the events that appeared since the previous call
// (the first call: every event the filter admits), merged by time. Keeps a
// cursor per trail (ReadNewEvents), so each call reads only what was
// appended since the previous one. Not thread-safe.
class EventFollower {
 public:
  EventFollower(FileSystem* fs, std::vector<std::string> dirs, EventFilter filter);
  absl::StatusOr<std::vector<proto::Event>> Next();

 private:
  FileSystem* const fs_;
  const std::vector<std::string> dirs_;
  const EventFilter filter_;
  std::vector<EventCursor> cursors_;  // one per dir
};

}  // namespace rdf::events

#endif  // RDF_COMMON_EVENTS_FOLLOWER_H_
