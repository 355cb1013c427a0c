#include "common/event_follower.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace rdf::events {
namespace {

// An event's identity for de-duplication across polls: its printed form plus
// how many identical events came before it in the same read.
std::vector<std::string> Identities(const std::vector<proto::Event>& events) {
  std::map<std::string, int> seen;
  std::vector<std::string> ids;
  ids.reserve(events.size());
  for (const proto::Event& e : events) {
    std::string line = FormatEventLine(e);
    const int n = seen[line]++;
    ids.push_back(absl::StrCat(line, "#", n));
  }
  return ids;
}

}  // namespace

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

EventFollower::EventFollower(FileSystem* fs, std::vector<std::string> dirs,
                             EventFilter filter, absl::Duration overlap)
    : fs_(fs),
      dirs_(std::move(dirs)),
      filter_(std::move(filter)),
      overlap_us_(absl::ToInt64Microseconds(overlap)) {}

absl::StatusOr<std::vector<proto::Event>> EventFollower::Next() {
  EventFilter f = filter_;
  if (newest_us_) f.since_us = std::max(f.since_us, *newest_us_ - overlap_us_);
  RDF_ASSIGN_OR_RETURN(std::vector<proto::Event> read, ReadMergedEvents(fs_, dirs_, f));
  const std::vector<std::string> ids = Identities(read);
  std::vector<proto::Event> fresh;
  for (size_t i = 0; i < read.size(); ++i) {
    if (recent_.count(ids[i]) == 0) fresh.push_back(read[i]);
    newest_us_ = std::max(newest_us_.value_or(read[i].time_us()), read[i].time_us());
  }
  // Remember what the next read (from the new horizon on) will see again.
  recent_.clear();
  for (size_t i = 0; i < read.size(); ++i) {
    if (read[i].time_us() >= *newest_us_ - overlap_us_) recent_.insert(ids[i]);
  }
  return fresh;
}

}  // namespace rdf::events
