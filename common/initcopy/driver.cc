#include "common/initcopy/driver.h"

#include <unistd.h>

#include <algorithm>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/base/crc32c.h"
#include "common/base/status_macros.h"
#include "common/initcopy/files.h"
#include "common/initcopy/source.h"
#include "common/initcopy/target.h"
#include "common/process/main.h"
#include "common/state/initial_copy.h"

namespace rdf::initcopy {
namespace {

using Request = proto::ControlRequest;

std::string FormatTime(int64_t us) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

class Progress {
 public:
  explicit Progress(std::ostream* out) : out_(out) {}
  void operator()(const std::string& line) const {
    if (out_ != nullptr) *out_ << "initialize: " << line << std::endl;
  }

 private:
  std::ostream* out_;
};

// --- local files -------------------------------------------------------------

// Both sides run here, on the nodes' data directories.
absl::StatusOr<proto::InitialCopy> RunLocal(const DriverOptions& o,
                                            const proto::NodeConfig& primary,
                                            const proto::NodeConfig& backup) {
  const config::Config& cfg = *o.config;
  const Progress progress(o.progress);
  RDF_RETURN_IF_ERROR(initcopy::CheckBackupStopped(cfg, backup));
  RDF_RETURN_IF_ERROR(initcopy::CheckExtractorStopped(primary));
  FileSystem* fs = FileSystem::Default();
  absl::StatusOr<ProcessBase> base =
      StartProcess(cfg, backup.name(), proto::BACKUP, "initialize", fs, Clock::Real());
  if (absl::IsFailedPrecondition(base.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("another initialize is running: ", base.status().message()));
  }
  if (!base.ok()) return base.status();
  proto::InitialCopy state;
  state.set_primary_node(primary.name());
  state.set_started_us(absl::ToUnixMicros(absl::Now()));
  initcopy::Target target(cfg, backup, fs);
  RDF_RETURN_IF_ERROR(target.Begin(absl::StrCat("rdfcom initialize (pid ", getpid(), ") started ",
                                                FormatTime(state.started_us()), "\n")));
  initcopy::SourceOptions so;
  so.config = &cfg;
  so.primary = &primary;
  so.fs = fs;
  so.out_dir = target.staging();
  so.keep_out_dir = true;
  so.pin_settle = o.pin_settle;
  so.progress = progress;
  initcopy::Source source(std::move(so));
  absl::StatusOr<proto::CopyPlan> plan = source.Begin();
  absl::StatusOr<proto::InitialCopy> done =
      plan.ok() ? target.Commit(*plan, state) : absl::StatusOr<proto::InitialCopy>(plan.status());
  if (!done.ok()) {
    if (target.installing()) {
      // The backup needs a new initialize either way; keep its audit.
      if (plan.ok()) source.Commit(plan->start_asn()).IgnoreError();
      return Annotate(done.status(), target.Abort().message());
    }
    source.Abort().IgnoreError();
    target.Abort().IgnoreError();
    return Annotate(done.status(), absl::StrCat("initialize failed; ", initcopy::kBackupUnchanged));
  }
  progress("replaced the backup's volumes, image trails and takeover state");
  RDF_RETURN_IF_ERROR(
      Annotate(source.Commit(done->start_asn()), "move the primary's pin to the start ASN"));
  initcopy::LogInitialized(base->events.get(), *done);
  return done;
}

// --- through the monitors ------------------------------------------------------

std::string Mib(uint64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

// One copy through both monitors (see initialize.h). A state machine of
// sorts: `phase_` says what to undo when a step fails.
class Stream {
 public:
  Stream(const DriverOptions& o, const proto::NodeConfig& primary,
         const proto::NodeConfig& backup)
      : o_(o), primary_(primary), backup_(backup), progress_(o.progress) {
    std::random_device rd;
    copy_id_ = absl::StrFormat("%08x%08x", rd(), rd());
  }

  absl::StatusOr<proto::InitialCopy> Go();

 private:
  enum class Phase { kNone, kTargetBegun, kSourceBegun, kCommitting };

  absl::StatusOr<proto::ControlReply> Call(const proto::NodeConfig& node, Request req) {
    req.set_copy_id(copy_id_);
    return o_.call(node, req);
  }
  // Asks `command` again until the reply says the worker is done.
  absl::StatusOr<proto::ControlReply> Poll(const proto::NodeConfig& node, const Request& req);
  absl::StatusOr<proto::InitialCopy> Steps();
  absl::Status Relay(const proto::VolumePlan& v);
  std::string Undo(const absl::Status& why);

  const DriverOptions& o_;
  const proto::NodeConfig& primary_;
  const proto::NodeConfig& backup_;
  const Progress progress_;
  std::string copy_id_;
  Phase phase_ = Phase::kNone;
  proto::CopyPlan plan_;
};

absl::StatusOr<proto::ControlReply> Stream::Poll(const proto::NodeConfig& node,
                                                 const Request& req) {
  for (;;) {
    RDF_ASSIGN_OR_RETURN(proto::ControlReply r, Call(node, req));
    if (r.init_ready()) return r;
    absl::SleepFor(o_.poll_interval);
  }
}

absl::Status Stream::Relay(const proto::VolumePlan& v) {
  const absl::Time t0 = absl::Now();
  absl::Time shown = t0;
  uint64_t offset = 0;
  auto line = [&] {
    const double s = std::max(absl::ToDoubleSeconds(absl::Now() - t0), 1e-3);
    progress_(absl::StrFormat("%s %s of %s (%d%%), %.1f MiB/s", v.volume(), Mib(offset),
                              Mib(v.bytes()), v.bytes() == 0 ? 100 : offset * 100 / v.bytes(),
                              offset / 1048576.0 / s));
  };
  while (offset < v.bytes()) {
    Request read;
    read.set_command(Request::INIT_SOURCE_READ);
    read.set_volume(v.volume());
    read.set_offset(offset);
    read.set_max_bytes(static_cast<uint32_t>(
        std::min<uint64_t>(std::min(o_.chunk_bytes, initcopy::kMaxChunkBytes), v.bytes() - offset)));
    RDF_ASSIGN_OR_RETURN(proto::ControlReply chunk, Call(primary_, read));
    if (chunk.data().empty()) {
      return absl::DataLossError(absl::StrCat("the primary's snapshot of ", v.volume(),
                                              " ends at ", offset, " of ", v.bytes(), " bytes"));
    }
    if (crc32c::Value(chunk.data().data(), chunk.data().size()) != chunk.crc32c()) {
      return absl::DataLossError(absl::StrCat("a chunk of ", v.volume(), " at offset ", offset,
                                              " arrived damaged from the primary (crc32c)"));
    }
    const uint64_t n = chunk.data().size();
    Request write;
    write.set_command(Request::INIT_TARGET_WRITE);
    write.set_volume(v.volume());
    write.set_offset(offset);
    write.set_crc32c(chunk.crc32c());
    write.set_data(std::move(*chunk.mutable_data()));
    RDF_RETURN_IF_ERROR(Call(backup_, std::move(write)).status());
    offset += n;
    if (o_.chunk_pause > absl::ZeroDuration()) absl::SleepFor(o_.chunk_pause);
    if (absl::Now() - shown >= absl::Seconds(1) && offset < v.bytes()) {
      line();
      shown = absl::Now();
    }
  }
  line();
  return absl::OkStatus();
}

absl::StatusOr<proto::InitialCopy> Stream::Steps() {
  const absl::Time t0 = absl::Now();
  Request begin;
  begin.set_command(Request::INIT_TARGET_BEGIN);
  RDF_RETURN_IF_ERROR(Call(backup_, begin).status());
  phase_ = Phase::kTargetBegun;
  progress_(absl::StrCat("copy ", copy_id_, ": node '", backup_.name(),
                         "' marked in progress; node '", primary_.name(),
                         "' snapshots its volumes and scans its audit"));
  Request source;
  source.set_command(Request::INIT_SOURCE_BEGIN);
  phase_ = Phase::kSourceBegun;  // from the first request on: its END(abort) is harmless
  RDF_ASSIGN_OR_RETURN(proto::ControlReply snap, Poll(primary_, source));
  plan_ = snap.plan();
  uint64_t total = 0;
  for (const proto::VolumePlan& v : plan_.volumes()) total += v.bytes();
  progress_(absl::StrCat("snapshots taken and audit scanned in ",
                         absl::ToInt64Milliseconds(absl::Now() - t0), " ms: ",
                         plan_.volumes_size(), " volume(s), ", Mib(total), ", ",
                         plan_.audit_records_scanned(), " audit record(s), ASN ",
                         plan_.first_audit_asn(), " to ", plan_.end_asn(), "; start ASN ",
                         plan_.start_asn()));
  const absl::Time c0 = absl::Now();
  for (const proto::VolumePlan& v : plan_.volumes()) RDF_RETURN_IF_ERROR(Relay(v));
  progress_(absl::StrFormat("copied %s in %d ms (%.1f MiB/s)", Mib(total),
                            absl::ToInt64Milliseconds(absl::Now() - c0),
                            total / 1048576.0 /
                                std::max(absl::ToDoubleSeconds(absl::Now() - c0), 1e-3)));
  Request commit;
  commit.set_command(Request::INIT_TARGET_COMMIT);
  *commit.mutable_plan() = plan_;
  commit.mutable_initial_copy()->set_primary_node(primary_.name());
  commit.mutable_initial_copy()->set_started_us(absl::ToUnixMicros(t0));
  phase_ = Phase::kCommitting;
  RDF_ASSIGN_OR_RETURN(proto::ControlReply installed, Poll(backup_, commit));
  progress_("replaced the backup's volumes, image trails and takeover state");
  Request end;
  end.set_command(Request::INIT_SOURCE_END);
  end.set_commit(true);
  end.set_start_asn(plan_.start_asn());
  phase_ = Phase::kNone;
  RDF_RETURN_IF_ERROR(Annotate(Call(primary_, end).status(),
                               "the backup is installed, but moving the primary's pin to the "
                               "start ASN failed"));
  return installed.initial_copy();
}

// Undoes what `phase_` says was done, and says what state each node is in.
std::string Stream::Undo(const absl::Status& why) {
  std::vector<std::string> out = {"initialize failed"};
  if (phase_ == Phase::kCommitting &&
      !(absl::IsFailedPrecondition(why) && absl::StrContains(why.message(),
                                                             initcopy::kBackupUnchanged))) {
    // The backup may have installed the copy (or it is incomplete and needs
    // a new initialize): either way the primary keeps the audit from R.
    Request end;
    end.set_command(Request::INIT_SOURCE_END);
    end.set_commit(true);
    end.set_start_asn(plan_.start_asn());
    absl::Status s = Call(primary_, end).status();
    out.push_back(s.ok() ? absl::StrCat("the primary's pin is at the start ASN ",
                                        plan_.start_asn(), " - 1")
                         : absl::StrCat("the primary's pin could not be moved (", s.message(),
                                        ")"));
    out.push_back("the backup may be incomplete (initialize/in_progress); run `rdfcom "
                  "initialize` again");
    return absl::StrJoin(out, "; ");
  }
  if (phase_ >= Phase::kSourceBegun) {
    Request end;
    end.set_command(Request::INIT_SOURCE_END);
    end.set_commit(false);
    absl::Status s = Call(primary_, end).status();
    out.push_back(s.ok() ? "the primary's pin was restored"
                         : absl::StrCat("the primary's pin could not be restored (", s.message(),
                                        "); its monitor restores it after 2 minutes without "
                                        "requests"));
  }
  if (phase_ >= Phase::kTargetBegun && phase_ != Phase::kCommitting) {
    Request abort;
    abort.set_command(Request::INIT_TARGET_ABORT);
    absl::Status s = Call(backup_, abort).status();
    out.push_back(s.ok() ? std::string(initcopy::kBackupUnchanged)
                         : absl::StrCat("the backup was not changed but keeps its in-progress "
                                        "mark (",
                                        absl::IsUnavailable(s) ? "its monitor did not answer"
                                                               : s.message(),
                                        "); run `rdfcom initialize` again"));
  } else if (phase_ == Phase::kCommitting) {
    out.push_back(initcopy::kBackupUnchanged);
  }
  return absl::StrJoin(out, "; ");
}

absl::StatusOr<proto::InitialCopy> Stream::Go() {
  absl::StatusOr<proto::InitialCopy> done = Steps();
  if (!done.ok()) return Annotate(done.status(), Undo(done.status()));
  return done;
}

}  // namespace

std::string SummaryText(const proto::InitialCopy& s) {
  uint64_t min_snapshot = UINT64_MAX;
  for (const proto::VolumeCopy& v : s.volumes()) {
    min_snapshot = std::min(min_snapshot, v.snapshot_asn());
  }
  std::string out = absl::StrFormat(
      "RDF initial copy %d: %s -> %s\n"
      "  audit scanned            ASN %d to %d (%d records)\n"
      "  replication starts at    ASN %d%s\n"
      "  duration                 %d ms\n"
      "\n  volume      tmf applied  snapshot ASN      records        bytes  open transactions\n",
      s.number(), s.primary_node(), s.backup_node(), s.first_audit_asn(),
      s.first_audit_asn() + (s.audit_records_scanned() == 0 ? 0 : s.audit_records_scanned() - 1),
      s.audit_records_scanned(), s.start_asn(),
      s.volumes_size() > 0 && s.start_asn() <= min_snapshot
          ? " (at or before a snapshot: transactions open across the copy are shipped whole)"
          : "",
      s.duration_ms());
  for (const proto::VolumeCopy& v : s.volumes()) {
    std::string open = absl::StrCat(v.open_txids_size());
    if (v.open_txids_size() > 0) {
      std::vector<uint64_t> shown(v.open_txids().begin(),
                                  v.open_txids().begin() + std::min(v.open_txids_size(), 8));
      absl::StrAppend(&open, " (", absl::StrJoin(shown, " "),
                      v.open_txids_size() > 8 ? " ..." : "", ")");
    }
    absl::StrAppend(&out, absl::StrFormat("  %-10s  %11d  %12d  %11d  %11d  %s\n", v.volume(),
                                          v.tmf_applied_asn(), v.snapshot_asn(), v.records(),
                                          v.bytes(), open));
  }
  return out;
}

absl::StatusOr<proto::InitialCopy> Drive(const DriverOptions& options) {
  const config::Config& cfg = *options.config;
  const proto::NodeConfig* primary = cfg.NodeWithRole(proto::PRIMARY);
  const proto::NodeConfig* backup = cfg.NodeWithRole(proto::BACKUP);
  if (primary == nullptr || backup == nullptr) {
    return absl::InvalidArgumentError("the configuration needs a PRIMARY and a BACKUP node");
  }
  DriverOptions o = options;
  if (!o.probe) o.probe = control::NetworkCall(cfg, absl::Seconds(3));
  if (!o.call) o.call = control::ChannelCall(cfg, absl::Seconds(15));
  // Which monitors answer decides the mode.
  std::vector<std::string> down;
  for (const proto::NodeConfig* n : {primary, backup}) {
    Request status;
    status.set_command(Request::STATUS);
    absl::StatusOr<proto::ControlReply> r = o.probe(*n, status);
    if (!r.ok()) {
      down.push_back(absl::StrCat("the monitor of the ", n == primary ? "primary" : "backup",
                                  " node '", n->name(), "' does not answer (", r.status().message(),
                                  "); start it there (`rdf-monitor --config FILE --node ",
                                  n->name(), " --no-start`)"));
    }
  }
  if (down.empty()) return Stream(o, *primary, *backup).Go();
  FileSystem* fs = FileSystem::Default();
  const bool local = fs->Exists(primary->data_dir()) && fs->Exists(backup->data_dir());
  if (down.size() == 2 && local) {
    Progress(o.progress)("neither monitor answers; both data directories are here: copying "
                         "through local files");
    return RunLocal(o, *primary, *backup);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "initialize streams the copy through both nodes' monitors: ", absl::StrJoin(down, "; "),
      down.size() == 2 ? " (without monitors it copies through local files only where both "
                         "data directories exist, which they do not here)"
                       : ""));
}

}  // namespace rdf::initcopy
