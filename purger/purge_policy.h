// The purger's decision, apart from its effects: given what a pass has
// gathered (the published save point, each volume's updater position, the
// retain count) and one image trail's segments, which of them go and what
// keeps the first one kept. Pure functions: no files, no clock, no events;
// Purger::Pass gathers the facts, calls DecidePurge per trail, then deletes
// and logs (purger.cc). The rules are docs/purger.md's:
//   1. the trail's newest retain_count segments stay;
//   2. every record of a segment is behind the updaters: for a volume trail
//      the updater's restart point lies in a later segment; for the MIT
//      every updater has applied past the segment's last ASN;
//   3. no transaction takeover could still have to undo has a record in it:
//      its last ASN is below UndoHold::asn.
// Segments are considered oldest first; the first kept one stops the trail.
#ifndef RDF_PURGER_PURGE_POLICY_H_
#define RDF_PURGER_PURGE_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/trail/format.h"
#include "common/trail/reader.h"
#include "imagetrail.pb.h"

namespace rdf::purger {

// A long-running transaction holding more than this many times retain_count
// segments of a trail is reported (event 975), once.
inline constexpr size_t kHeldByTransactionWarnFactor = 4;

// What one volume's updater has passed, as its checkpoint record says.
struct UpdaterPosition {
  bool known = false;  // false: no checkpoint record yet, no updater has run
  trail::Position restart;
  uint64_t applied_asn = 0;  // through the save point once caught up
};

// `p` with an updater caught up with the save point (its restart point is
// its trail's end in `sp`) counted as applied through the save point.
// `trail` is the volume's trail name (config::VolumeDirName).
UpdaterPosition CaughtUp(UpdaterPosition p, const proto::SavePoint& sp, absl::string_view trail);

// What takeover's undo pass could still need of the trails: every record
// from the first ASN of the oldest transaction without an outcome at the
// save point on, or nothing up to the save point when none is open.
struct UndoHold {
  uint64_t asn = 0;   // the lowest ASN that must stay
  uint64_t txid = 0;  // the oldest open transaction, 0 when none is open
};
UndoHold UndoHoldOf(const proto::SavePoint& sp);

struct VolumeUpdater {
  std::string trail;  // the volume's trail name (config::VolumeDirName)
  UpdaterPosition position;
};

// Everything a pass decides from, gathered before any trail is listed.
struct PurgeFacts {
  UndoHold hold;
  std::vector<VolumeUpdater> updaters;  // in config order
  size_t retain_count = 2;              // at least 2 (RetainCount)
};

// purger.retain_count as the purger applies it: at least kMinRetainCount.
size_t RetainCount(uint32_t configured);

// Why a trail's first kept segment stays.
enum class HeldBy {
  kNothing,      // the trail has no segments
  kRetainCount,  // among the newest retain_count
  kUpdater,      // an updater is not past it yet
  kTransaction,  // takeover could have to undo a record in it
  kPurgeError,   // (never decided here: the pass met a removal that failed)
};

struct TrailDecision {
  // The last ASN of each segment that goes: the oldest last_asn.size()
  // segments go, oldest first.
  std::vector<uint64_t> last_asn;
  HeldBy reason = HeldBy::kNothing;
  // status/purger.json's held_by: "", "retain_count", "updater-<trail>",
  // "transaction <txid>".
  std::string held_by;
};

// The decision for trail `name` (kMasterImageTrail or a volume's trail),
// whose segments are `segments`, oldest first (trail::ListSegments). A
// volume trail without an updater in `facts` keeps everything.
TrailDecision DecidePurge(const PurgeFacts& facts, absl::string_view name,
                          const std::vector<trail::SegmentInfo>& segments);

// Whether a trail whose first kept segment is held for `reason`, keeping
// `kept_segments`, is worth event 975 (the caller logs it once per
// transaction).
bool HeldTooLongByTransaction(const PurgeFacts& facts, HeldBy reason, uint64_t kept_segments);

}  // namespace rdf::purger

#endif  // RDF_PURGER_PURGE_POLICY_H_
