#include "rdfcom/events_cmd.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/events/follower.h"

namespace rdf::rdfcom {
namespace {

std::string Render(const proto::Event& e, bool json) {
  return json ? events::EventToJson(e) : events::FormatEventLine(e);
}

// Sleeps up to `total`, in short steps, while `keep_going` holds.
void SleepWhile(absl::Duration total, const std::function<bool()>& keep_going) {
  const absl::Time end = absl::Now() + total;
  while (keep_going() && absl::Now() < end) {
    absl::SleepFor(std::min(absl::Milliseconds(100), end - absl::Now()));
  }
}

}  // namespace

absl::Status RunEvents(const EventsOptions& options, std::ostream& out, FileSystem* fs) {
  std::vector<std::string> dirs;
  for (const proto::NodeConfig* n : options.nodes) dirs.push_back(config::EventDir(*n));
  events::EventFollower follower(fs, std::move(dirs), options.filter);
  for (;;) {
    RDF_ASSIGN_OR_RETURN(std::vector<proto::Event> batch, follower.Next());
    for (const proto::Event& e : batch) out << Render(e, options.json) << "\n";
    out.flush();
    if (!options.keep_following || !options.keep_following()) return absl::OkStatus();
    SleepWhile(options.poll_interval, options.keep_following);
    if (!options.keep_following()) return absl::OkStatus();
  }
}

}  // namespace rdf::rdfcom
