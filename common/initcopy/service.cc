#include "common/initcopy/service.h"

#include <chrono>
#include <future>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/crc32c.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/initcopy/files.h"
#include "common/initcopy/source.h"
#include "common/initcopy/target.h"
#include "common/process/main.h"
#include "common/state/initial_copy.h"

namespace rdf::initcopy {
namespace {

using Command = proto::ControlRequest::Command;

template <typename T>
bool Ready(const std::future<T>& f) {
  return f.valid() && f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

}  // namespace

struct Service::Session {
  std::string id;
  absl::Time last = absl::Now();
  // Primary.
  std::unique_ptr<initcopy::Source> source;
  std::future<absl::StatusOr<proto::CopyPlan>> begin;  // the worker
  std::optional<proto::CopyPlan> plan;                 // once it succeeded
  bool abort_queued = false;                           // END(abort) while it ran
  // Backup.
  std::optional<ProcessBase> base;  // the "initialize" lock and event log
  std::unique_ptr<initcopy::Target> target;
  std::future<absl::StatusOr<proto::InitialCopy>> commit;  // the worker

  bool working() const {
    return (begin.valid() && !Ready(begin)) || (commit.valid() && !Ready(commit));
  }
};

Service::Service(const config::Config& config, const proto::NodeConfig& node,
                                     events::EventLog* events)
    : config_(config), node_(node), events_(events) {}

Service::~Service() {
  if (session_ == nullptr) return;
  if (session_->begin.valid()) session_->begin.wait();
  if (session_->commit.valid()) session_->commit.wait();
  End("the monitor is stopping").IgnoreError();
}

bool Service::Serves(Command c) {
  return c >= proto::ControlRequest::INIT_SOURCE_BEGIN &&
         c <= proto::ControlRequest::INIT_TARGET_ABORT;
}

bool Service::busy() const { return session_ != nullptr; }
std::string Service::copy_id() const { return session_ ? session_->id : ""; }

void Service::Handle(const proto::ControlRequest& req, bool set_stopped,
                               proto::ControlReply* reply) {
  absl::Status s = Dispatch(req, set_stopped, reply);
  if (!s.ok()) {
    reply->set_ok(false);
    reply->set_error(std::string(s.message()));
  }
}

absl::Status Service::Dispatch(const proto::ControlRequest& req, bool set_stopped,
                                         proto::ControlReply* reply) {
  if (req.copy_id().empty()) {
    return absl::InvalidArgumentError("an initialize request without a copy id");
  }
  const bool source = Serves(req.command()) &&
                      req.command() <= proto::ControlRequest::INIT_SOURCE_END;
  const proto::NodeRole role = source ? proto::PRIMARY : proto::BACKUP;
  if (node_.role() != role) {
    return absl::FailedPreconditionError(absl::StrCat(
        proto::ControlRequest::Command_Name(req.command()), " is for the ",
        source ? "primary" : "backup", " node's monitor; this is node '", node_.name(), "'"));
  }
  switch (req.command()) {
    case proto::ControlRequest::INIT_SOURCE_BEGIN:
      return SourceBegin(req, set_stopped, reply);
    case proto::ControlRequest::INIT_SOURCE_READ:
      return SourceRead(req, reply);
    case proto::ControlRequest::INIT_SOURCE_END:
      return SourceEnd(req);
    case proto::ControlRequest::INIT_TARGET_BEGIN:
      return TargetBegin(req, set_stopped);
    case proto::ControlRequest::INIT_TARGET_WRITE:
      return TargetWrite(req);
    case proto::ControlRequest::INIT_TARGET_COMMIT:
      return TargetCommit(req, reply);
    case proto::ControlRequest::INIT_TARGET_ABORT:
      return TargetAbort(req);
    default:
      return absl::InvalidArgumentError("not an initialize command");
  }
}

absl::Status Service::Refuse(const std::string& copy_id) const {
  if (session_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no initial copy ", copy_id, " is in progress on node '", node_.name(),
        "' (it ended, was abandoned after ", absl::FormatDuration(kIdle),
        " without requests, or the monitor restarted); run `rdfcom initialize` again"));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "another initial copy (", session_->id, ") is in progress on node '", node_.name(),
      "'; it is abandoned after ", absl::FormatDuration(kIdle), " without requests"));
}

absl::StatusOr<Service::Session*> Service::Find(const std::string& copy_id) {
  if (session_ == nullptr || session_->id != copy_id) return Refuse(copy_id);
  session_->last = absl::Now();
  return session_.get();
}

// REQUIRES: no worker runs. Source::Abort and Target::Abort are safe
// whatever the session got to (a failed Begin restored the pin already; a
// Target that was installing keeps its mark and says so).
absl::Status Service::End(const char* why) {
  if (session_ == nullptr) return absl::OkStatus();
  absl::Status s;
  if (session_->source != nullptr) s.Update(session_->source->Abort());
  if (session_->target != nullptr) s.Update(session_->target->Abort());
  if (why != nullptr) {
    std::cerr << "rdf-monitor: initial copy " << session_->id << " abandoned (" << why
              << ")" << (s.ok() ? "" : ": ") << s.message() << std::endl;
  }
  session_.reset();
  return s;
}

// --- primary ---------------------------------------------------------------

absl::Status Service::SourceBegin(const proto::ControlRequest& req, bool set_stopped,
                                            proto::ControlReply* reply) {
  if (session_ == nullptr) {
    if (!set_stopped) {
      return absl::FailedPreconditionError(
          "the primary's process set runs; stop it first (`rdfcom stop`): initialize moves "
          "the pin its extractor keeps");
    }
    RDF_RETURN_IF_ERROR(initcopy::CheckExtractorStopped(node_));
    events_->Log(events::kCommandLogged,
                 {{"command", "INIT_SOURCE_BEGIN"}, {"operator", req.operator_()}});
    session_ = std::make_unique<Session>();
    session_->id = req.copy_id();
    initcopy::SourceOptions o;
    o.config = &config_;
    o.primary = &node_;
    o.out_dir = InitialCopyOutgoingDir(node_);
    session_->source = std::make_unique<initcopy::Source>(std::move(o));
    initcopy::Source* src = session_->source.get();
    session_->begin = std::async(std::launch::async, [src] { return src->Begin(); });
    return absl::OkStatus();  // init_ready false: ask again
  }
  RDF_ASSIGN_OR_RETURN(Session * s, Find(req.copy_id()));
  if (s->source == nullptr) return Refuse(req.copy_id());
  if (!s->plan.has_value()) {
    if (!Ready(s->begin)) return absl::OkStatus();
    absl::StatusOr<proto::CopyPlan> plan = s->begin.get();
    if (!plan.ok()) {
      session_.reset();  // Begin put the pin back itself
      return Annotate(plan.status(), "the primary's snapshot failed (its pin is restored)");
    }
    s->plan = *std::move(plan);
  }
  reply->set_init_ready(true);
  *reply->mutable_plan() = *s->plan;
  return absl::OkStatus();
}

absl::Status Service::SourceRead(const proto::ControlRequest& req,
                                           proto::ControlReply* reply) {
  RDF_ASSIGN_OR_RETURN(Session * s, Find(req.copy_id()));
  if (s->source == nullptr || !s->plan.has_value()) {
    return absl::FailedPreconditionError("the primary's snapshot is not ready");
  }
  for (const proto::VolumePlan& v : s->plan->volumes()) {
    if (v.volume() != req.volume()) continue;
    RDF_ASSIGN_OR_RETURN(
        std::string data,
        initcopy::ReadChunk(initcopy::SnapshotPath(InitialCopyOutgoingDir(node_), v.volume()),
                            req.offset(), req.max_bytes()));
    reply->set_crc32c(crc32c::Value(data.data(), data.size()));
    reply->set_data(std::move(data));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("no snapshot of volume '", req.volume(), "'"));
}

absl::Status Service::SourceEnd(const proto::ControlRequest& req) {
  if (!req.commit() && (session_ == nullptr || session_->id != req.copy_id())) {
    return absl::OkStatus();  // nothing to abort (any more)
  }
  RDF_ASSIGN_OR_RETURN(Session * s, Find(req.copy_id()));
  if (s->source == nullptr) return Refuse(req.copy_id());
  if (!s->plan.has_value() && req.commit()) {
    return absl::FailedPreconditionError("the primary's snapshot is not ready");
  }
  events_->Log(events::kCommandLogged,
               {{"command", req.commit() ? "INIT_SOURCE_END commit" : "INIT_SOURCE_END abort"},
                {"operator", req.operator_()}});
  if (!req.commit()) {
    if (s->working()) {
      s->abort_queued = true;  // Tick aborts once the worker is done
      return absl::OkStatus();
    }
    return End(nullptr);
  }
  absl::Status c = s->source->Commit(req.start_asn());
  session_.reset();
  return Annotate(c, "move the primary's pin to the start ASN");
}

// --- backup ----------------------------------------------------------------

absl::Status Service::TargetBegin(const proto::ControlRequest& req, bool set_stopped) {
  if (session_ != nullptr) {
    RDF_ASSIGN_OR_RETURN(Session * s, Find(req.copy_id()));
    return s->target != nullptr ? absl::OkStatus() : Refuse(req.copy_id());
  }
  if (!set_stopped) {
    return absl::FailedPreconditionError(
        "the backup's process set runs; stop it first (`rdfcom stop`): initialize replaces "
        "its volumes and image trails");
  }
  RDF_RETURN_IF_ERROR(initcopy::CheckBackupStopped(config_, node_));
  absl::StatusOr<ProcessBase> base = StartProcess(config_, node_.name(), proto::BACKUP,
                                                  "initialize", FileSystem::Default(),
                                                  Clock::Real());
  if (absl::IsFailedPrecondition(base.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("another initialize is running: ", base.status().message()));
  }
  if (!base.ok()) return base.status();
  auto s = std::make_unique<Session>();
  s->id = req.copy_id();
  s->base = *std::move(base);
  s->target = std::make_unique<initcopy::Target>(config_, node_, FileSystem::Default());
  RDF_RETURN_IF_ERROR(s->target->Begin(absl::StrCat(
      "rdfcom initialize (copy ", req.copy_id(), ", ", req.operator_(),
      ") through the monitor (pid ", getpid(), ") started ",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), "\n")));
  session_ = std::move(s);
  return absl::OkStatus();
}

absl::Status Service::TargetWrite(const proto::ControlRequest& req) {
  RDF_ASSIGN_OR_RETURN(Session * s, Find(req.copy_id()));
  if (s->target == nullptr || s->commit.valid()) {
    return absl::FailedPreconditionError("this copy takes no more chunks");
  }
  const proto::VolumeConfig* v = config_.FindVolume(req.volume());
  if (v == nullptr || v->unprotected()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", req.volume(), "' is not a protected volume of this configuration"));
  }
  return initcopy::AppendChunk(initcopy::SnapshotPath(s->target->staging(), req.volume()),
                               req.offset(), req.data(), req.crc32c())
      .status();
}

absl::Status Service::TargetCommit(const proto::ControlRequest& req,
                                             proto::ControlReply* reply) {
  if (session_ == nullptr && !done_id_.empty() && done_id_ == req.copy_id()) {
    reply->set_init_ready(true);  // the first reply was lost
    *reply->mutable_initial_copy() = done_state_;
    return absl::OkStatus();
  }
  RDF_ASSIGN_OR_RETURN(Session * s, Find(req.copy_id()));
  if (s->target == nullptr) return Refuse(req.copy_id());
  if (!s->commit.valid()) {
    events_->Log(events::kCommandLogged,
                 {{"command", "INIT_TARGET_COMMIT"}, {"operator", req.operator_()}});
    initcopy::Target* t = s->target.get();
    s->commit = std::async(std::launch::async,
                           [t, plan = req.plan(), partial = req.initial_copy()] {
                             return t->Commit(plan, partial);
                           });
    return absl::OkStatus();
  }
  if (!Ready(s->commit)) return absl::OkStatus();
  absl::StatusOr<proto::InitialCopy> state = s->commit.get();
  if (!state.ok()) {
    absl::Status aborted = End(nullptr);
    if (aborted.ok()) {
      return Annotate(state.status(), absl::StrCat("; ", initcopy::kBackupUnchanged));
    }
    return Annotate(state.status(), aborted.message());
  }
  initcopy::LogInitialized(s->base->events.get(), *state);
  done_id_ = s->id;
  done_state_ = *state;
  session_.reset();  // releases the initialize lock
  reply->set_init_ready(true);
  *reply->mutable_initial_copy() = *std::move(state);
  return absl::OkStatus();
}

absl::Status Service::TargetAbort(const proto::ControlRequest& req) {
  if (session_ == nullptr || session_->id != req.copy_id()) return absl::OkStatus();
  Session* s = session_.get();
  if (s->target == nullptr) return Refuse(req.copy_id());
  if (s->commit.valid()) {
    return absl::FailedPreconditionError(
        "the backup is installing the copy; INIT_TARGET_COMMIT says how it ended");
  }
  events_->Log(events::kCommandLogged,
               {{"command", "INIT_TARGET_ABORT"}, {"operator", req.operator_()}});
  return End(nullptr);
}

void Service::Tick() {
  if (session_ == nullptr || session_->working()) return;
  if (!session_->abort_queued && absl::Now() - session_->last < kIdle) return;
  if (session_->commit.valid()) {
    absl::StatusOr<proto::InitialCopy> state = session_->commit.get();
    if (state.ok()) {  // rdfcom went away just before it asked for the result
      initcopy::LogInitialized(session_->base->events.get(), *state);
      done_id_ = session_->id;
      done_state_ = *std::move(state);
      session_.reset();
      return;
    }
  }
  End(session_->abort_queued ? nullptr : "no request from rdfcom for 2 minutes").IgnoreError();
}

}  // namespace rdf::initcopy
