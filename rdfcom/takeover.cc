#include "rdfcom/takeover.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/base/subprocess.h"
#include "common/events/catalog.h"
#include "common/json/proto.h"
#include "common/process/lock.h"
#include "common/process/main.h"
#include "common/state/audit_record.h"
#include "common/state/initial_copy.h"
#include "common/state/save_point.h"
#include "common/state/status_file.h"
#include "common/state/takeover_state.h"
#include "common/trail/reader.h"

namespace rdf::rdfcom {
namespace {

constexpr absl::Duration kReceiverWait = absl::Seconds(30);
constexpr absl::Duration kStopGrace = absl::Seconds(10);

std::string FormatTime(int64_t us) {
  if (us <= 0) return "unknown";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(us),
                          absl::UTCTimeZone());
}

template <typename M>
absl::StatusOr<M> ReadJson(FileSystem* fs, const std::string& path) {
  RDF_ASSIGN_OR_RETURN(std::string text, ReadFileToString(fs, path));
  M m;
  google::protobuf::util::JsonParseOptions o;
  o.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(text, &m, o).ok()) {
    return absl::DataLossError(absl::StrCat(path, ": not a valid ", M::descriptor()->name()));
  }
  return m;
}

class Run {
 public:
  Run(const TakeoverOptions& o, const proto::NodeConfig* node, ProcessBase base)
      : o_(o), node_(node), base_(std::move(base)), fs_(FileSystem::Default()) {}

  absl::StatusOr<proto::TakeoverReport> Go();

 private:
  void Progress(const std::string& line) {
    if (o_.progress != nullptr) *o_.progress << "takeover: " << line << std::endl;
  }
  void Log(uint32_t number, events::EventFields fields) { base_.events->Log(number, fields); }
  std::vector<std::string> Args(const std::string& program) {
    return {JoinPath(o_.bin_dir, program), "--config", o_.config->path, "--node",
            node_->name()};
  }
  absl::StatusOr<proto::SavePoint> FixFinalSavePoint();
  absl::Status RunUpdaters(std::map<std::string, proto::VolumeTakeoverResult>* results);
  absl::StatusOr<proto::ProcessStatus> UpdaterStatus(const std::string& volume);
  void Narrow(const proto::SavePoint& sp, proto::InconsistentVolume* v);
  absl::StatusOr<std::vector<proto::InconsistentVolume>> CheckConsistency(
      const proto::SavePoint& sp, bool log);
  absl::Status Fail(absl::Status s, const std::string& failed_updaters) {
    Log(events::kTakeoverFailed, {{"epoch", absl::StrCat(epoch_.number)},
                                  {"error", std::string(s.message())},
                                  {"failed_updaters", failed_updaters}});
    base_.events->Flush().IgnoreError();
    return absl::Status(s.code(), absl::StrCat(s.message(),
                                               " — fix the cause and issue the takeover again "
                                               "(it resumes where it stopped)"));
  }

  const TakeoverOptions& o_;
  const proto::NodeConfig* node_;
  ProcessBase base_;
  FileSystem* fs_;
  TakeoverEpoch epoch_;
  int64_t started_us_ = 0;
};

absl::StatusOr<proto::SavePoint> Run::FixFinalSavePoint() {
  std::string trail_dir = config::ImageTrailDir(*node_);
  auto fixed = [&]() -> absl::StatusOr<std::optional<proto::SavePoint>> {
    RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp, ReadPublishedSavePoint(trail_dir));
    if (sp.has_value() && sp->takeover_epoch() == epoch_.number) return sp;
    return std::nullopt;
  };
  absl::Time deadline = absl::Now() + kReceiverWait;
  for (;;) {
    RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp, fixed());
    if (sp.has_value()) return *std::move(sp);
    int pid = ProcessLock::HolderPid(config::LockDir(*node_), "receiver");
    if (pid == 0) break;  // no receiver runs: finalize it ourselves
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the running receiver (pid ", pid, ") did not fix its final save point within ",
          absl::FormatDuration(kReceiverWait), "; see its status and events"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Progress("no receiver running: fixing the final save point with rdf-receiver --finalize");
  std::vector<std::string> argv = Args("rdf-receiver");
  argv.push_back("--finalize");
  RDF_ASSIGN_OR_RETURN(pid_t child, Spawn(argv, true, true));
  std::optional<ExitInfo> e = WaitChild(child, absl::InfiniteDuration());
  if (!e->ok()) {
    return absl::UnavailableError(
        absl::StrCat("rdf-receiver --finalize failed (", e->ToString(), ")"));
  }
  RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp, fixed());
  if (!sp.has_value()) {
    return absl::InternalError("rdf-receiver --finalize left no final save point");
  }
  return *std::move(sp);
}

absl::Status Run::RunUpdaters(std::map<std::string, proto::VolumeTakeoverResult>* results) {
  struct Child {
    std::string volume;
    pid_t pid = 0;
    std::optional<ExitInfo> exit;
    bool done = false;  // exited, or stalled and stopped
    UpdaterProgressWatch watch;
    std::string stalled;  // why it was killed, when it made no progress
  };
  std::vector<Child> children;
  for (const proto::VolumeConfig* v : o_.config->ProtectedVolumes()) {
    std::string lock = absl::StrCat("updater-", config::VolumeDirName(v->name()));
    std::string lock_dir = config::LockDir(*node_);
    int pid = ProcessLock::HolderPid(lock_dir, lock);
    if (pid != 0) {
      Progress(absl::StrCat("stopping the running ", lock, " (pid ", pid, ")"));
      if (!TerminateProcess(pid, kStopGrace,
                            [&] { return ProcessLock::HolderPid(lock_dir, lock) == 0; })) {
        return absl::UnavailableError(absl::StrCat("cannot stop ", lock, " (pid ", pid, ")"));
      }
    }
    std::vector<std::string> argv = Args("rdf-updater");
    argv.insert(argv.end(), {"--volume", v->name(), "--takeover"});
    RDF_ASSIGN_OR_RETURN(pid_t child, Spawn(argv, true, true));
    children.push_back({v->name(), child, std::nullopt, false,
                        UpdaterProgressWatch(o_.stall_timeout, absl::Now()), ""});
  }
  Progress(absl::StrCat("REDO and UNDO running on ", children.size(), " volume(s)"));
  absl::Time next_progress = absl::Now() + absl::Seconds(2);
  absl::Time next_watch = absl::Now();
  // Every child ends: by itself, or killed once it makes no progress.
  for (size_t open = children.size(); open > 0;) {
    for (Child& c : children) {
      if (c.done) continue;
      c.exit = WaitChild(c.pid, absl::Milliseconds(2));
      if (c.exit.has_value()) {
        c.done = true;
        --open;
      }
    }
    const absl::Time now = absl::Now();
    if (open > 0 && now >= next_watch) {
      next_watch = now + absl::Milliseconds(200);
      for (Child& c : children) {
        if (c.done) continue;
        absl::StatusOr<proto::ProcessStatus> st = UpdaterStatus(c.volume);
        c.watch.Observe(now, st.ok() && st->pid() == c.pid ? &*st : nullptr);
        if (!c.watch.Stalled(now)) continue;
        c.stalled = c.watch.Cause(now);
        Progress(absl::StrCat(c.volume, ": ", c.stalled, "; stopping it"));
        // (A process that outlives SIGKILL, stuck in the kernel, is left
        // behind: the takeover ends all the same, and its lock keeps a
        // reissued takeover from starting another updater beside it.)
        if (!TerminateProcess(c.pid, kStopGrace, [&c] {
              c.exit = WaitChild(c.pid, absl::ZeroDuration());
              return c.exit.has_value();
            })) {
          absl::StrAppend(&c.stalled, "; it did not exit after SIGKILL (pid ", c.pid, ")");
        }
        c.done = true;
        --open;
      }
    }
    if (open > 0 && now >= next_progress) {
      next_progress = now + absl::Seconds(2);
      for (const Child& c : children) {
        if (c.done) continue;
        absl::StatusOr<proto::ProcessStatus> st = UpdaterStatus(c.volume);
        if (st.ok()) {
          Progress(absl::StrCat(c.volume, " ", st->state(), " applied ASN ", st->applied_asn(),
                                st->last_error().empty() ? "" : " error: ", st->last_error()));
        }
      }
    }
  }
  std::string failed;
  for (const Child& c : children) {
    absl::StatusOr<proto::VolumeTakeoverResult> r =
        !c.stalled.empty() ? absl::DeadlineExceededError(c.stalled)
        : c.exit->ok()     ? ReadJson<proto::VolumeTakeoverResult>(
                                 fs_, TakeoverVolumeResultPath(*node_, c.volume))
                           : absl::UnavailableError(c.exit->ToString());
    if (r.ok() && r->epoch() != epoch_.number) {
      r = absl::InternalError(absl::StrCat("result is for epoch ", r->epoch()));
    }
    if (r.ok()) {
      (*results)[c.volume] = *std::move(r);
      continue;
    }
    absl::StatusOr<proto::ProcessStatus> st = UpdaterStatus(c.volume);
    std::string phase = st.ok() && st->state() == "TAKEOVER_UNDO" ? "undo" : "redo";
    // (A stalled updater's cause already holds its last error.)
    std::string error = absl::StrCat(r.status().message(),
                                     c.stalled.empty() && st.ok() && !st->last_error().empty()
                                         ? absl::StrCat(": ", st->last_error())
                                         : std::string());
    Log(events::kTakeoverUpdaterFailed, {{"volume", c.volume}, {"phase", phase}, {"error", error}});
    absl::StrAppend(&failed, failed.empty() ? "" : "; ", c.volume, " (", phase, "): ", error);
  }
  if (!failed.empty()) {
    return absl::UnavailableError(absl::StrCat("updater(s) failed during takeover: ", failed));
  }
  return absl::OkStatus();
}

// Keeps of v's half-applied candidates those with DATA records in the
// volume's trail that the copy holds (at or below both the snapshot and
// the save point); on a trail error keeps them all and says so.
void Run::Narrow(const proto::SavePoint& sp, proto::InconsistentVolume* v) {
  if (v->half_applied_txids().empty()) return;
  absl::flat_hash_set<uint64_t> candidates(v->half_applied_txids().begin(),
                                           v->half_applied_txids().end());
  uint64_t from = UINT64_MAX;
  for (const proto::OpenTransaction& t : sp.open()) {
    if (candidates.contains(t.txid())) from = std::min(from, t.first_asn());
  }
  absl::StatusOr<std::vector<uint64_t>> found = TransactionsWithDataIn(
      fs_, config::ImageTrailDir(*node_), config::VolumeDirName(v->volume()), from,
      std::min(v->snapshot_asn(), sp.asn()), candidates);
  if (!found.ok()) {
    Progress(absl::StrCat("cannot read ", v->volume(), "'s image trail (", found.status().message(),
                          "): every lost transaction that began at or below its snapshot is "
                          "listed as possibly half applied"));
    return;
  }
  *v->mutable_half_applied_txids() = {found->begin(), found->end()};
}

absl::StatusOr<proto::ProcessStatus> Run::UpdaterStatus(const std::string& volume) {
  return ReadStatus(node_->data_dir(), absl::StrCat("updater-", config::VolumeDirName(volume)));
}

// Refuses (kFailedPrecondition) when `sp` leaves a volume inconsistent and
// the takeover is not forced; forced, logs 987 per volume and returns them.
absl::StatusOr<std::vector<proto::InconsistentVolume>> Run::CheckConsistency(
    const proto::SavePoint& sp, bool log) {
  RDF_ASSIGN_OR_RETURN(std::optional<proto::InitialCopy> copy, ReadInitialCopy(fs_, *node_));
  if (!copy.has_value()) return std::vector<proto::InconsistentVolume>();
  std::vector<proto::InconsistentVolume> bad = InconsistentVolumes(*copy, sp);
  if (bad.empty()) return bad;
  std::string names;
  for (const proto::InconsistentVolume& v : bad) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", v.volume(), " (copy at ASN ",
                    v.snapshot_asn(), ")");
  }
  if (!o_.force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the backup is still catching up after `rdfcom initialize`: it holds audit through ASN ",
        sp.asn(), ", below the initial copy of ", names,
        "; a takeover now would leave those volumes holding work never received and "
        "transactions half applied. Wait until the save point passes every snapshot ASN "
        "(`rdfcom status`), or take over anyway with --force (the report then names what is "
        "inconsistent)"));
  }
  for (proto::InconsistentVolume& v : bad) Narrow(sp, &v);
  for (const proto::InconsistentVolume& v : bad) {
    Progress(absl::StrCat("FORCED: ", v.volume(), " is inconsistent: its copy at ASN ",
                          v.snapshot_asn(), " is past the last ASN received (", sp.asn(), "); ",
                          v.half_applied_txids_size(), " lost transaction(s) may stay applied "
                          "on it"));
    if (!log) continue;
    Log(events::kTakeoverVolumeInconsistent,
        {{"volume", v.volume()},
         {"snapshot_asn", absl::StrCat(v.snapshot_asn())},
         {"last_asn", absl::StrCat(sp.asn())},
         {"half_applied_txids", absl::StrJoin(v.half_applied_txids(), ",")}});
  }
  return bad;
}

absl::StatusOr<proto::TakeoverReport> Run::Go() {
  started_us_ = absl::ToUnixMicros(absl::Now());
  absl::Time t0 = absl::Now();
  RDF_ASSIGN_OR_RETURN(std::optional<TakeoverEpoch> existing, ReadTakeoverEpoch(fs_, *node_));
  std::string report_json = TakeoverReportPath(*node_, "json");
  if (existing.has_value() && fs_->Exists(report_json)) {
    RDF_ASSIGN_OR_RETURN(proto::TakeoverReport done,
                         ReadJson<proto::TakeoverReport>(fs_, report_json));
    if (done.epoch() == existing->number) {
      Progress(absl::StrCat("takeover epoch ", done.epoch(), " completed already at ",
                            FormatTime(done.completed_us()), "; its report follows"));
      return done;
    }
  }
  if (existing.has_value()) {
    epoch_ = *existing;
    Progress(absl::StrCat("resuming the unfinished takeover of epoch ", epoch_.number));
  } else {
    // Refuse before fencing, while refusing changes nothing: the save point
    // only grows, so one that is consistent now stays so.
    // (An unreadable one is left to the check at the final save point.)
    absl::StatusOr<std::optional<proto::SavePoint>> now =
        ReadPublishedSavePoint(config::ImageTrailDir(*node_));
    if (now.ok()) {
      RDF_RETURN_IF_ERROR(
          CheckConsistency(now->value_or(proto::SavePoint()), /*log=*/false).status());
    }
    epoch_ = {1, started_us_};
    RDF_RETURN_IF_ERROR(Annotate(WriteTakeoverEpoch(fs_, *node_, epoch_),
                                 "write the takeover epoch"));
  }
  absl::StatusOr<std::optional<proto::SavePoint>> before =
      ReadPublishedSavePoint(config::ImageTrailDir(*node_));
  uint64_t before_asn = before.ok() && before->has_value() ? (*before)->asn() : 0;
  Log(events::kTakeoverStarted,
      {{"epoch", absl::StrCat(epoch_.number)}, {"save_point_asn", absl::StrCat(before_asn)}});
  Progress(absl::StrCat("epoch ", epoch_.number,
                        " is durable: the receiver now refuses the old primary"));

  absl::StatusOr<proto::SavePoint> sp = FixFinalSavePoint();
  if (!sp.ok()) return Fail(sp.status(), "");
  Progress(absl::StrCat("final save point at ASN ", sp->asn(), "; ", sp->open_size(),
                        " transaction(s) without an outcome"));
  absl::StatusOr<std::vector<proto::InconsistentVolume>> inconsistent =
      CheckConsistency(*sp, /*log=*/true);
  if (!inconsistent.ok()) return Fail(inconsistent.status(), "");
  std::map<std::string, proto::VolumeTakeoverResult> results;
  absl::Status u = RunUpdaters(&results);
  if (!u.ok()) {
    std::string failed;
    for (const proto::VolumeConfig* v : o_.config->ProtectedVolumes()) {
      if (!results.contains(v->name())) absl::StrAppend(&failed, failed.empty() ? "" : ",", v->name());
    }
    return Fail(u, failed);
  }

  proto::TakeoverReport r;
  r.set_version(1);
  r.set_epoch(epoch_.number);
  r.set_node(node_->name());
  r.set_last_asn(sp->asn());
  // The newest record's primary time; when the backup had everything the
  // primary had written, the primary's newest audit time.
  r.set_last_primary_time_us(sp->asn() >= sp->audit_end_asn() && sp->audit_end_time_us() != 0
                                 ? std::max(sp->asn_time_us(), sp->audit_end_time_us())
                                 : sp->asn_time_us());
  r.set_audit_end_asn(sp->audit_end_asn());
  r.set_max_txid(sp->max_txid());
  r.set_forced(o_.force && !inconsistent->empty());
  for (proto::InconsistentVolume& v : *inconsistent) *r.add_inconsistent_volumes() = std::move(v);
  uint64_t lost_records = 0;
  for (const proto::OpenTransaction& t : sp->open()) {
    proto::LostTransaction* l = r.add_lost_transactions();
    l->set_txid(t.txid());
    l->set_records(t.records());
    lost_records += t.records();
  }
  for (auto& [volume, v] : results) {
    r.set_undone_records(r.undone_records() + v.undone_records());
    *r.add_volumes() = v;
  }
  r.set_duration_ms(absl::ToInt64Milliseconds(absl::Now() - t0));
  r.set_completed_us(absl::ToUnixMicros(absl::Now()));
  RDF_RETURN_IF_ERROR(WriteFileAtomically(fs_, TakeoverReportPath(*node_, "txt"),
                                          TakeoverReportText(r)));
  // report.json last: its presence means "complete".
  RDF_RETURN_IF_ERROR(WriteFileAtomically(fs_, report_json, json::MessageToJson(r) + "\n"));
  if (r.lost_transactions_size() > 0) {
    Log(events::kTransactionsLost, {{"count", absl::StrCat(r.lost_transactions_size())},
                                    {"records", absl::StrCat(lost_records)},
                                    {"report", report_json}});
  }
  Log(events::kTakeoverComplete,
      {{"epoch", absl::StrCat(r.epoch())}, {"last_asn", absl::StrCat(r.last_asn())},
       {"lost_transactions", absl::StrCat(r.lost_transactions_size())},
       {"undone_records", absl::StrCat(r.undone_records())},
       {"duration_ms", absl::StrCat(r.duration_ms())}, {"report", report_json}});
  Log(events::kLastMatPosition, {{"asn", absl::StrCat(r.last_asn())},
                                 {"time_us", absl::StrCat(r.last_primary_time_us())},
                                 {"time", FormatTime(r.last_primary_time_us())}});
  base_.events->Flush().IgnoreError();
  return r;
}

}  // namespace

std::vector<proto::InconsistentVolume> InconsistentVolumes(const proto::InitialCopy& copy,
                                                           const proto::SavePoint& sp) {
  std::vector<proto::InconsistentVolume> out;
  for (const proto::VolumeCopy& v : copy.volumes()) {
    if (v.snapshot_asn() <= sp.asn()) continue;
    proto::InconsistentVolume iv;
    iv.set_volume(v.volume());
    iv.set_snapshot_asn(v.snapshot_asn());
    iv.set_last_asn(sp.asn());
    const absl::flat_hash_set<uint64_t> open(v.open_txids().begin(), v.open_txids().end());
    std::vector<uint64_t> half;
    for (const proto::OpenTransaction& t : sp.open()) {
      if (t.first_asn() <= v.snapshot_asn() && !open.contains(t.txid())) half.push_back(t.txid());
    }
    std::sort(half.begin(), half.end());
    *iv.mutable_half_applied_txids() = {half.begin(), half.end()};
    out.push_back(std::move(iv));
  }
  return out;
}

absl::StatusOr<std::vector<uint64_t>> TransactionsWithDataIn(
    FileSystem* fs, const std::string& dir, const std::string& trail, uint64_t from_asn,
    uint64_t through_asn, const absl::flat_hash_set<uint64_t>& candidates) {
  std::vector<uint64_t> found;
  if (candidates.empty() || from_asn > through_asn) return found;
  RDF_ASSIGN_OR_RETURN(std::unique_ptr<trail::TrailReader> reader,
                       trail::TrailReader::Open({dir, trail, fs, nullptr}));
  RDF_RETURN_IF_ERROR(reader->SeekToAsn(from_asn));
  absl::flat_hash_set<uint64_t> seen;
  for (;;) {
    RDF_ASSIGN_OR_RETURN(std::optional<trail::Record> rec, reader->Next());
    if (!rec.has_value() || rec->asn > through_asn) break;
    if (rec->type != static_cast<uint8_t>(proto::DATA)) continue;
    RDF_ASSIGN_OR_RETURN(AuditHeader h, ScanAuditHeader(rec->payload));
    if (candidates.contains(h.txid) && seen.insert(h.txid).second) found.push_back(h.txid);
  }
  std::sort(found.begin(), found.end());
  return found;
}

void UpdaterProgressWatch::Observe(absl::Time now, const proto::ProcessStatus* st) {
  if (st == nullptr) return;
  const int64_t progress_us =
      st->last_progress_age_ms() < 0 ? 0 : st->time_us() - st->last_progress_age_ms() * 1000;
  const bool moved =
      !seen_.has_value() || st->state() != seen_->state() ||
      st->applied_asn() != seen_->applied_asn() || st->records() != seen_->records() ||
      st->batches() != seen_->batches() ||
      progress_us > seen_progress_us_ + 1000;  // (ages are whole milliseconds)
  if (moved) last_progress_ = now;
  seen_ = *st;
  seen_progress_us_ = std::max(seen_progress_us_, progress_us);
}

std::string UpdaterProgressWatch::Cause(absl::Time now) const {
  std::string s = absl::StrCat(
      "no progress for ", absl::FormatDuration(absl::Trunc(now - last_progress_, absl::Seconds(1))));
  if (!seen_.has_value()) return absl::StrCat(s, " (no status published)");
  absl::StrAppend(&s, " (state ", seen_->state(), ", applied ASN ", seen_->applied_asn(), ")");
  if (!seen_->last_error().empty()) absl::StrAppend(&s, ": ", seen_->last_error());
  return s;
}

std::string TakeoverReportText(const proto::TakeoverReport& r) {
  std::string s = absl::StrFormat(
      "RDF takeover report\n"
      "  node                     %s\n"
      "  epoch                    %d\n"
      "  completed                %s\n"
      "  duration                 %d ms\n"
      "  last ASN received        %d\n"
      "  its primary time         %s\n"
      "  primary audit end known  %d\n"
      "  next transaction id      above %d\n"
      "  lost transactions        %d\n"
      "  records undone           %d\n",
      r.node(), r.epoch(), FormatTime(r.completed_us()), r.duration_ms(), r.last_asn(),
      FormatTime(r.last_primary_time_us()), r.audit_end_asn(), r.max_txid(),
      r.lost_transactions_size(), r.undone_records());
  if (r.lost_transactions_size() > 0) {
    absl::StrAppend(&s, "\nLost transactions (their COMMIT or ABORT never reached the backup;\n"
                        "re-enter them if they committed on the old primary):\n"
                        "  txid                 records\n");
    for (const proto::LostTransaction& l : r.lost_transactions()) {
      absl::StrAppend(&s, absl::StrFormat("  %-20d %d\n", l.txid(), l.records()));
    }
  }
  if (r.inconsistent_volumes_size() > 0) {
    absl::StrAppend(&s, "\nINCONSISTENT VOLUMES (takeover forced during the catch-up after "
                        "initialize;\nthe new primary does not hold a point-in-time state):\n");
    for (const proto::InconsistentVolume& v : r.inconsistent_volumes()) {
      absl::StrAppend(
          &s, absl::StrFormat("  %s: its copy is at ASN %d, past the last ASN received (%d):\n"
                              "    transactions that touched it and committed in ASN (%d, %d] "
                              "are in it but were never received\n",
                              v.volume(), v.snapshot_asn(), v.last_asn(), v.last_asn(),
                              v.snapshot_asn()));
      if (v.half_applied_txids_size() > 0) {
        absl::StrAppend(&s, "    lost transactions that may stay applied on it (undone "
                            "elsewhere): ",
                        absl::StrJoin(v.half_applied_txids(), " "), "\n");
      }
    }
  }
  absl::StrAppend(&s, "\nVolumes:\n  volume      redo records  undone records  duration\n");
  for (const proto::VolumeTakeoverResult& v : r.volumes()) {
    absl::StrAppend(&s, absl::StrFormat("  %-10s  %12d  %14d  %d ms\n", v.volume(),
                                        v.redo_records(), v.undone_records(), v.duration_ms()));
  }
  return s;
}

absl::StatusOr<proto::TakeoverReport> RunTakeover(const TakeoverOptions& options) {
  const config::Config& cfg = *options.config;
  std::string node = options.node;
  if (node.empty()) {
    const proto::NodeConfig* b = cfg.NodeWithRole(proto::BACKUP);
    if (b == nullptr) return absl::InvalidArgumentError("the configuration has no BACKUP node");
    node = b->name();
  }
  // The takeover's own lock (one at a time) and event trail.
  absl::StatusOr<ProcessBase> base =
      StartProcess(cfg, node, proto::BACKUP, "takeover", FileSystem::Default(), Clock::Real());
  if (absl::IsInvalidArgument(base.status())) {
    return absl::InvalidArgumentError(
        absl::StrCat("takeover runs on the backup node: ", base.status().message()));
  }
  if (absl::IsFailedPrecondition(base.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("another takeover is running: ", base.status().message()));
  }
  if (!base.ok()) return base.status();
  const proto::NodeConfig* n = base->node;
  Run run(options, n, *std::move(base));
  return run.Go();
}

}  // namespace rdf::rdfcom
