#include "receiver/receiver.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/test_point.h"
#include "common/events/catalog.h"
#include "common/events/log.h"
#include "common/net/curve_keys.h"
#include "common/net/zmq_transport.h"
#include "common/process/lock.h"
#include "common/process/main.h"
#include "common/state/initial_copy.h"
#include "common/state/status_file.h"
#include "common/state/takeover_state.h"
#include "common/wire/wire.h"
#include "receiver/image_trails.h"

namespace rdf::receiver {

struct Receiver::Impl {
  ReceiverOptions opt;
  const proto::NodeConfig* node = nullptr;
  const proto::SystemConfig* cfg = nullptr;
  std::unique_ptr<ProcessLock> lock;
  std::unique_ptr<events::EventLog> events;
  std::unique_ptr<ImageTrails> trails;
  std::unique_ptr<net::Transport> own_transport;  // unless the options gave one
  net::Transport* transport = nullptr;
  std::string endpoint;
  size_t max_bytes = 0;

  // Session state (main loop only).
  uint64_t next_seq = 1;
  std::string peer;          // routing id of the extractor to acknowledge
  bool fenced = false;
  uint64_t epoch = 0;           // takeover epoch once fenced
  bool final_pending = false;   // the final save point is still to be written
  bool disk_full = false;
  // An append failed part-way through a batch: the trails hold records
  // that were never acknowledged. They are reopened (cut back to the last
  // save point, as after a crash) before receiving goes on.
  bool reopen_needed = false;
  uint64_t initial_copy_start = 0;  // the start ASN of an initial copy, when used
  absl::Status fatal;  // ends Run (the monitor restarts the receiver)
  int64_t last_message_us = 0;
  int64_t last_save_point_us = 0;
  int64_t last_status_us = 0;
  int64_t last_fence_check_us = 0;
  bool silent_reported = false;
  uint64_t batches = 0;
  uint64_t acked_seq = 0;

  // Events use the catalog's text and severity (docs/events.md); the
  // specifics go into fields.
  void Log(uint32_t number, events::EventFields fields = {}) { events->Log(number, fields); }
  int64_t Now() { return opt.clock->MonotonicMicros(); }

  void Send(const std::string& to, const proto::WireMessage& m) {
    // A peer that vanished or a full queue: it will resynchronize.
    transport->Send(to, wire::Encode(m)).IgnoreError();
  }
  void Refuse(const std::string& to, proto::Refuse::Reason reason, const std::string& text) {
    proto::WireMessage m;
    m.mutable_refuse()->set_reason(reason);
    m.mutable_refuse()->set_text(text);
    Send(to, m);
  }
  void SendAck(const std::string& to) {
    proto::WireMessage m;
    m.mutable_ack()->set_seq(next_seq - 1);
    m.mutable_ack()->set_save_point_asn(trails->save_point().asn());
    Send(to, m);
    acked_seq = next_seq - 1;
  }

  absl::Status Bind();
  void Handle(const std::string& from, absl::string_view bytes);
  void HandleHello(const std::string& from, const proto::Hello& h);
  void HandleBatch(const std::string& from, const proto::Batch& b);
  void HandleHeartbeat(const std::string& from, const proto::Heartbeat& h);
  void TakeSavePoint();
  void CheckFence();
  absl::Status OpenTrails(const std::optional<trail::End>& published_frame = std::nullopt);
  void ReopenTrails();
  void Housekeeping();
  void PublishStatus();
};

absl::Status Receiver::Impl::Bind() {
  const proto::NodeConfig* primary = opt.config->NodeWithRole(proto::PRIMARY);
  RDF_ASSIGN_OR_RETURN(std::string extractor_key, curve::PublicKeyOf(*opt.config, *primary));
  RDF_ASSIGN_OR_RETURN(curve::KeyPair own, curve::ReadNodeKeyPair(*opt.config, *node));
  net::ZmqListenOptions o;
  o.endpoint = endpoint;
  o.secret_key = own.secret_key;
  o.allowed_keys = {extractor_key};
  o.zap_domain = wire::kZapDomain;
  // libzmq drops a peer sending more than this; between max_bytes and it
  // the receiver refuses the message itself (event 953).
  o.max_message_bytes = static_cast<int64_t>(2 * max_bytes);
  o.rcvhwm = 64;
  o.sndhwm = 256;
  o.heartbeats = true;
  o.on_key_refused = [this](const std::string& key, const std::string& address) {
    Log(events::kSenderRefused, {{"key", key}, {"peer", address}});
  };
  o.on_handshake_failed = [this](const std::string& address, const std::string& reason, int value) {
    Log(events::kSenderRefused, {{"peer", address}, {"reason", reason}, {"value", absl::StrCat(value)}});
  };
  RDF_ASSIGN_OR_RETURN(own_transport, net::ZmqTransport::Listen(std::move(o)));
  transport = own_transport.get();
  return absl::OkStatus();
}

void Receiver::Impl::Handle(const std::string& from, absl::string_view bytes) {
  last_message_us = Now();
  silent_reported = false;
  absl::StatusOr<proto::WireMessage> m = wire::Decode(bytes, max_bytes);
  if (!m.ok()) {
    std::string why(m.status().message());
    if (absl::IsResourceExhausted(m.status())) {
      Log(events::kOversizedMessage, {{"bytes", absl::StrCat(bytes.size())}, {"limit", absl::StrCat(max_bytes)}});
      Refuse(from, proto::Refuse::OVERSIZED, why);
    } else if (absl::IsFailedPrecondition(m.status())) {
      Log(events::kBadProtocolVersion, {{"error", why}});
      Refuse(from, proto::Refuse::BAD_VERSION, why);
    } else {
      Log(events::kMalformedMessage, {{"error", why}, {"bytes", absl::StrCat(bytes.size())}});
      Refuse(from, proto::Refuse::MALFORMED, why);
    }
    return;
  }
  switch (m->body_case()) {
    case proto::WireMessage::kHello:
      HandleHello(from, m->hello());
      break;
    case proto::WireMessage::kBatch:
      HandleBatch(from, m->batch());
      break;
    case proto::WireMessage::kHeartbeat:
      HandleHeartbeat(from, m->heartbeat());
      break;
    default:
      Log(events::kMalformedMessage, {{"error", "unexpected message kind"}});
      Refuse(from, proto::Refuse::MALFORMED, "unexpected message kind");
  }
}

void Receiver::Impl::HandleHello(const std::string& from, const proto::Hello& h) {
  CheckFence();
  if (fenced) {
    Log(events::kFencedAuditRefused, {{"node", h.node()}});
    Refuse(from, proto::Refuse::FENCED, "this backup has taken over; audit is refused");
    return;
  }
  // Test point: a save point stuck in fdatasync before the Welcome, with
  // the connection up (tests/process/ship_test.py, the stale Welcome of
  // finding 7): RDF_TEST_POINTS=receiver.before_welcome@2:sleep=7000.
  TestPoint("receiver.before_welcome");
  peer = from;
  trails->NoteAuditEnd(h.audit_end_asn(), h.audit_end_time_us());
  trails->DropPartial();  // the new session resends it from its first fragment
  proto::WireMessage w;
  w.mutable_welcome()->set_restart_asn(trails->received_asn() + 1);
  w.mutable_welcome()->set_next_seq(next_seq);
  w.mutable_welcome()->set_save_point_asn(trails->save_point().asn());
  w.mutable_welcome()->set_nonce(h.nonce());
  Send(from, w);
  Log(events::kSenderConnected, {{"node", h.node()}, {"restart_asn", absl::StrCat(trails->received_asn() + 1)},
       {"next_seq", absl::StrCat(next_seq)}});
}

void Receiver::Impl::HandleBatch(const std::string& from, const proto::Batch& b) {
  if (fenced) {
    Refuse(from, proto::Refuse::FENCED, "this backup has taken over; audit is refused");
    return;
  }
  if (disk_full) return;  // no ack: the extractor holds and resends
  if (b.seq() < next_seq) {  // a duplicate: acknowledge again
    if (!trails->pending()) SendAck(from);
    return;
  }
  if (b.seq() > next_seq) {
    Log(events::kResynchronizing, {{"expected_seq", absl::StrCat(next_seq)}, {"got_seq", absl::StrCat(b.seq())}});
    Refuse(from, proto::Refuse::RESYNC, absl::StrCat("expected batch ", next_seq));
    return;
  }
  absl::Status valid = trails->Validate(b);
  if (absl::IsFailedPrecondition(valid)) {
    // Numbered right but not continuing from what was received: the
    // extractor is out of step (it would leave a gap). Start again.
    Log(events::kResynchronizing, {{"expected_from_asn", absl::StrCat(trails->received_asn())},
                                   {"got_from_asn", absl::StrCat(b.from_asn())},
                                   {"seq", absl::StrCat(b.seq())}});
    Refuse(from, proto::Refuse::RESYNC, std::string(valid.message()));
    return;
  }
  if (!valid.ok()) {
    Log(events::kMalformedMessage, {{"error", std::string(valid.message())}, {"seq", absl::StrCat(b.seq())}});
    Refuse(from, proto::Refuse::MALFORMED, std::string(valid.message()));
    return;
  }
  absl::Status s = trails->Append(b);
  if (!s.ok()) {
    // Hold (no ack). Part of the batch may be in some trails already: they
    // are reopened from the last save point once the disk has room again.
    if (!disk_full) {
      disk_full = true;
      Log(absl::IsResourceExhausted(s) ? events::kDiskFullStopped : events::kFileSystemError,
          {{"error", std::string(s.message())}, {"op", "append"}});
    }
    reopen_needed = true;
    return;
  }
  peer = from;
  ++next_seq;
  ++batches;
}

void Receiver::Impl::HandleHeartbeat(const std::string& from, const proto::Heartbeat& h) {
  trails->NoteAuditEnd(h.audit_end_asn(), h.audit_end_time_us());
  // The extractor has sent batches this receiver never took (they came while
  // the disk was full and were dropped unacknowledged): messages on one
  // connection keep their order, so they will not come any more. Ask for
  // them again, or the extractor would wait for their acks forever.
  if (!fenced && !disk_full && h.next_seq() > next_seq && !trails->pending()) {
    Log(events::kResynchronizing, {{"expected_seq", absl::StrCat(next_seq)},
                                   {"heartbeat_next_seq", absl::StrCat(h.next_seq())}});
    Refuse(from, proto::Refuse::RESYNC, absl::StrCat("expected batch ", next_seq));
    return;
  }
  if (!fenced && h.next_seq() == next_seq && !disk_full) {
    if (h.from_asn() != trails->received_asn()) {
      // As for a batch: taking read_through_asn could skip audit.
      Log(events::kResynchronizing, {{"expected_from_asn", absl::StrCat(trails->received_asn())},
                                     {"heartbeat_from_asn", absl::StrCat(h.from_asn())}});
      Refuse(from, proto::Refuse::RESYNC,
             absl::StrCat("heartbeat continues from ASN ", h.from_asn(), ", received ",
                          trails->received_asn()));
      return;
    }
    trails->NoteReadThrough(h.read_through_asn());
  }
  if (!trails->pending() && !fenced) SendAck(from);
}

void Receiver::Impl::TakeSavePoint() {
  absl::Status s = trails->SavePoint(next_seq, final_pending ? epoch : 0);
  if (s.ok()) {
    last_save_point_us = Now();
    if (final_pending) {
      final_pending = false;
      Log(events::kSavePoint, {{"asn", absl::StrCat(trails->save_point().asn())},
                               {"takeover_epoch", absl::StrCat(epoch)}, {"final", "true"}});
    }
    if (disk_full) {
      disk_full = false;
      Log(events::kDiskFullResumed);
    }
    if (!peer.empty()) SendAck(peer);
    return;
  }
  // A writer that failed (a segment it could not allocate, a sync that
  // failed) is not trusted again: the trails are reopened from the last
  // save point once there is room, and what came since is received again.
  reopen_needed = true;
  if (absl::IsResourceExhausted(s)) {
    if (!disk_full) {
      disk_full = true;
      Log(events::kDiskFullStopped, {{"error", std::string(s.message())}});
    }
    return;
  }
  Log(events::kFileSystemError, {{"op", "save point"}, {"error", std::string(s.message())}});
  disk_full = true;  // hold the same way: no ack, retry each second
}

absl::Status Receiver::Impl::OpenTrails(const std::optional<trail::End>& published_frame) {
  RDF_ASSIGN_OR_RETURN(trails, ImageTrails::Open(*opt.config, *node, opt.fs, opt.clock,
                                                 published_frame));
  if (trails->save_point().asn() == 0 && trails->received_asn() == 0) {
    // Nothing received yet. After an online initial copy (rdfcom initialize)
    // the volumes already hold everything before its start ASN: the first
    // save point is just below it, so the Welcome asks the extractor for it.
    RDF_ASSIGN_OR_RETURN(std::optional<proto::InitialCopy> copy, ReadInitialCopy(opt.fs, *node));
    if (copy.has_value() && copy->start_asn() > 1) {
      initial_copy_start = copy->start_asn();
      trails->NoteReadThrough(initial_copy_start - 1);
    }
  }
  next_seq = std::max<uint64_t>(1, trails->save_point().next_seq());
  return absl::OkStatus();
}

void Receiver::Impl::ReopenTrails() {
  const uint64_t before = next_seq;
  // Never adopt a save point above the last one published (its syncs failed).
  const std::optional<trail::End> published = trails->last_published_frame();
  trails.reset();
  absl::Status s = OpenTrails(published);
  if (!s.ok()) {
    // Still no room even to reopen: end, and let the monitor start a new
    // receiver (which does the same as this, with backoff).
    fatal = s;
    return;
  }
  reopen_needed = false;
  disk_full = false;
  Log(events::kDiskFullResumed, {{"reopened_at_save_point", absl::StrCat(trails->save_point().asn())},
                                 {"next_seq", absl::StrCat(next_seq)},
                                 {"dropped_batches", absl::StrCat(before - next_seq)}});
}

void Receiver::Impl::CheckFence() {
  last_fence_check_us = Now();
  if (fenced || !opt.fs->Exists(TakeoverEpochPath(*node))) return;
  absl::StatusOr<std::optional<TakeoverEpoch>> e = ReadTakeoverEpoch(opt.fs, *node);
  if (!e.ok() || !e->has_value()) return;  // half-written: checked again soon
  fenced = true;
  epoch = (*e)->number;
  // Everything received so far goes into one last save point that carries
  // the epoch; takeover waits for it. Nothing is accepted after it.
  final_pending = trails->save_point().takeover_epoch() != epoch;
}

void Receiver::Impl::PublishStatus() {
  proto::ProcessStatus st = NewProcessStatus(
      node->name(), "receiver",
      fenced ? "FENCED" : disk_full ? "DISK_FULL" : peer.empty() ? "WAITING" : "RUNNING",
      opt.clock);
  const proto::SavePoint& sp = trails->save_point();
  if (!sp.trails().empty()) {
    st.mutable_position()->set_segment(sp.trails(0).segment());
    st.mutable_position()->set_offset(sp.trails(0).offset());
  }
  st.mutable_position()->set_asn(sp.asn());
  st.set_save_point_asn(sp.asn());
  st.set_last_message_age_ms(last_message_us == 0 ? -1 : (Now() - last_message_us) / 1000);
  st.set_audit_end_asn(trails->audit_end_asn());
  st.set_audit_end_time_us(trails->audit_end_time_us());
  st.set_batches(batches);
  st.set_fsyncs(trails->fsyncs());
  st.set_records(trails->records());
  st.set_bytes(trails->bytes());
  if (disk_full) st.set_last_error("image trail disk full");
  WriteStatus(node->data_dir(), st).IgnoreError();
}

void Receiver::Impl::Housekeeping() {
  int64_t now = Now();
  if (now - last_fence_check_us >= 200'000) CheckFence();
  if (final_pending && !disk_full) TakeSavePoint();
  if (disk_full && now - last_save_point_us >= 1'000'000) {
    last_save_point_us = now;
    if (reopen_needed) {
      ReopenTrails();
    } else {
      TakeSavePoint();  // retry after a disk-full or write error
    }
  }
  if (now - last_status_us >= 1'000'000) {
    last_status_us = now;
    PublishStatus();
  }
  if (!silent_reported && last_message_us != 0 && now - last_message_us > 10'000'000) {
    silent_reported = true;
    Log(events::kSenderSilent, {{"seconds", absl::StrCat((now - last_message_us) / 1'000'000)}});
  }
}

absl::StatusOr<std::unique_ptr<Receiver>> Receiver::Open(const ReceiverOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->cfg = &options.config->proto;
  RDF_ASSIGN_OR_RETURN(ProcessBase base,
                       StartProcess(*options.config, options.node, proto::BACKUP, "receiver",
                                    options.fs, options.clock));
  impl->node = base.node;
  impl->lock = std::move(base.lock);
  impl->events = std::move(base.events);
  RDF_RETURN_IF_ERROR(CheckNoInitialCopyInProgress(options.fs, *impl->node, "receiver"));
  RDF_RETURN_IF_ERROR(impl->OpenTrails());
  impl->max_bytes = impl->cfg->receiver().max_message_bytes();
  impl->endpoint = wire::Endpoint(impl->node->host(), impl->node->audit_port());
  impl->CheckFence();
  if (options.finalize_only) {
    if (!impl->fenced) {
      return absl::FailedPreconditionError(
          "no takeover has been issued on this node (no takeover/epoch): nothing to finalize");
    }
  } else if (options.transport != nullptr) {
    impl->transport = options.transport;
  } else {
    RDF_RETURN_IF_ERROR(impl->Bind());
  }
  if (impl->initial_copy_start != 0) {
    impl->Log(events::kSavePoint, {{"asn", absl::StrCat(impl->trails->save_point().asn())},
               {"next_seq", absl::StrCat(impl->next_seq)},
               {"endpoint", impl->endpoint},
               {"initial_copy_start_asn", absl::StrCat(impl->initial_copy_start)}});
  } else {
    impl->Log(events::kSavePoint, {{"asn", absl::StrCat(impl->trails->save_point().asn())},
               {"next_seq", absl::StrCat(impl->next_seq)},
               {"endpoint", impl->endpoint}});
  }
  return std::unique_ptr<Receiver>(new Receiver(std::move(impl)));
}

Receiver::Receiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Receiver::~Receiver() = default;

absl::Status Receiver::Run(const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  if (s.opt.finalize_only) {
    if (s.final_pending) s.TakeSavePoint();
    s.PublishStatus();
    s.events->Flush().IgnoreError();
    if (s.final_pending) {
      return absl::UnavailableError("could not write the final save point; see the events");
    }
    return absl::OkStatus();
  }
  constexpr size_t kDrainBytes = 16u << 20;
  const int64_t max_wait_us = int64_t{s.cfg->receiver().save_point_max_wait_ms()} * 1000;
  while (!stop->load()) {
    absl::StatusOr<std::optional<net::Message>> m = s.transport->Recv(absl::Milliseconds(100));
    // Drain what has arrived, then one save point for all of it: light
    // load gets a save point per batch, heavy load coalesces. While batches
    // keep arriving (a catch-up), the save point waits at most
    // save_point_max_wait_ms (and kDrainBytes) after the first of them.
    size_t drained = 0;
    const int64_t drain_until = s.Now() + max_wait_us;
    while (m.ok() && m->has_value()) {
      drained += (*m)->body.size() + 1;
      s.Handle((*m)->peer, (*m)->body);
      if (drained >= kDrainBytes || s.Now() >= drain_until) break;
      m = s.transport->Recv(absl::ZeroDuration());
    }
    if (!m.ok()) return m.status();
    if (s.trails->pending() && !s.disk_full) s.TakeSavePoint();
    s.Housekeeping();
    if (!s.fatal.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot reopen the image trails after a write error: ", s.fatal.message()));
    }
  }
  if (s.trails->pending() && !s.disk_full) s.TakeSavePoint();
  s.PublishStatus();
  s.Log(events::kSavePoint, {{"asn", absl::StrCat(s.trails->save_point().asn())}});
  s.events->Flush().IgnoreError();
  return absl::OkStatus();
}

}  // namespace rdf::receiver
