#include "monitor/monitor.h"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <thread>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/events/follower.h"
#include "common/initcopy/service.h"
#include "common/net/control_client.h"
#include "common/net/curve_keys.h"
#include "common/net/zap_handler.h"
#include "common/net/zmq_transport.h"
#include "common/process/stall.h"
#include "common/state/status_file.h"
#include "common/state/takeover_state.h"
#include "common/trail/durable_end.h"
#include "common/wire/wire.h"
#include "monitor/control_access.h"
#include "monitor/metrics.h"
#include "monitor/notifier.h"
#include "monitor/supervisor.h"
#include "monitor/verify_scan.h"

namespace rdf::monitor {
namespace {

constexpr absl::Duration kRefreshInterval = absl::Milliseconds(250);
constexpr absl::Duration kEventPollInterval = absl::Seconds(1);
constexpr absl::Duration kPeerInterval = absl::Seconds(5);
constexpr absl::Duration kPeerTimeout = absl::Seconds(3);

std::string SeverityName(proto::Severity s) { return proto::Severity_Name(s); }

}  // namespace

struct Monitor::Impl {
  MonitorOptions opt;
  const config::Config* config = nullptr;
  const proto::NodeConfig* node = nullptr;
  events::EventLog* events = nullptr;
  absl::Time started = absl::Now();

  std::unique_ptr<net::Transport> control;  // the control port (REQ clients)
  std::unique_ptr<MetricsExporter> metrics;
  std::unique_ptr<Notifier> notifier;
  std::unique_ptr<events::EventFollower> follower;
  std::map<std::string, uint64_t> events_by_severity;
  std::unique_ptr<Supervisor> supervisor;
  std::unique_ptr<initcopy::Service> initialize;  // rdfcom initialize's sessions
  std::unique_ptr<trail::SharedEnd> audit_end;  // primary, opened lazily
  curve::KeyPair own_keys;
  // Watches the other node's monitor (events 925/926) on a thread of its own.
  std::thread peer_thread;
  absl::Notification peer_stop;

  // What operators asked for.
  bool stopped = false;        // `rdfcom stop` (or not started yet)
  bool updates_held = false;   // `rdfcom update stop`
  // What the node is doing.
  uint64_t takeover_epoch = 0;
  bool takeover_complete = false;
  std::string state;           // last reported, for event 924
  proto::NodeStatus status;    // refreshed every kRefreshInterval
  std::map<std::string, Caller> callers;  // by public key: who the ZAP handler admits
  // Stall detection (common/process/stall.h), one detector per process name.
  std::map<std::string, status::StallDetector> stalls;
  bool any_stalled = false;
  // Judges `p` (its status just read) and records a stall in it; logs 995
  // and 996 once per episode.
  void CheckStall(proto::ManagedProcess& p, absl::Time now);
  // Primary: the application's tmf status (status/tmf.*) as a row of its
  // own, not supervised ("EXTERNAL"; "NOT_RUNNING" when it is stale).
  std::optional<proto::ManagedProcess> ApplicationRow(int64_t now_us);

  bool backup() const { return node->role() == proto::BACKUP; }
  absl::Status Bind();
  void RefreshTakeover();
  void Refresh();
  std::string ComputeState() const;
  void PollEvents();
  void ServeOne(const net::Message& m);
  // Handle, for a request that came with `client_key` (the ZAP User-Id):
  // refused (event 985) unless Authorize allows it.
  proto::ControlReply HandleFrom(const std::string& client_key, const proto::ControlRequest& req);
  void WatchPeer();
  proto::ControlReply Handle(const proto::ControlRequest& req);
  bool Gate(const ProcessSpec& spec) const {
    if (stopped) return false;  // `rdfcom stop`: nothing starts until `rdfcom start`
    if (!backup()) return true;
    const bool updater_or_purger = spec.updater() || spec.program == "rdf-purger";
    if (takeover_epoch > 0 && updater_or_purger) return false;
    if (updates_held && spec.updater()) return false;
    return true;
  }
};

absl::Status Monitor::Impl::Bind() {
  RDF_ASSIGN_OR_RETURN(curve::KeyPair own, curve::ReadNodeKeyPair(*config, *node));
  own_keys = own;
  const std::set<std::string> allowed = ControlPortKeys(*config);
  for (const std::string& key : allowed) callers[key] = IdentifyCaller(*config, key);
  net::ZmqListenOptions o;
  o.endpoint = wire::Endpoint(node->host(), node->control_port());
  o.secret_key = own.secret_key;
  o.allowed_keys = allowed;
  o.zap_domain = curve::kZapDomain;
  o.max_message_bytes = int64_t{1} << 20;
  o.request_envelope = true;
  o.on_key_refused = [this](const std::string& key, const std::string& address) {
    events->Log(events::kSenderRefused, {{"key", key}, {"peer", address}, {"port", "control"}});
  };
  absl::StatusOr<std::unique_ptr<net::ZmqTransport>> t = net::ZmqTransport::Listen(std::move(o));
  if (!t.ok()) {
    return absl::Status(t.status().code(),
                        absl::StrCat("rdfcom's control port: ", t.status().message(),
                                     " (is another monitor of this node running? see `rdfcom validate`)"));
  }
  control = *std::move(t);
  if (node->metrics_port() != 0) {
    RDF_ASSIGN_OR_RETURN(metrics, MetricsExporter::Start(node->host(), node->metrics_port()));
  }
  return absl::OkStatus();
}

void Monitor::Impl::RefreshTakeover() {
  if (!backup()) return;
  absl::StatusOr<std::optional<TakeoverEpoch>> e =
      ReadTakeoverEpoch(FileSystem::Default(), *node);
  if (e.ok() && e->has_value()) {
    takeover_epoch = (*e)->number;
    takeover_complete = std::filesystem::exists(TakeoverReportPath(*node, "json"));
  }
}

std::string Monitor::Impl::ComputeState() const {
  if (takeover_epoch > 0) return takeover_complete ? "TAKEOVER_COMPLETE" : "TAKEOVER_IN_PROGRESS";
  if (stopped) return supervisor->AnyRunning() ? "STOPPING" : "STOPPED";
  if (updates_held) return "UPDATE_STOPPED";
  if (!supervisor->AllRunning() || any_stalled) return "DEGRADED";
  return "NORMAL";
}

void Monitor::Impl::CheckStall(proto::ManagedProcess& p, absl::Time now) {
  const uint32_t after_ms = config->proto.monitor().stall_after_ms();
  // Only a process whose status is its own and current is judged: a stopped
  // or held one is shown as such, a hung one as HUNG.
  const bool live = p.managed_state() == "RUNNING" || p.managed_state() == "EXTERNAL";
  if (after_ms == 0 || !live || !p.has_status()) {
    stalls.erase(p.name());
    return;
  }
  auto it = stalls.try_emplace(p.name(), absl::Milliseconds(after_ms)).first;
  const status::StallDetector::Verdict v = it->second.Observe(p.status(), now);
  if (v.began) {
    events->Log(events::kStageStalled, {{"process", p.name()},
                                        {"for_ms", absl::StrCat(v.for_ms)},
                                        {"reason", v.reason}});
  } else if (v.ended) {
    events->Log(events::kStageResumed, {{"process", p.name()}});
  }
  if (v.stalled) {
    p.set_stalled_ms(v.for_ms);
    p.set_stall_reason(v.reason);
    any_stalled = true;
  }
}

std::optional<proto::ManagedProcess> Monitor::Impl::ApplicationRow(int64_t now_us) {
  absl::StatusOr<proto::ProcessStatus> st = ReadStatus(node->data_dir(), "tmf");
  if (!st.ok()) return std::nullopt;  // no application has run here
  proto::ManagedProcess p;
  p.set_name("tmf");
  p.set_program("application (tmf)");
  p.set_pid(st->pid());
  p.set_status_age_ms(std::max<int64_t>(0, (now_us - st->time_us()) / 1000));
  // The application publishes once a second while its store is open; a
  // status older than a few seconds is the last one of a closed store.
  p.set_managed_state(p.status_age_ms() <= 5000 ? "EXTERNAL" : "NOT_RUNNING");
  *p.mutable_status() = *std::move(st);
  return p;
}

void Monitor::Impl::Refresh() {
  const uint64_t epoch_before = takeover_epoch;
  RefreshTakeover();
  if (epoch_before == 0 && takeover_epoch > 0) {
    // The takeover runs its own updaters; the purger waits until it is done
    // (it would be safe, but the takeover's trails are best left alone).
    // A purger that outlives its stop is reported by event 929 and shown as
    // STOP_FAILED; the takeover itself does not need it gone.
    supervisor
        ->Stop([](const ProcessSpec& s) { return s.program == "rdf-purger"; },
               /*held=*/true, "takeover")
        .IgnoreError();
  }
  supervisor->CheckLiveness(
      [this](const ProcessSpec& spec) -> std::optional<absl::Time> {
        absl::StatusOr<proto::ProcessStatus> st = ReadStatus(node->data_dir(), spec.name);
        if (!st.ok()) return std::nullopt;
        return absl::FromUnixMicros(st->time_us());
      },
      absl::Now());
  const absl::Time now = absl::Now();
  proto::NodeStatus s;
  s.set_system(config->proto.system());
  s.set_node(node->name());
  s.set_role(proto::NodeRole_Name(node->role()));
  s.set_time_us(absl::ToUnixMicros(now));
  s.set_monitor_pid(getpid());
  s.set_monitor_uptime_ms(absl::ToInt64Milliseconds(now - started));
  any_stalled = false;
  for (proto::ManagedProcess& p : supervisor->Snapshot()) {
    absl::StatusOr<proto::ProcessStatus> st = ReadStatus(node->data_dir(), p.name());
    if (st.ok()) {
      p.set_status_age_ms(std::max<int64_t>(0, (s.time_us() - st->time_us()) / 1000));
      *p.mutable_status() = *std::move(st);
    } else {
      p.set_status_age_ms(-1);
    }
    CheckStall(p, now);
    *s.add_processes() = std::move(p);
  }
  if (!backup()) {
    if (std::optional<proto::ManagedProcess> app = ApplicationRow(s.time_us())) {
      CheckStall(*app, now);
      *s.add_processes() = *std::move(app);
    }
  }
  if (!backup()) {
    if (audit_end == nullptr) {
      absl::StatusOr<std::unique_ptr<trail::SharedEnd>> e =
          trail::SharedEnd::OpenReadOnly(trail::EndFilePath(config::AuditDir(*node), "MAT"));
      if (e.ok()) audit_end = *std::move(e);
    }
    if (audit_end != nullptr) {
      const trail::End end = audit_end->Get();
      s.set_audit_end_asn(end.asn);
      s.set_audit_end_time_us(end.time_us);
    }
  }
  s.set_takeover_epoch(takeover_epoch);
  s.set_takeover_complete(takeover_complete);
  for (const auto& [k, v] : events_by_severity) (*s.mutable_events_by_severity())[k] = v;
  const std::string now_state = ComputeState();
  if (now_state != state) {
    if (!state.empty()) events->Log(events::kStateChanged, {{"from", state}, {"to", now_state}});
    state = now_state;
  }
  s.set_state(state);
  status = std::move(s);
  if (metrics) metrics->Update(status);
}

void Monitor::Impl::PollEvents() {
  absl::StatusOr<std::vector<proto::Event>> fresh = follower->Next();
  if (!fresh.ok()) return;  // a transient read problem; the next poll retries
  for (const proto::Event& e : *fresh) {
    ++events_by_severity[SeverityName(e.severity())];
    if (notifier) notifier->Offer(e);
  }
}

proto::ControlReply Monitor::Impl::Handle(const proto::ControlRequest& req) {
  proto::ControlReply r;
  r.set_version(proto::CONTROL_VERSION_1);
  auto fail = [&](std::string why) {
    r.set_ok(false);
    r.set_error(std::move(why));
  };
  r.set_ok(true);
  if (req.version() != proto::CONTROL_VERSION_1) {
    fail(absl::StrCat("control protocol version ", req.version(), " is not supported (this ",
                      "monitor speaks version ", proto::CONTROL_VERSION_1, ")"));
    *r.mutable_status() = status;
    return r;
  }
  // (The initialize service logs its own: not every chunk or poll.)
  const bool logged = req.command() != proto::ControlRequest::STATUS &&
                      req.command() != proto::ControlRequest::VERIFY_SCAN &&
                      req.command() != proto::ControlRequest::VERIFY_FILES &&
                      req.command() != proto::ControlRequest::VERIFY_RESULT &&
                      !initcopy::Service::Serves(req.command());
  if (logged) {
    events->Log(events::kCommandLogged,
                {{"command", proto::ControlRequest::Command_Name(req.command())},
                 {"operator", req.operator_()}});
  }
  auto updater = [](const ProcessSpec& s) { return s.updater(); };
  switch (req.command()) {
    case proto::ControlRequest::STATUS:
      break;
    case proto::ControlRequest::START:
      if (takeover_epoch > 0 && !takeover_complete) {
        fail("a takeover is in progress on this node; finish it with `rdfcom takeover`");
        break;
      }
      if (initialize->busy()) {
        fail(absl::StrCat("an initial copy (", initialize->copy_id(),
                          ") is in progress on this node; start once `rdfcom initialize` ends"));
        break;
      }
      stopped = false;
      supervisor->Start();
      break;
    case proto::ControlRequest::STOP: {
      stopped = true;
      absl::Status s = supervisor->Stop(
          nullptr, false, req.drained_asn() > 0 ? "drained (rdfcom stop --drain)" : "rdfcom stop");
      if (req.drained_asn() > 0) {
        events->Log(events::kDrainComplete, {{"asn", absl::StrCat(req.drained_asn())}});
      }
      if (!s.ok()) fail(absl::StrCat("the process set did not stop: ", s.message()));
      break;
    }
    case proto::ControlRequest::UPDATE_STOP:
      if (!backup()) {
        fail("update stop acts on the backup node; pass --node with the backup's name");
      } else if (takeover_epoch > 0) {
        fail("a takeover has begun on this node; the updaters are the takeover's now");
      } else if (stopped) {
        fail("the process set is stopped; nothing is updating");
      } else {
        updates_held = true;
        absl::Status s = supervisor->Stop(updater, /*held=*/true, "rdfcom update stop");
        events->Log(events::kUpdatingStopped, {{"reason", "rdfcom update stop"}});
        if (!s.ok()) fail(absl::StrCat("the updaters did not all stop: ", s.message()));
      }
      break;
    case proto::ControlRequest::UPDATE_START:
      if (!backup()) {
        fail("update start acts on the backup node; pass --node with the backup's name");
      } else if (takeover_epoch > 0) {
        fail("a takeover has begun on this node; updating cannot resume");
      } else if (stopped) {
        fail("the process set is stopped; start it with `rdfcom start`");
      } else {
        updates_held = false;
        supervisor->Start(updater);
        events->Log(events::kUpdatingStarted, {{"reason", "rdfcom update start"}});
      }
      break;
    case proto::ControlRequest::VERIFY_FILES:
    case proto::ControlRequest::VERIFY_SCAN: {
      absl::StatusOr<proto::ControlReply> v =
          req.command() == proto::ControlRequest::VERIFY_FILES
              ? ServeVerifyFiles(*config, *node)
              : ServeVerifyScan(*config, *node, req);
      if (!v.ok()) {
        fail(std::string(v.status().message()));
      } else {
        r.MergeFrom(*v);
      }
      break;
    }
    case proto::ControlRequest::VERIFY_RESULT:
      for (const proto::Event& e : req.events()) {
        auto field = [&e](const char* name) {
          auto it = e.fields().find(name);
          return it == e.fields().end() ? std::string() : it->second;
        };
        if (e.number() == events::kVerifyMismatch) {
          events->Log(e.number(), {{"volume", field("volume")},
                                   {"file", field("file")},
                                   {"differences", field("differences")},
                                   {"first_key", field("first_key")},
                                   {"operator", req.operator_()}});
        } else if (e.number() == events::kVerifyMatch) {
          events->Log(e.number(), {{"volumes", field("volumes")},
                                   {"files", field("files")},
                                   {"records", field("records")},
                                   {"operator", req.operator_()}});
        } else {
          fail(absl::StrCat("VERIFY_RESULT logs events 980 and 981, not ", e.number()));
        }
      }
      break;
    default:
      if (initcopy::Service::Serves(req.command())) {
        // Only a stopped set: the supervisor must not start anything meanwhile.
        initialize->Handle(req, stopped && !supervisor->AnyRunning(), &r);
        break;
      }
      fail(absl::StrCat("unknown command ", static_cast<int>(req.command())));
  }
  Refresh();
  r.set_version(proto::CONTROL_VERSION_1);
  *r.mutable_status() = status;
  return r;
}

proto::ControlReply Monitor::Impl::HandleFrom(const std::string& client_key,
                                              const proto::ControlRequest& req) {
  auto it = callers.find(client_key);
  Caller caller = it != callers.end() ? it->second : Caller{Caller::kUnknown, "", client_key};
  absl::Status allowed = Authorize(*config, *node, caller, req.command(), takeover_epoch);
  if (allowed.ok()) return Handle(req);
  events->Log(events::kControlRequestRefused,
              {{"command", proto::ControlRequest::Command_Name(req.command())},
               {"caller", caller.ToString()},
               {"key", client_key},
               {"reason", std::string(allowed.message())}});
  proto::ControlReply r;
  r.set_version(proto::CONTROL_VERSION_1);
  r.set_ok(false);
  r.set_error(std::string(allowed.message()));
  *r.mutable_status() = status;
  return r;
}

void Monitor::Impl::ServeOne(const net::Message& m) {
  proto::ControlRequest req;
  proto::ControlReply reply;
  if (!req.ParseFromString(m.body)) {
    reply.set_version(proto::CONTROL_VERSION_1);
    reply.set_ok(false);
    reply.set_error("malformed control request");
    *reply.mutable_status() = status;
  } else {
    // sender_key: the client key the ZAP handler admitted; without one,
    // HandleFrom refuses.
    reply = HandleFrom(m.sender_key, req);
  }
  // The client went away: nothing to do.
  control->Send(m.peer, reply.SerializeAsString()).IgnoreError();
}

void Monitor::Impl::WatchPeer() {
  const proto::NodeConfig* peer = config->NodeWithRole(
      node->role() == proto::PRIMARY ? proto::BACKUP : proto::PRIMARY);
  if (peer == nullptr || peer->control_port() == 0) return;
  proto::ControlRequest req;
  req.set_command(proto::ControlRequest::STATUS);
  req.set_operator_(absl::StrCat("monitor@", node->name()));
  std::optional<absl::Time> last_seen;      // last answer
  std::optional<absl::Time> down_since;     // first failure of the current outage
  do {
    absl::StatusOr<proto::ControlReply> r =
        control::CallMonitor(*config, *peer, req, kPeerTimeout, &own_keys);
    const absl::Time now = absl::Now();
    if (r.ok()) {
      if (down_since.has_value()) {
        events->Log(events::kPeerReachable,
                    {{"node", peer->name()},
                     {"unreachable_ms", absl::StrCat(absl::ToInt64Milliseconds(now - *down_since))}});
      }
      down_since.reset();
      last_seen = now;
    } else if (!down_since.has_value()) {
      down_since = now;
      events->Log(events::kPeerUnreachable,
                  {{"node", peer->name()},
                   {"error", std::string(r.status().message())},
                   {"last_seen_ms", last_seen.has_value()
                                        ? absl::StrCat(absl::ToInt64Milliseconds(now - *last_seen))
                                        : "-1"}});
    }
  } while (!peer_stop.WaitForNotificationWithTimeout(kPeerInterval));
}

Monitor::Monitor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Monitor::~Monitor() {
  if (impl_) {
    impl_->initialize.reset();
    if (impl_->peer_thread.joinable()) {
      impl_->peer_stop.Notify();
      impl_->peer_thread.join();
    }
    impl_->notifier.reset();
    impl_->control.reset();
  }
}

absl::StatusOr<std::unique_ptr<Monitor>> Monitor::Create(const MonitorOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->config = options.config;
  impl->node = options.node;
  impl->events = options.events;
  RDF_RETURN_IF_ERROR(impl->Bind());
  RDF_ASSIGN_OR_RETURN(
      impl->supervisor,
      Supervisor::Create(*impl->config, *impl->node,
                         ProcessSet(*impl->config, *impl->node, options.bin_dir), impl->events,
                         options.stop_grace));
  Impl* raw = impl.get();
  impl->supervisor->set_gate([raw](const ProcessSpec& s) { return raw->Gate(s); });
  if (options.send_signal) impl->supervisor->set_signal_sender(options.send_signal);
  const proto::MonitorConfig& mc = impl->config->proto.monitor();
  impl->supervisor->set_liveness({absl::Milliseconds(mc.hung_after_ms()),
                                  absl::Milliseconds(mc.hung_restart_after_ms())});
  const proto::NotifyConfig& n = impl->config->proto.notify();
  if (!n.command().empty()) {
    absl::StatusOr<proto::Severity> sev =
        events::ParseSeverity(n.min_severity().empty() ? "ERROR" : n.min_severity());
    if (!sev.ok()) return sev.status();
    impl->notifier = std::make_unique<Notifier>(n.command(), *sev, impl->events);
  }
  events::EventFilter f;
  f.since_us = absl::ToUnixMicros(impl->started);
  impl->follower = std::make_unique<events::EventFollower>(
      FileSystem::Default(), std::vector<std::string>{config::EventDir(*impl->node)}, f);
  impl->stopped = !options.start;
  impl->initialize =
      std::make_unique<initcopy::Service>(*impl->config, *impl->node, impl->events);
  impl->RefreshTakeover();
  return std::unique_ptr<Monitor>(new Monitor(std::move(impl)));
}

proto::ControlReply Monitor::Handle(const proto::ControlRequest& request) {
  return impl_->Handle(request);
}

absl::Status Monitor::Run(const std::atomic<bool>* stop) {
  Impl& m = *impl_;
  if (!m.stopped) m.supervisor->Start();
  m.Refresh();
  m.peer_thread = std::thread([&m] { m.WatchPeer(); });
  absl::Time next_refresh = absl::Now() + kRefreshInterval;
  absl::Time next_events = absl::Now();
  while (!stop->load()) {
    absl::StatusOr<std::optional<net::Message>> request = m.control->Recv(absl::Milliseconds(50));
    if (!request.ok()) return request.status();
    if (request->has_value()) m.ServeOne(**request);
    m.supervisor->Tick();
    m.initialize->Tick();
    const absl::Time now = absl::Now();
    if (now >= next_refresh) {
      m.Refresh();
      next_refresh = now + kRefreshInterval;
    }
    if (now >= next_events) {
      m.PollEvents();
      next_events = now + kEventPollInterval;
    }
  }
  m.stopped = true;
  // A child that outlives this stop is reported (929); PR_SET_PDEATHSIG
  // sends it SIGKILL once more when the monitor exits.
  m.supervisor->Stop(nullptr, false, "monitor stopping").IgnoreError();
  m.Refresh();
  m.PollEvents();
  return absl::OkStatus();
}

}  // namespace rdf::monitor
