// The purger (backup node): every purger.interval_ms it deletes image-trail
// segments that nothing can need any more. A segment of a trail goes when
//   - it is not among the trail's newest purger.retain_count segments;
//   - every record in it is behind the updaters: for a volume trail, the
//     volume's updater restart point (the older of its __meta and of its
//     checkpoint record, which is synced before it is relied on:
//     lmdb::OldestRestorable, what a crash can bring back) lies in a later
//     segment; for the MIT, every updater has applied past its last ASN;
//   - no transaction takeover could still have to undo has a record in it:
//     its last ASN is below the first ASN of the oldest transaction without
//     an outcome at the receiver's published save point (or below the save
//     point itself when none is open). A long-running transaction therefore
//     keeps segments on every trail, as in NonStop RDF.
// Segments go oldest first; the first one kept stops the trail's pass.
// Those rules are the pure DecidePurge (purge_policy.h); a pass gathers its
// facts, calls it per trail, then deletes and logs.
// It never opens a volume: it reads the volumes' checkpoint records only
// (docs/purger.md). Open refuses while an initialize is in progress
// (kFailedPrecondition).
// See docs/purger.md.
#ifndef RDF_PURGER_PURGER_H_
#define RDF_PURGER_PURGER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/config/config.h"

namespace rdf::purger {

struct PurgerOptions {
  const config::Config* config = nullptr;  // not owned
  std::string node;                        // the BACKUP node
  FileSystem* fs = FileSystem::Default();
  Clock* clock = Clock::Real();
};

class Purger {
 public:
  static absl::StatusOr<std::unique_ptr<Purger>> Open(const PurgerOptions& options);
  ~Purger();
  // A pass at once, then one every purger.interval_ms until *stop.
  absl::Status Run(const std::atomic<bool>* stop);
  // One pass (tests). Returns the segments removed.
  absl::StatusOr<uint64_t> Pass(const std::atomic<bool>* stop);

  struct Impl;

 private:
  explicit Purger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::purger

#endif  // RDF_PURGER_PURGER_H_
