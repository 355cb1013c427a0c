#include "purger/purge_policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/state/save_point.h"

namespace rdf::purger {
namespace {

// The MIT's bound: the lowest ASN applied by every updater, and whose
// updater that is ("updater-<trail>"). An updater without a position has
// applied nothing.
struct Slowest {
  uint64_t applied_asn = UINT64_MAX;
  std::string held_by;
};

Slowest SlowestUpdater(const std::vector<VolumeUpdater>& updaters) {
  Slowest s;
  for (const VolumeUpdater& u : updaters) {
    const UpdaterPosition& p = u.position;
    if (!p.known || p.applied_asn < s.applied_asn) {
      s.applied_asn = p.known ? p.applied_asn : 0;
      s.held_by = absl::StrCat("updater-", u.trail);
    }
  }
  return s;
}

UpdaterPosition PositionOf(const std::vector<VolumeUpdater>& updaters, absl::string_view trail) {
  for (const VolumeUpdater& u : updaters) {
    if (u.trail == trail) return u.position;
  }
  return UpdaterPosition{};
}

}  // namespace

UpdaterPosition CaughtUp(UpdaterPosition p, const proto::SavePoint& sp, absl::string_view trail) {
  const proto::TrailEnd* te = FindTrailEnd(sp, trail);
  if (p.known && te != nullptr && trail::Position{te->segment(), te->offset()} == p.restart) {
    p.applied_asn = std::max(p.applied_asn, sp.asn());
  }
  return p;
}

UndoHold UndoHoldOf(const proto::SavePoint& sp) {
  UndoHold h;
  h.asn = sp.oldest_open_asn() != 0 ? sp.oldest_open_asn() : sp.asn() + 1;
  for (const proto::OpenTransaction& o : sp.open()) {
    if (o.first_asn() == sp.oldest_open_asn()) h.txid = o.txid();
  }
  return h;
}

size_t RetainCount(uint32_t configured) {
  return std::max<uint32_t>(config::kMinRetainCount, configured);
}

TrailDecision DecidePurge(const PurgeFacts& facts, absl::string_view name,
                          const std::vector<trail::SegmentInfo>& segments) {
  const bool mit = name == kMasterImageTrail;
  const Slowest slowest = mit ? SlowestUpdater(facts.updaters) : Slowest{};
  const UpdaterPosition updater = mit ? UpdaterPosition{} : PositionOf(facts.updaters, name);
  TrailDecision d;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i + facts.retain_count >= segments.size()) {
      d.reason = HeldBy::kRetainCount;
      d.held_by = "retain_count";
      return d;
    }
    // Not the newest: the next segment starts right after its last record.
    const uint64_t last_asn = segments[i + 1].first_asn - 1;
    if (mit ? last_asn >= slowest.applied_asn
            : !updater.known || segments[i].segment >= updater.restart.segment) {
      d.reason = HeldBy::kUpdater;
      d.held_by = mit ? slowest.held_by : absl::StrCat("updater-", name);
      return d;
    }
    if (last_asn >= facts.hold.asn) {
      d.reason = HeldBy::kTransaction;
      d.held_by = absl::StrCat("transaction ", facts.hold.txid);
      return d;
    }
    d.last_asn.push_back(last_asn);
  }
  return d;
}

bool HeldTooLongByTransaction(const PurgeFacts& facts, HeldBy reason, uint64_t kept_segments) {
  return facts.hold.txid != 0 && reason == HeldBy::kTransaction &&
         kept_segments > kHeldByTransactionWarnFactor * facts.retain_count;
}

}  // namespace rdf::purger
