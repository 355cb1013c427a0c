#include "extractor/extractor.h"

#include <unistd.h>

#include <deque>
#include <optional>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "audit.pb.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/events/log.h"
#include "common/net/curve_keys.h"
#include "common/net/zmq_transport.h"
#include "common/process/lock.h"
#include "common/process/main.h"
#include "common/process/rtd_watch.h"
#include "common/state/audit_record.h"
#include "common/state/pin_file.h"
#include "common/state/status_file.h"
#include "common/trail/durable_end.h"
#include "common/trail/reader.h"
#include "common/wire/wire.h"
#include "extractor/batcher.h"

namespace rdf::extractor {
namespace {
constexpr char kAuditTrail[] = "MAT";
constexpr int64_t kAckTimeoutUs = 5'000'000;
constexpr int64_t kHelloIntervalUs = 1'000'000;
constexpr int64_t kPinIntervalUs = 1'000'000;

// The extractor's states, as shown in status. A state machine: transitions
// are in Run() and the Handle* functions.
enum class State { kWaitingForAudit, kSync, kStream, kDamaged, kAuditMissing, kFenced };
const char* StateName(State s) {
  switch (s) {
    case State::kWaitingForAudit: return "WAITING_FOR_AUDIT";
    case State::kSync: return "SYNCHRONIZING";
    case State::kStream: return "RUNNING";
    case State::kDamaged: return "AUDIT_DAMAGED";
    case State::kAuditMissing: return "AUDIT_MISSING";
    case State::kFenced: return "FENCED";
  }
  return "UNKNOWN";
}
// A non-zero nonce, different on every call (and across restarts).
uint64_t NewNonce() {
  static std::mt19937_64 rng{std::random_device{}()};
  uint64_t n = 0;
  while (n == 0) n = rng();
  return n;
}
}  // namespace

struct Extractor::Impl {
  ExtractorOptions opt;
  const proto::NodeConfig* node = nullptr;
  const proto::SystemConfig* cfg = nullptr;
  std::unique_ptr<ProcessLock> lock;
  std::unique_ptr<events::EventLog> events;
  std::string audit_dir;
  std::unique_ptr<trail::SharedEnd> end;
  std::unique_ptr<trail::TrailReader> reader;
  std::unique_ptr<net::Transport> own_transport;  // unless the options gave one
  net::Transport* transport = nullptr;
  std::string endpoint;

  State state = State::kWaitingForAudit;
  // Reading position (read_through), numbering and the batch being filled.
  std::unique_ptr<Batcher> batcher;
  struct InFlight {
    uint64_t seq;
    uint64_t last_asn;
  };
  std::deque<InFlight> inflight;
  uint64_t sent_asn = 0;         // read_through of the newest batch sent
  uint64_t nonce = 0;            // of this synchronization (Hello/Welcome)
  int64_t sent_time_us = 0;      // primary time of the newest record sent
  uint64_t acked_asn = 0;        // receiver's save point
  uint64_t pinned_asn = 0;
  int64_t last_send_us = 0, last_ack_us = 0, last_hello_us = 0, last_pin_us = 0;
  int64_t last_status_us = 0, last_retry_us = 0, last_progress_us = 0;
  int64_t reconnect_at_us = 0;  // after a failed handshake (libzmq gives up)
  std::string last_error;
  std::unique_ptr<RtdWatch> rtd_watch;
  uint64_t batches = 0, records = 0, bytes = 0;
  absl::flat_hash_map<std::string, bool> protected_cache;
  // Events use the catalog's text and severity (docs/events.md); the
  // specifics go into fields.
  void Log(uint32_t number, events::EventFields fields = {}) { events->Log(number, fields); }
  int64_t Now() { return opt.clock->MonotonicMicros(); }

  bool Protected(absl::string_view volume, absl::string_view file) {
    std::string k = absl::StrCat(volume, "/", file);
    auto it = protected_cache.find(k);
    if (it != protected_cache.end()) return it->second;
    bool p = opt.config->IsProtected(std::string_view(volume.data(), volume.size()),
                                     std::string_view(file.data(), file.size()));
    protected_cache[k] = p;
    return p;
  }

  void Send(const proto::WireMessage& m) {
    // Not queued (no connection, queue full): the acknowledgement timeout
    // or the receiver's RESYNC brings the session back in step.
    transport->Send("", wire::Encode(m)).IgnoreError();
  }

  absl::Status Connect();
  bool OpenAudit();
  void EnterSync(const std::string& why);
  void SendHello();
  void HandleMessage(absl::string_view bytes);
  void ReadError(const absl::Status& s);
  bool FillAndSend();
  void SendHeartbeat();
  void MaybeWritePin();
  void PublishStatus();
  void Poll(int timeout_ms);
};

absl::Status Extractor::Impl::Connect() {
  const proto::NodeConfig* backup = opt.config->NodeWithRole(proto::BACKUP);
  endpoint = wire::Endpoint(backup->host(), backup->audit_port());
  if (opt.transport != nullptr) {
    transport = opt.transport;
    return absl::OkStatus();
  }
  net::ZmqConnectOptions o;
  o.endpoint = endpoint;
  // Read again for every connection: after a refused handshake the keys
  // may have been fixed meanwhile.
  o.keys = [this, backup]() -> absl::StatusOr<net::CurveClientKeys> {
    RDF_ASSIGN_OR_RETURN(std::string server_key, curve::PublicKeyOf(*opt.config, *backup));
    RDF_ASSIGN_OR_RETURN(curve::KeyPair own, curve::ReadNodeKeyPair(*opt.config, *node));
    return net::CurveClientKeys{server_key, own.public_key, own.secret_key};
  };
  o.sndhwm = static_cast<int>(cfg->extractor().window() + 16);
  RDF_ASSIGN_OR_RETURN(own_transport, net::ZmqTransport::Connect(std::move(o)));
  transport = own_transport.get();
  return absl::OkStatus();
}

bool Extractor::Impl::OpenAudit() {
  if (!end) {
    absl::StatusOr<std::unique_ptr<trail::SharedEnd>> e =
        trail::SharedEnd::OpenReadOnly(trail::EndFilePath(audit_dir, kAuditTrail));
    if (!e.ok()) return false;  // tmf has not written yet
    end = *std::move(e);
  }
  if (!reader) {
    absl::StatusOr<std::unique_ptr<trail::TrailReader>> r =
        trail::TrailReader::Open({audit_dir, kAuditTrail, opt.fs, end.get()});
    if (!r.ok()) return false;
    reader = *std::move(r);
  }
  return true;
}

void Extractor::Impl::EnterSync(const std::string& why) {
  if (state != State::kSync) {
    Log(events::kEstablishingSynch, {{"endpoint", endpoint}, {"reason", why}});
  }
  state = State::kSync;
  inflight.clear();
  // What was read but not sent is read again after the Welcome.
  batcher->Restart(batcher->read_through(), batcher->next_seq());
  last_hello_us = 0;
  // A new synchronization: a Welcome answering a Hello of an earlier one
  // (queued at a slow receiver) describes a state that batches sent since
  // may have changed, and is ignored.
  nonce = NewNonce();
}

void Extractor::Impl::SendHello() {
  proto::WireMessage m;
  m.mutable_hello()->set_node(node->name());
  trail::End e = end->Get();
  m.mutable_hello()->set_audit_end_asn(e.asn);
  m.mutable_hello()->set_audit_end_time_us(e.time_us);
  m.mutable_hello()->set_nonce(nonce);
  Send(m);
  last_hello_us = Now();
}

void Extractor::Impl::ReadError(const absl::Status& s) {
  last_error = std::string(s.message());
  if (absl::IsNotFound(s)) {
    if (state != State::kAuditMissing) {
      Log(events::kAuditFileMissing, {{"error", last_error}, {"asn", absl::StrCat(batcher->read_through() + 1)}});
    }
    state = State::kAuditMissing;
  } else {
    Log(events::kTrailDamaged, {{"error", last_error}, {"asn", absl::StrCat(batcher->read_through())}});
    state = State::kDamaged;
  }
  last_retry_us = Now();
}

// Reads protected audit into one batch (bounded in bytes and waiting time)
// and sends it. False when there was nothing to send. The batch's content
// is the Batcher's; when to wait for more is decided here.
bool Extractor::Impl::FillAndSend() {
  const int64_t wait_us = int64_t{cfg->extractor().batch_wait_ms()} * 1000;
  const size_t half_window = std::max<size_t>(1, cfg->extractor().window() / 2);
  const uint64_t start_read = batcher->read_through();
  batcher->Begin();
  int64_t first_us = batcher->empty() ? 0 : Now();
  while (!batcher->full()) {
    absl::StatusOr<std::optional<trail::Record>> rec = reader->Next();
    if (rec.ok() && !rec->has_value()) {
      // Nothing more yet. While less than half the window is in flight,
      // send what there is now. Otherwise the receiver is busy with a save
      // point and takes what comes now only into its next one: hold the
      // batch until an ack frees the window (that save point is done), and
      // send it then with whatever audit came meanwhile: as soon, in fewer
      // messages. The batch wait bounds the hold.
      if (first_us == 0) {
        rec = reader->NextWait(absl::Microseconds(50'000));
        if (rec.ok() && !rec->has_value()) break;
      } else if (inflight.size() >= half_window && Now() < first_us + wait_us) {
        Poll(static_cast<int>((first_us + wait_us - Now() + 999) / 1000));
        if (state != State::kStream) {
          // Refused meanwhile: the batch is dropped; a Welcome seeks again.
          batcher->Restart(start_read, batcher->next_seq());
          return false;
        }
        continue;
      } else {
        break;
      }
    }
    if (!rec.ok()) {
      ReadError(rec.status());
      break;
    }
    if (first_us == 0) first_us = Now();
    absl::Status added = batcher->Add(std::move(**rec));
    if (!added.ok()) {
      ReadError(added);
      break;
    }
  }
  if (batcher->empty()) {
    // Only unprotected audit (or nothing): heartbeats carry read_through.
    return batcher->read_through() != start_read;
  }
  Batcher::Output out = batcher->Take(end->Get());
  if (out.newest_time_us != 0) sent_time_us = out.newest_time_us;
  records += out.batch.records_size();
  bytes += out.bytes;
  ++batches;
  sent_asn = out.batch.read_through_asn();
  inflight.push_back({out.batch.seq(), sent_asn});
  proto::WireMessage m;
  *m.mutable_batch() = std::move(out.batch);
  Send(m);
  last_send_us = last_progress_us = Now();
  if (inflight.size() == 1) last_ack_us = last_send_us;
  return true;
}

void Extractor::Impl::SendHeartbeat() {
  proto::WireMessage m;
  trail::End e = end->Get();
  m.mutable_heartbeat()->set_audit_end_asn(e.asn);
  m.mutable_heartbeat()->set_audit_end_time_us(e.time_us);
  m.mutable_heartbeat()->set_read_through_asn(batcher->read_through());
  m.mutable_heartbeat()->set_next_seq(batcher->next_seq());
  m.mutable_heartbeat()->set_from_asn(batcher->NoteHeartbeat());
  Send(m);
  last_send_us = Now();
}

void Extractor::Impl::HandleMessage(absl::string_view bytes) {
  absl::StatusOr<proto::WireMessage> m = wire::Decode(bytes, 1u << 20);
  if (!m.ok()) {
    Log(events::kRefusedByReceiver, {{"error", std::string(m.status().message())}});
    return;
  }
  switch (m->body_case()) {
    case proto::WireMessage::kWelcome: {
      if (state != State::kSync) return;
      const proto::Welcome& w = m->welcome();
      if (w.nonce() != nonce) return;  // answers an older Hello: stale
      absl::Status s = reader->SeekToAsn(w.restart_asn());
      if (!s.ok()) {
        ReadError(s);
        return;
      }
      batcher->Restart(w.restart_asn() - 1, w.next_seq());
      sent_asn = w.restart_asn() - 1;
      acked_asn = w.save_point_asn();
      inflight.clear();
      state = State::kStream;
      last_ack_us = Now();
      last_error.clear();
      Log(events::kSynchEstablished, {{"restart_asn", absl::StrCat(w.restart_asn())},
           {"position", trail::ToString(reader->position())},
           {"next_seq", absl::StrCat(w.next_seq())}});
      return;
    }
    case proto::WireMessage::kAck: {
      const proto::Ack& a = m->ack();
      while (!inflight.empty() && inflight.front().seq <= a.seq()) inflight.pop_front();
      acked_asn = std::max(acked_asn, a.save_point_asn());
      last_ack_us = Now();
      return;
    }
    case proto::WireMessage::kRefuse: {
      const proto::Refuse& r = m->refuse();
      last_error = r.text();
      if (r.reason() == proto::Refuse::RESYNC) {
        EnterSync("receiver asked to resynchronize");
      } else if (r.reason() == proto::Refuse::FENCED) {
        if (state != State::kFenced) {
          Log(events::kRefusedByReceiver, {{"reason", "fenced"}, {"text", r.text()}});
        }
        state = State::kFenced;
        last_retry_us = Now();
      } else {
        Log(events::kRefusedByReceiver, {{"reason", proto::Refuse::Reason_Name(r.reason())}, {"text", r.text()}});
        EnterSync("refused");
      }
      return;
    }
    default:
      return;
  }
}

void Extractor::Impl::MaybeWritePin() {
  if (acked_asn <= pinned_asn || Now() - last_pin_us < kPinIntervalUs) return;
  absl::Status s = WritePin(opt.fs, audit_dir, acked_asn);
  last_pin_us = Now();
  if (s.ok()) {
    pinned_asn = acked_asn;
  } else {
    Log(events::kFileSystemError, {{"op", "pin"}, {"error", std::string(s.message())}});
  }
}

void Extractor::Impl::PublishStatus() {
  proto::ProcessStatus st = NewProcessStatus(node->name(), "extractor", StateName(state), opt.clock);
  trail::End e = end ? end->Get() : trail::End{};
  if (reader) {
    st.mutable_position()->set_segment(reader->position().segment);
    st.mutable_position()->set_offset(reader->position().offset);
  }
  const uint64_t read_through = batcher->read_through();
  st.mutable_position()->set_asn(read_through);
  st.set_sent_asn(sent_asn);
  st.set_acked_asn(acked_asn);
  st.set_audit_end_asn(e.asn);
  st.set_audit_end_time_us(e.time_us);
  // RTD on the primary's clock: newest audit time minus the time of the
  // last record shipped; 0 once everything written has been read.
  int64_t rtd_ms = 0;
  if (read_through < e.asn) {
    rtd_ms = std::max<int64_t>(0, (e.time_us - sent_time_us) / 1000);
    if (sent_time_us == 0) rtd_ms = -1;  // nothing shipped yet this run
  }
  st.set_rtd_ms(rtd_ms);
  st.set_backlog_records(e.asn > read_through ? e.asn - read_through : 0);
  st.set_last_progress_age_ms(last_progress_us == 0 ? -1 : (Now() - last_progress_us) / 1000);
  st.set_last_error(last_error);
  st.set_batches(batches);
  st.set_records(records);
  st.set_bytes(bytes);
  WriteStatus(node->data_dir(), st).IgnoreError();
  rtd_watch->Observe(rtd_ms);
}

void Extractor::Impl::Poll(int timeout_ms) {
  for (int i = 0; i < 1024; ++i) {
    absl::StatusOr<std::optional<net::Message>> msg =
        transport->Recv(i == 0 ? absl::Milliseconds(timeout_ms) : absl::ZeroDuration());
    // A broken transport (kInternal) is tried again on the next turn: the
    // extractor has nothing better to do than to keep heartbeating status.
    if (!msg.ok() || !msg->has_value()) break;
    HandleMessage((*msg)->body);
  }
}

absl::StatusOr<std::unique_ptr<Extractor>> Extractor::Open(const ExtractorOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->cfg = &options.config->proto;
  RDF_ASSIGN_OR_RETURN(ProcessBase base,
                       StartProcess(*options.config, options.node, proto::PRIMARY, "extractor",
                                    options.fs, options.clock));
  impl->node = base.node;
  impl->lock = std::move(base.lock);
  impl->events = std::move(base.events);
  impl->rtd_watch = std::make_unique<RtdWatch>(impl->cfg->extractor().rtd_warning_ms(),
                                               impl->events.get());
  impl->audit_dir = config::AuditDir(*impl->node);
  Impl* i = impl.get();
  impl->batcher = std::make_unique<Batcher>(BatcherOptions{
      impl->cfg->extractor().batch_bytes(),
      [i](absl::string_view volume, absl::string_view file) { return i->Protected(volume, file); }});
  RDF_RETURN_IF_ERROR(impl->Connect());
  return std::unique_ptr<Extractor>(new Extractor(std::move(impl)));
}

Extractor::Extractor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Extractor::~Extractor() = default;

absl::Status Extractor::Run(const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  const size_t window = s.cfg->extractor().window();
  const int64_t heartbeat_us = int64_t{s.cfg->extractor().heartbeat_ms()} * 1000;
  while (!stop->load()) {
    int64_t now = s.Now();
    const net::LinkEvents link = s.transport->TakeLinkEvents();
    if (link.auth_failed) {
      s.Log(events::kAuthenticationFailed, {{"endpoint", s.endpoint}});
      s.last_error = "authentication with the receiver failed";
      // libzmq does not reconnect after a failed handshake: connect anew
      // after a backoff (the keys may be fixed meanwhile).
      s.reconnect_at_us = now + 5'000'000;
    }
    if (s.reconnect_at_us != 0 && now >= s.reconnect_at_us) {
      s.reconnect_at_us = 0;
      absl::Status c = s.transport->Reconnect();
      if (!c.ok()) {
        s.last_error = std::string(c.message());
        s.reconnect_at_us = now + 5'000'000;
      }
      if (s.state == State::kStream) s.EnterSync("reconnect after a failed handshake");
    }
    if (link.disconnected && s.state == State::kStream) {
      s.Log(events::kConnectionLost, {{"endpoint", s.endpoint}, {"unacknowledged", absl::StrCat(s.inflight.size())}});
      s.EnterSync("connection lost");
    }
    switch (s.state) {
      case State::kWaitingForAudit:
        if (s.OpenAudit()) s.EnterSync("start");
        else s.Poll(200);
        break;
      case State::kSync:
        if (now - s.last_hello_us >= kHelloIntervalUs) s.SendHello();
        s.Poll(50);
        break;
      case State::kStream: {
        s.Poll(0);
        if (s.state != State::kStream) break;
        bool sent = false;
        if (s.inflight.size() < window) sent = s.FillAndSend();
        if (s.state != State::kStream) break;
        if (!s.inflight.empty() && s.Now() - s.last_ack_us > kAckTimeoutUs) {
          s.Log(events::kConnectionLost, {{"endpoint", s.endpoint}, {"unacknowledged", absl::StrCat(s.inflight.size())}});
          s.EnterSync("acknowledgement timeout");
          break;
        }
        if (!sent && s.Now() - s.last_send_us >= heartbeat_us) s.SendHeartbeat();
        if (s.inflight.size() >= window) s.Poll(5);  // window full: wait for acks
        break;
      }
      case State::kDamaged:
      case State::kAuditMissing:
        // Retry from the last good position every 5 s (a restored segment
        // clears it); never ship past the damage.
        if (now - s.last_retry_us >= 5'000'000) {
          s.reader.reset();
          if (s.OpenAudit()) s.EnterSync("retry after audit read error");
          s.last_retry_us = now;
        }
        if (s.Now() - s.last_send_us >= heartbeat_us && s.state != State::kSync) s.SendHeartbeat();
        s.Poll(100);
        break;
      case State::kFenced:
        s.Poll(200);
        if (now - s.last_retry_us >= 30'000'000) s.EnterSync("fenced; trying again");
        break;
    }
    s.MaybeWritePin();
    if (s.Now() - s.last_status_us >= 1'000'000) {
      s.last_status_us = s.Now();
      s.PublishStatus();
    }
  }
  s.PublishStatus();
  s.events->Flush().IgnoreError();
  return absl::OkStatus();
}

}  // namespace rdf::extractor
