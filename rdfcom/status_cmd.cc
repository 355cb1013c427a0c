#include "rdfcom/status_cmd.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/events/log.h"
#include "common/json/proto.h"
#include "common/state/status_file.h"

namespace rdf::rdfcom {
namespace {

// A process row from the monitor's view of it.
proto::ProcessSummary Summarize(const std::string& node, const proto::ManagedProcess& m) {
  const proto::ProcessStatus& st = m.status();
  proto::ProcessSummary p;
  p.set_name(m.name());
  p.set_node(node);
  p.set_volume(m.volume());
  // A process the monitor runs shows its own state; otherwise the monitor's
  // reason it does not run (STOPPED, HELD, BACKOFF).
  const bool own = m.managed_state() == "RUNNING" || m.managed_state() == "LAST_KNOWN" ||
                   m.managed_state() == "EXTERNAL";
  p.set_state(own && !st.state().empty() ? st.state() : m.managed_state());
  p.set_pid(m.pid());
  p.set_restarts(m.restarts());
  *p.mutable_position() = st.position();
  p.set_rtd_ms(m.status_age_ms() < 0 ? -1 : st.rtd_ms());
  p.set_backlog_records(st.backlog_records());
  p.set_backlog_bytes(st.backlog_bytes());
  p.set_last_progress_age_ms(m.status_age_ms() < 0 ? -1 : st.last_progress_age_ms());
  p.set_last_error(st.last_error());
  if (m.managed_state() == "HUNG") {  // the status shown is stale: say how stale
    p.set_last_error(m.status_age_ms() < 0
                         ? std::string("no status since it started")
                         : absl::StrFormat("no status for %.1f s", m.status_age_ms() / 1000.0));
  }
  if (m.stalled_ms() > 0) {  // its position stands while work waits (common/process/stall.h)
    p.set_state("STALLED");
    p.set_last_error(m.stall_reason());
    p.set_stalled_ms(m.stalled_ms());
  }
  p.set_status_age_ms(m.status_age_ms());
  p.set_sent_asn(st.sent_asn());
  p.set_acked_asn(st.acked_asn());
  p.set_save_point_asn(st.save_point_asn());
  p.set_last_message_age_ms(st.last_message_age_ms());
  p.set_applied_asn(st.applied_asn());
  *p.mutable_trails() = st.trails();
  p.set_purged_segments(st.purged_segments());
  p.set_image_bytes(st.image_bytes());
  p.set_image_bytes_peak(st.image_bytes_peak());
  p.set_spilled_images(st.spilled_images());
  p.set_last_exit(m.last_exit());
  return p;
}

// What a node's data directory says when its monitor does not answer: its
// processes' last status files, as a NodeStatus with no monitor.
proto::NodeStatus FromStatusFiles(const config::Config& config, const proto::NodeConfig& node) {
  proto::NodeStatus n;
  n.set_node(node.name());
  n.set_role(proto::NodeRole_Name(node.role()));
  std::vector<std::pair<std::string, std::string>> names;  // name, volume
  if (node.role() == proto::PRIMARY) {
    names.push_back({"extractor", ""});
  } else {
    names.push_back({"receiver", ""});
    for (const proto::VolumeConfig* v : config.ProtectedVolumes()) {
      names.push_back({absl::StrCat("updater-", config::VolumeDirName(v->name())), v->name()});
    }
    names.push_back({"purger", ""});
  }
  const int64_t now_us = absl::ToUnixMicros(absl::Now());
  for (const auto& [name, volume] : names) {
    proto::ManagedProcess* m = n.add_processes();
    m->set_name(name);
    m->set_volume(volume);
    m->set_managed_state("UNKNOWN");
    absl::StatusOr<proto::ProcessStatus> st = ReadStatus(node.data_dir(), name);
    if (st.ok()) {
      m->set_status_age_ms(std::max<int64_t>(0, (now_us - st->time_us()) / 1000));
      *m->mutable_status() = *std::move(st);
      m->set_managed_state("LAST_KNOWN");
    } else {
      m->set_status_age_ms(-1);
    }
  }
  return n;
}

void Place(proto::SystemStatus& s, const proto::NodeStatus& n) {
  for (const proto::ManagedProcess& m : n.processes()) {
    proto::ProcessSummary p = Summarize(n.node(), m);
    if (m.name() == "extractor") {
      *s.mutable_extractor() = std::move(p);
    } else if (m.name() == "receiver") {
      *s.mutable_receiver() = std::move(p);
    } else if (m.name() == "purger") {
      *s.mutable_purger() = std::move(p);
    } else if (m.name() == "tmf") {
      *s.mutable_application() = std::move(p);
    } else {
      *s.add_updaters() = std::move(p);
    }
  }
}

// The system's state from the two nodes' states (docs/status.md).
std::string SystemState(const proto::SystemStatus& s) {
  const std::string& p = s.primary().state();
  const std::string& b = s.backup().state();
  if (absl::StartsWith(b, "TAKEOVER")) return b;
  if (!s.primary().reachable() && !s.backup().reachable()) return "UNREACHABLE";
  if (!s.primary().reachable()) return "PRIMARY_UNREACHABLE";
  if (!s.backup().reachable()) return "BACKUP_UNREACHABLE";
  if (p == "STOPPING" || b == "STOPPING") return "STOPPING";
  if (p == "STOPPED" && b == "STOPPED") return "STOPPED";
  if (b == "UPDATE_STOPPED") return "UPDATE_STOPPED";
  if (p == "NORMAL" && b == "NORMAL") return "NORMAL";
  return "DEGRADED";
}

std::string Age(int64_t ms) {
  if (ms < 0) return "-";
  if (ms < 10000) return absl::StrFormat("%.1fs", ms / 1000.0);
  if (ms < 3600000) return absl::StrCat(ms / 1000, "s");
  return absl::StrCat(ms / 3600000, "h");
}

std::string Bytes(uint64_t b) {
  if (b < 10 * 1024) return absl::StrCat(b, "B");
  if (b < 10ull << 20) return absl::StrCat(b >> 10, "KiB");
  if (b < 10ull << 30) return absl::StrCat(b >> 20, "MiB");
  return absl::StrCat(b >> 30, "GiB");
}

}  // namespace

std::string FormatRtd(int64_t rtd_ms) {
  if (rtd_ms < 0) return "-";
  return absl::StrFormat("%d:%02d.%03d", rtd_ms / 60000, (rtd_ms / 1000) % 60, rtd_ms % 1000);
}

proto::SystemStatus GatherStatus(const config::Config& config, const ControlCall& call,
                                 const proto::SystemStatus* last_known) {
  proto::SystemStatus s;
  s.set_system(config.proto.system());
  s.set_time_us(absl::ToUnixMicros(absl::Now()));
  // Every part present in the JSON, even when unknown.
  s.mutable_primary();
  s.mutable_backup();
  s.mutable_extractor()->set_rtd_ms(-1);
  s.mutable_receiver()->set_rtd_ms(-1);
  s.mutable_purger()->set_rtd_ms(-1);
  proto::ControlRequest req;
  req.set_command(proto::ControlRequest::STATUS);
  for (proto::NodeRole role : {proto::PRIMARY, proto::BACKUP}) {
    const proto::NodeConfig* node = config.NodeWithRole(role);
    if (node == nullptr) continue;
    absl::StatusOr<proto::ControlReply> r = call(*node, req);
    const bool reachable = r.ok();
    proto::NodeStatus n;
    if (reachable) {
      n = r->status();
    } else if (last_known != nullptr) {
      // Keep the previous rows of this node; mark them as last known.
      if (role == proto::PRIMARY) {
        *s.mutable_primary() = last_known->primary();
        *s.mutable_extractor() = last_known->extractor();
      } else {
        *s.mutable_backup() = last_known->backup();
        *s.mutable_receiver() = last_known->receiver();
        *s.mutable_updaters() = last_known->updaters();
        *s.mutable_purger() = last_known->purger();
      }
    } else {
      n = FromStatusFiles(config, *node);
    }
    const std::string error = reachable ? "" : std::string(r.status().message());
    if (role == proto::PRIMARY) {
      proto::PrimarySummary* p = s.mutable_primary();
      p->set_node(node->name());
      p->set_reachable(reachable);
      p->set_error(error);
      if (reachable || last_known == nullptr) {
        p->set_state(reachable ? n.state() : "UNREACHABLE");
        p->set_monitor_pid(n.monitor_pid());
        p->set_audit_end_asn(n.audit_end_asn());
        p->set_audit_end_time_us(n.audit_end_time_us());
      } else {
        p->set_state("UNREACHABLE");
      }
    } else {
      proto::BackupSummary* b = s.mutable_backup();
      b->set_node(node->name());
      b->set_reachable(reachable);
      b->set_error(error);
      if (reachable || last_known == nullptr) {
        b->set_state(reachable ? n.state() : "UNREACHABLE");
        b->set_monitor_pid(n.monitor_pid());
        b->set_takeover_epoch(n.takeover_epoch());
      } else {
        b->set_state("UNREACHABLE");
      }
    }
    if (reachable || last_known == nullptr) Place(s, n);
  }
  s.set_state(SystemState(s));
  return s;
}

std::string StatusText(const proto::SystemStatus& s) {
  std::string out = absl::StrCat("RDF system ", s.system(), "   ", events::FormatTimeUs(s.time_us()),
                                 "   state ", s.state(), "\n");
  auto node_line = [&](const std::string& role, const std::string& name, bool reachable,
                       const std::string& state, int pid, const std::string& error) {
    absl::StrAppend(&out, absl::StrFormat("  %-8s %-10s ", role, name));
    if (reachable) {
      absl::StrAppend(&out, absl::StrFormat("%-22s monitor pid %d", state, pid));
    } else {
      absl::StrAppend(&out, "NOT REACHABLE (last known values below): ", error);
    }
  };
  node_line("primary", s.primary().node(), s.primary().reachable(), s.primary().state(),
            s.primary().monitor_pid(), s.primary().error());
  if (s.primary().audit_end_asn() > 0) {
    absl::StrAppend(&out, "   audit end ASN ", s.primary().audit_end_asn());
  }
  absl::StrAppend(&out, "\n");
  node_line("backup", s.backup().node(), s.backup().reachable(), s.backup().state(),
            s.backup().monitor_pid(), s.backup().error());
  if (s.backup().takeover_epoch() > 0) {
    absl::StrAppend(&out, "   takeover epoch ", s.backup().takeover_epoch());
  }
  absl::StrAppend(&out, "\n\n");
  absl::StrAppend(&out, absl::StrFormat("%-16s %-8s %-16s %7s %11s %12s %10s %14s %8s %s\n",
                                        "PROCESS", "VOLUME", "STATE", "SEGMENT", "OFFSET",
                                        "ASN", "RTD", "BACKLOG", "PROGRESS", "LAST ERROR"));
  auto row = [&](const proto::ProcessSummary& p, const std::string& extra) {
    if (p.name().empty()) return;
    std::string backlog = "-";
    if (p.backlog_records() > 0 || p.backlog_bytes() > 0) {
      backlog = absl::StrCat(p.backlog_records(), "r/", Bytes(p.backlog_bytes()));
    } else if (p.status_age_ms() >= 0) {
      backlog = "0";
    }
    std::string error = p.last_error();
    if (error.empty() && p.restarts() > 0 && !p.last_exit().empty()) {
      error = absl::StrCat("restarted ", p.restarts(), "x, last: ", p.last_exit());
    }
    absl::StrAppend(&out, absl::StrFormat("%-16s %-8s %-16s %7d %11d %12d %10s %14s %8s %s%s\n",
                                          p.name(), p.volume(), p.state(),
                                          p.position().segment(), p.position().offset(),
                                          p.position().asn(), FormatRtd(p.rtd_ms()), backlog,
                                          Age(p.last_progress_age_ms()), error, extra));
  };
  row(s.application(), s.application().name().empty()
                           ? ""
                           : absl::StrCat("  applied ", s.application().applied_asn(), " images ",
                                          Bytes(s.application().image_bytes()), " spilled ",
                                          s.application().spilled_images()));
  row(s.extractor(), s.extractor().name().empty()
                         ? ""
                         : absl::StrCat("  sent ", s.extractor().sent_asn(), " acked ",
                                        s.extractor().acked_asn()));
  row(s.receiver(), s.receiver().name().empty()
                        ? ""
                        : absl::StrCat("  save point ", s.receiver().save_point_asn()));
  for (const proto::ProcessSummary& u : s.updaters()) {
    row(u, absl::StrCat("  applied ", u.applied_asn()));
  }
  std::string trails;
  for (const proto::TrailUsage& t : s.purger().trails()) {
    absl::StrAppend(&trails, trails.empty() ? "  " : ", ", t.name(), " ", t.segments(), "seg/",
                    Bytes(t.bytes()), t.held_by().empty() ? "" : " held by ", t.held_by());
  }
  row(s.purger(), trails);
  return out;
}

absl::Status RunStatus(const config::Config& config, const ControlCall& call,
                       const StatusOptions& options, std::ostream& out) {
  std::optional<proto::SystemStatus> last;
  for (;;) {
    proto::SystemStatus s = GatherStatus(config, call, last ? &*last : nullptr);
    if (options.json) {
      out << json::MessageToJson(s) << "\n";
    } else {
      if (options.keep_watching) out << "\n";
      out << StatusText(s);
    }
    out.flush();
    if (!options.keep_watching && (!s.primary().reachable() || !s.backup().reachable())) {
      std::vector<std::string> down;
      if (!s.primary().reachable()) down.push_back(s.primary().error());
      if (!s.backup().reachable()) down.push_back(s.backup().error());
      return absl::UnavailableError(absl::StrJoin(down, "; "));
    }
    last = std::move(s);
    if (!options.keep_watching) return absl::OkStatus();
    const absl::Time end = absl::Now() + options.interval;
    while (options.keep_watching() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(50));
    if (!options.keep_watching()) return absl::OkStatus();
  }
}

absl::Status RunSimpleCommand(const config::Config& config, const ControlCall& call,
                              const std::vector<const proto::NodeConfig*>& nodes,
                              proto::ControlRequest::Command command, std::ostream& out) {
  proto::ControlRequest req;
  req.set_command(command);
  for (const proto::NodeConfig* n : nodes) {
    absl::StatusOr<proto::ControlReply> r = call(*n, req);
    if (!r.ok()) return r.status();
    out << n->name() << ": " << r->status().state() << "\n";
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RunDrain(const config::Config& config, const ControlCall& call,
                                  const DrainOptions& options) {
  const proto::NodeConfig* primary = config.NodeWithRole(proto::PRIMARY);
  const proto::NodeConfig* backup = config.NodeWithRole(proto::BACKUP);
  proto::ControlRequest status;
  status.set_command(proto::ControlRequest::STATUS);
  absl::StatusOr<proto::ControlReply> p = call(*primary, status);
  if (!p.ok()) return p.status();
  const uint64_t target = p->status().audit_end_asn();
  auto say = [&](const std::string& line) {
    if (options.progress) *options.progress << "rdfcom: " << line << std::endl;
  };
  say(absl::StrCat("draining: shipping and applying everything through ASN ", target));
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Time next_say = absl::Now() + absl::Seconds(5);
  for (;;) {
    absl::StatusOr<proto::ControlReply> b = call(*backup, status);
    if (!b.ok()) return b.status();
    const proto::NodeStatus& n = b->status();
    uint64_t save_point = 0, least_applied = UINT64_MAX;
    std::string behind;
    for (const proto::ManagedProcess& m : n.processes()) {
      if (m.name() == "receiver") save_point = m.status().save_point_asn();
      if (m.program() == "rdf-updater") {
        if (m.managed_state() != "RUNNING" && m.managed_state() != "BACKOFF") {
          return absl::FailedPreconditionError(absl::StrCat(
              m.name(), " is ", m.managed_state(),
              ": it cannot catch up (`rdfcom update start` first), so nothing was stopped"));
        }
        if (m.status().applied_asn() < least_applied) {
          least_applied = m.status().applied_asn();
          behind = m.name();
        }
      }
    }
    if (save_point >= target && least_applied >= target) {
      say(absl::StrCat("drained through ASN ", target, " (save point ", save_point, ")"));
      proto::ControlRequest stop;
      stop.set_command(proto::ControlRequest::STOP);
      absl::StatusOr<proto::ControlReply> r = call(*primary, stop);
      if (!r.ok()) return r.status();
      stop.set_drained_asn(target);
      r = call(*backup, stop);
      if (!r.ok()) return r.status();
      return target;
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "not drained within ", absl::FormatDuration(options.timeout), ": save point ",
          save_point, " of ", target, ", ", behind, " applied through ", least_applied,
          "; nothing was stopped"));
    }
    if (now >= next_say) {
      say(absl::StrCat("save point ", save_point, " of ", target, "; slowest updater ", behind,
                       " at ", least_applied));
      next_say = now + absl::Seconds(5);
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace rdf::rdfcom
