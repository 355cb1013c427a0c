// Reading the EMS events of several event folders (one per node) merged by
// time, and following them as new ones appear: `rdfcom events` prints them,
// the monitor counts them for metrics and notifies people of the serious
// ones.
#ifndef RDF_COMMON_EVENT_FOLLOWER_H_
#define RDF_COMMON_EVENT_FOLLOWER_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/event_log.h"
#include "common/file_system.h"
#include "event.pb.h"

namespace rdf::events {

// Reads the events of several event folders that `filter` admits, merged by
// time (ties: folder order, then each folder's own order). Errors as
// ReadEvents.
absl::StatusOr<std::vector<proto::Event>> ReadMergedEvents(FileSystem* fs,
                                                           const std::vector<std::string>& dirs,
                                                           const EventFilter& filter);

// Returns, on each call, the events that appeared since the previous call.
// Each call re-reads the trails from `overlap` before the newest event seen
// so far, and leaves out those it already returned; so an event that becomes
// visible late (INFO and WARNING events are synced within ~100 ms, and
// processes log concurrently) is still returned once, as long as it is not
// older than the newest seen event minus `overlap`. Not thread-safe.
class EventFollower {
 public:
  EventFollower(FileSystem* fs, std::vector<std::string> dirs, EventFilter filter,
                absl::Duration overlap = absl::Seconds(5));
  absl::StatusOr<std::vector<proto::Event>> Next();

 private:
  FileSystem* const fs_;
  const std::vector<std::string> dirs_;
  const EventFilter filter_;
  const int64_t overlap_us_;
  std::optional<int64_t> newest_us_;  // time of the newest event read so far
  std::set<std::string> recent_;  // identities of events at or after the horizon
};

}  // namespace rdf::events

#endif  // RDF_COMMON_EVENT_FOLLOWER_H_
