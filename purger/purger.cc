#include "purger/purger.h"

#include <unistd.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/events/catalog.h"
#include "common/state/initial_copy.h"
#include "common/lmdb/checkpoint.h"
#include "common/lmdb/env.h"
#include "common/process/main.h"
#include "common/state/save_point.h"
#include "common/state/status_file.h"
#include "common/base/status_macros.h"
#include "common/trail/reader.h"
#include "common/lmdb/volume_meta.h"

namespace rdf::purger {
namespace {

// What one volume's updater has passed.
struct UpdaterPosition {
  bool known = false;
  trail::Position restart;
  uint64_t applied_asn = 0;  // through the save point once caught up
};

}  // namespace

struct Purger::Impl {
  PurgerOptions opt;
  const proto::SystemConfig* cfg = nullptr;
  ProcessBase base;
  std::string trail_dir;
  uint64_t purged = 0;
  std::set<uint64_t> held_reported;  // transactions 975 was logged for
  std::vector<proto::TrailUsage> usage;
  std::string state = "STARTING";
  std::string last_error;
  int64_t last_pass_us = 0;

  void Log(uint32_t number, events::EventFields fields = {}) {
    base.events->Log(number, fields);
  }
  absl::StatusOr<UpdaterPosition> ReadPosition(const std::string& volume,
                                               const proto::SavePoint& sp);
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
  // Caught up with the save point: applied through it.
  const proto::TrailEnd* te = FindTrailEnd(sp, config::VolumeDirName(volume));
  if (te != nullptr && trail::Position{te->segment(), te->offset()} == p.restart) {
    p.applied_asn = std::max(p.applied_asn, sp.asn());
  }
  return p;
}

void Purger::Impl::PublishStatus() {
  proto::ProcessStatus st;
  st.set_version(1);
  st.set_node(base.node->name());
  st.set_process("purger");
  st.set_state(state);
  st.set_time_us(opt.clock->NowMicros());
  st.set_pid(getpid());
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
  // Takeover could have to undo every record from the oldest open
  // transaction's first ASN on.
  uint64_t hold_asn = sp->oldest_open_asn() != 0 ? sp->oldest_open_asn() : sp->asn() + 1;
  uint64_t hold_txid = 0;
  for (const proto::OpenTransaction& o : sp->open()) {
    if (o.first_asn() == sp->oldest_open_asn()) hold_txid = o.txid();
  }
  std::map<std::string, UpdaterPosition> pos;  // by trail name
  uint64_t min_applied = UINT64_MAX;
  std::string slowest;
  for (const proto::VolumeConfig* v : volumes) {
    std::string trail = config::VolumeDirName(v->name());
    absl::StatusOr<UpdaterPosition> p = s.ReadPosition(v->name(), *sp);
    if (!p.ok()) {
      // Nothing can be purged while a position is unknown: an error, so
      // that the status says RETRYING (Run logs 834 with the reason).
      return Annotate(p.status(), absl::StrCat("positions unavailable: ", v->name()));
    }
    pos[trail] = *p;
    if (!p->known || p->applied_asn < min_applied) {
      min_applied = p->known ? p->applied_asn : 0;
      slowest = absl::StrCat("updater-", trail);
    }
  }
  const size_t retain = std::max<uint32_t>(2, s.cfg->purger().retain_count());
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
    size_t first_kept = 0;
    std::string held_by;
    for (size_t i = 0; i < segs->size(); ++i) {
      if (i + retain >= segs->size()) {
        held_by = "retain_count";
        break;
      }
      const trail::SegmentInfo& seg = (*segs)[i];
      uint64_t last_asn = (*segs)[i + 1].first_asn - 1;
      bool passed;
      if (name == kMasterImageTrail) {
        passed = last_asn < min_applied;
        if (!passed) held_by = slowest;
      } else {
        const UpdaterPosition& p = pos[name];
        passed = p.known && seg.segment < p.restart.segment;
        if (!passed) held_by = absl::StrCat("updater-", name);
      }
      if (passed && last_asn >= hold_asn) {
        passed = false;
        held_by = absl::StrCat("transaction ", hold_txid);
      }
      if (!passed) break;
      absl::Status r = s.opt.fs->Remove(seg.path);
      if (!r.ok()) {
        s.Log(events::kPurgeError, {{"path", seg.path}, {"error", std::string(r.message())}});
        s.last_error = std::string(r.message());
        held_by = "purge error";
        break;
      }
      s.Log(events::kSegmentPurged, {{"trail", name}, {"segment", absl::StrCat(seg.segment)},
                                     {"path", seg.path}, {"last_asn", absl::StrCat(last_asn)},
                                     {"bytes", absl::StrCat(seg.bytes)}});
      ++removed;
      first_kept = i + 1;
    }
    if (first_kept > 0) s.opt.fs->SyncDir(s.trail_dir).IgnoreError();
    proto::TrailUsage u;
    u.set_name(name);
    for (size_t i = first_kept; i < segs->size(); ++i) {
      u.set_segments(u.segments() + 1);
      u.set_bytes(u.bytes() + (*segs)[i].bytes);
    }
    u.set_held_by(held_by);
    // A long-running transaction holding many segments: say so, once.
    if (hold_txid != 0 && held_by == absl::StrCat("transaction ", hold_txid) &&
        u.segments() > 4 * retain && s.held_reported.insert(hold_txid).second) {
      s.Log(events::kPurgeHeldByTransaction,
            {{"trail", name}, {"oldest_open_asn", absl::StrCat(hold_asn)},
             {"txid", absl::StrCat(hold_txid)}, {"segments_held", absl::StrCat(u.segments())},
             {"bytes_held", absl::StrCat(u.bytes())}});
    }
    usage.push_back(std::move(u));
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
        s.state = "RUNNING";
      } else {
        s.state = "RETRYING";
        s.last_error = std::string(n.status().message());
        s.Log(events::kPurgePassEndedEarly,
              {{"reason", absl::StrCat("error: ", n.status().message())}, {"trails_done", "0"}});
      }
      next_pass = now + interval_us;
      s.PublishStatus();
      last_status = now;
    }
    if (now - last_status >= 1'000'000) {
      s.PublishStatus();
      last_status = now;
    }
    s.opt.clock->SleepMicros(std::min<int64_t>(100'000, std::max<int64_t>(1, next_pass - now)));
  }
  s.state = "STOPPED";
  s.PublishStatus();
  s.base.events->Flush().IgnoreError();
  return absl::OkStatus();
}

}  // namespace rdf::purger
