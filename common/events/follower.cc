#include "common/events/follower.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace rdf::events {

absl::StatusOr<std::vector<proto::Event>> ReadMergedEvents(FileSystem* fs,
                                                           const std::vector<std::string>& dirs,
                                                           const EventFilter& filter) {
  std::vector<proto::Event> all;
  for (const std::string& dir : dirs) {
    RDF_ASSIGN_OR_RETURN(std::vector<proto::Event> some, ReadEvents(fs, dir, filter));
    all.insert(all.end(), std::make_move_iterator(some.begin()),
               std::make_move_iterator(some.end()));
  }
  std::stable_sort(all.begin(), all.end(), [](const proto::Event& a, const proto::Event& b) {
    return a.time_us() < b.time_us();
  });
  return all;
}

EventFollower::EventFollower(FileSystem* fs, std::vector<std::string> dirs, EventFilter filter)
    : fs_(fs), dirs_(std::move(dirs)), filter_(std::move(filter)), cursors_(dirs_.size()) {}

absl::StatusOr<std::vector<proto::Event>> EventFollower::Next() {
  std::vector<proto::Event> all;
  for (size_t i = 0; i < dirs_.size(); ++i) {
    RDF_ASSIGN_OR_RETURN(std::vector<proto::Event> some,
                         ReadNewEvents(fs_, dirs_[i], filter_, &cursors_[i]));
    all.insert(all.end(), std::make_move_iterator(some.begin()),
               std::make_move_iterator(some.end()));
  }
  std::stable_sort(all.begin(), all.end(), [](const proto::Event& a, const proto::Event& b) {
    return a.time_us() < b.time_us();
  });
  return all;
}

}  // namespace rdf::events
