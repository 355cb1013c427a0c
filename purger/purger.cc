#include "purger/purger.h"

#include <unistd.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/lmdb/checkpoint.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/process/main.h"
#include "common/state/initial_copy.h"
#include "common/state/save_point.h"
#include "common/state/status_file.h"
#include "common/trail/reader.h"
#include "purger/purge_policy.h"

namespace rdf::purger {
namespace {

// How often Run publishes status between passes, and the longest it sleeps
// at once (so that a stop is seen promptly).
constexpr int64_t kStatusIntervalUs = 1'000'000;
constexpr int64_t kMaxSleepUs = 100'000;

enum class State { kStarting, kRunning, kRetrying, kStopped };

const char* StateName(State s) {
  switch (s) {
    case State::kStarting: return "STARTING";
    case State::kRunning: return "RUNNING";
    case State::kRetrying: return "RETRYING";
    case State::kStopped: return "STOPPED";
  }
  return "UNKNOWN";
}

}  // namespace

struct Purger::Impl {
  PurgerOptions opt;
  const proto::SystemConfig* cfg = nullptr;
  ProcessBase base;
  std::string trail_dir;
  uint64_t purged = 0;
  std::set<uint64_t> held_reported;  // transactions 975 was logged for
  std::vector<proto::TrailUsage> usage;
  State state = State::kStarting;
  std::string last_error;
  int64_t last_pass_us = 0;

  void Log(uint32_t number, events::EventFields fields = {}) {
    base.events->Log(number, fields);
  }
  absl::StatusOr<UpdaterPosition> ReadPosition(const std::string& volume,
                                               const proto::SavePoint& sp);
  // The facts a pass decides from: the save point's hold and every
  // volume's updater position (an error when one cannot be read).
  absl::StatusOr<PurgeFacts> GatherFacts(const std::vector<const proto::VolumeConfig*>& volumes,
                                         const proto::SavePoint& sp);
  // Removes the segments `d` lets go, oldest first, logging each; stops at
  // the first removal that fails (d then says "purge error"). Returns how
  // many went.
  size_t Purge(const std::string& name, const std::vector<trail::SegmentInfo>& segs,
               TrailDecision& d);
  // What remains of trail `name` from segs[first_kept] on, for status; logs
  // 975 once per long-running transaction.
  proto::TrailUsage Usage(const PurgeFacts& facts, const std::string& name,
                          const std::vector<trail::SegmentInfo>& segs, size_t first_kept,
                          const TrailDecision& d);
  void PublishStatus();
};

absl::StatusOr<UpdaterPosition> Purger::Impl::ReadPosition(const std::string& volume,
                                                           const proto::SavePoint& sp) {
  const std::string dir = config::VolumeDir(*base.node, volume);
  // The position comes from the volume's checkpoint record alone, never from
  // its LMDB environment: what a crash can bring back is at most as new as
  // that record, and the purger must never open an environment that its
  // updater may be about to roll back to a checkpoint (after a system crash
  // the updater writes the checkpoint back under data.mdb, and a reader that
  // opened first would leave LMDB's lock file naming the newer transaction,
  // so the updater's own open would read the wrong meta page). Every updater
  // writes a record when it opens its volume; no record: no updater has run.
  if (!opt.fs->Exists(lmdb::CheckpointPath(dir))) return UpdaterPosition{};
  constexpr uint64_t kAny = UINT64_MAX;
  RDF_ASSIGN_OR_RETURN(lmdb::CheckpointState oldest,
                       lmdb::OldestRestorable(dir, {kAny, kAny, kAny}, opt.fs));
  UpdaterPosition p;
  if (oldest.restart_segment == kAny) return p;
  p.known = true;
  p.restart = {oldest.restart_segment, oldest.restart_offset};
  p.applied_asn = oldest.applied_asn;
  return CaughtUp(p, sp, config::VolumeDirName(volume));
}

absl::StatusOr<PurgeFacts> Purger::Impl::GatherFacts(
    const std::vector<const proto::VolumeConfig*>& volumes, const proto::SavePoint& sp) {
  PurgeFacts facts;
  facts.hold = UndoHoldOf(sp);
  facts.retain_count = RetainCount(cfg->purger().retain_count());
  for (const proto::VolumeConfig* v : volumes) {
    absl::StatusOr<UpdaterPosition> p = ReadPosition(v->name(), sp);
    if (!p.ok()) {
      // Nothing can be purged while a position is unknown: an error, so
      // that the status says RETRYING (Run logs 834 with the reason).
      return Annotate(p.status(), absl::StrCat("positions unavailable: ", v->name()));
    }
    facts.updaters.push_back({config::VolumeDirName(v->name()), *p});
  }
  return facts;
}

size_t Purger::Impl::Purge(const std::string& name, const std::vector<trail::SegmentInfo>& segs,
                           TrailDecision& d) {
  size_t i = 0;
  for (; i < d.last_asn.size(); ++i) {
    const trail::SegmentInfo& seg = segs[i];
    absl::Status r = opt.fs->Remove(seg.path);
    if (!r.ok()) {
      Log(events::kPurgeError, {{"path", seg.path}, {"error", std::string(r.message())}});
      last_error = std::string(r.message());
      d.reason = HeldBy::kPurgeError;
      d.held_by = "purge error";
      break;
    }
    Log(events::kSegmentPurged, {{"trail", name}, {"segment", absl::StrCat(seg.segment)},
                                 {"path", seg.path}, {"last_asn", absl::StrCat(d.last_asn[i])},
                                 {"bytes", absl::StrCat(seg.bytes)}});
  }
  if (i > 0) opt.fs->SyncDir(trail_dir).IgnoreError();
  return i;
}

proto::TrailUsage Purger::Impl::Usage(const PurgeFacts& facts, const std::string& name,
                                      const std::vector<trail::SegmentInfo>& segs,
                                      size_t first_kept, const TrailDecision& d) {
  proto::TrailUsage u;
  u.set_name(name);
  for (size_t i = first_kept; i < segs.size(); ++i) {
    u.set_segments(u.segments() + 1);
    u.set_bytes(u.bytes() + segs[i].bytes);
  }
  u.set_held_by(d.held_by);
  // A long-running transaction holding many segments: say so, once.
  if (HeldTooLongByTransaction(facts, d.reason, u.segments()) &&
      held_reported.insert(facts.hold.txid).second) {
    Log(events::kPurgeHeldByTransaction,
        {{"trail", name}, {"oldest_open_asn", absl::StrCat(facts.hold.asn)},
         {"txid", absl::StrCat(facts.hold.txid)}, {"segments_held", absl::StrCat(u.segments())},
         {"bytes_held", absl::StrCat(u.bytes())}});
  }
  return u;
}

void Purger::Impl::PublishStatus() {
  proto::ProcessStatus st =
      NewProcessStatus(base.node->name(), "purger", StateName(state), opt.clock);
  st.set_last_error(last_error);
  st.set_last_progress_age_ms(last_pass_us == 0 ? -1
                                                : (opt.clock->MonotonicMicros() - last_pass_us) / 1000);
  st.set_purged_segments(purged);
  for (const proto::TrailUsage& u : usage) *st.add_trails() = u;
  WriteStatus(base.node->data_dir(), st).IgnoreError();
}

absl::StatusOr<std::unique_ptr<Purger>> Purger::Open(const PurgerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->cfg = &options.config->proto;
  RDF_ASSIGN_OR_RETURN(impl->base, StartProcess(*options.config, options.node, proto::BACKUP,
                                                "purger", options.fs, options.clock));
  impl->trail_dir = config::ImageTrailDir(*impl->base.node);
  // While initialize replaces the volumes and the image trails, the purger
  // must neither read nor delete them (as the receiver and updaters).
  RDF_RETURN_IF_ERROR(CheckNoInitialCopyInProgress(options.fs, *impl->base.node, "purger"));
  return std::unique_ptr<Purger>(new Purger(std::move(impl)));
}

Purger::Purger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Purger::~Purger() = default;

absl::StatusOr<uint64_t> Purger::Pass(const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  std::vector<const proto::VolumeConfig*> volumes = s.opt.config->ProtectedVolumes();
  s.Log(events::kPurgePassStarted, {{"trails", absl::StrCat(volumes.size() + 1)}});
  s.last_pass_us = s.opt.clock->MonotonicMicros();
  RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp, ReadPublishedSavePoint(s.trail_dir));
  if (!sp.has_value()) {
    s.Log(events::kPurgePassEndedEarly, {{"reason", "no save point yet"}, {"trails_done", "0"}});
    return 0;
  }
  RDF_ASSIGN_OR_RETURN(PurgeFacts facts, s.GatherFacts(volumes, *sp));
  std::vector<std::string> trails = {kMasterImageTrail};
  for (const proto::VolumeConfig* v : volumes) trails.push_back(config::VolumeDirName(v->name()));
  uint64_t removed = 0;
  std::vector<proto::TrailUsage> usage;
  size_t done = 0;
  for (const std::string& name : trails) {
    if (stop != nullptr && stop->load()) {
      s.Log(events::kPurgePassEndedEarly, {{"reason", "stop"}, {"trails_done", absl::StrCat(done)}});
      break;
    }
    absl::StatusOr<std::vector<trail::SegmentInfo>> segs =
        trail::ListSegments(s.opt.fs, s.trail_dir, name);
    if (!segs.ok()) {
      s.last_error = std::string(segs.status().message());
      s.Log(events::kPurgePassEndedEarly,
            {{"reason", absl::StrCat("error: ", segs.status().message())},
             {"trails_done", absl::StrCat(done)}});
      break;
    }
    TrailDecision d = DecidePurge(facts, name, *segs);
    const size_t first_kept = s.Purge(name, *segs, d);
    removed += first_kept;
    usage.push_back(s.Usage(facts, name, *segs, first_kept, d));
    ++done;
  }
  s.usage = std::move(usage);
  s.purged += removed;
  return removed;
}

absl::Status Purger::Run(const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  const int64_t interval_us = int64_t{s.cfg->purger().interval_ms()} * 1000;
  int64_t next_pass = 0;
  int64_t last_status = 0;
  while (!stop->load()) {
    int64_t now = s.opt.clock->MonotonicMicros();
    if (now >= next_pass) {
      absl::StatusOr<uint64_t> n = Pass(stop);
      if (n.ok()) {
        s.state = State::kRunning;
      } else {
        s.state = State::kRetrying;
        s.last_error = std::string(n.status().message());
        s.Log(events::kPurgePassEndedEarly,
              {{"reason", absl::StrCat("error: ", n.status().message())}, {"trails_done", "0"}});
      }
      next_pass = now + interval_us;
      s.PublishStatus();
      last_status = now;
    }
    if (now - last_status >= kStatusIntervalUs) {
      s.PublishStatus();
      last_status = now;
    }
    s.opt.clock->SleepMicros(std::min<int64_t>(kMaxSleepUs, std::max<int64_t>(1, next_pass - now)));
  }
  s.state = State::kStopped;
  s.PublishStatus();
  s.base.events->Flush().IgnoreError();
  return absl::OkStatus();
}

}  // namespace rdf::purger
