#include "receiver/image_trails.h"

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "audit.pb.h"
#include "common/base/status_macros.h"
#include "common/state/audit_record.h"
#include "common/state/save_point.h"
#include "common/trail/reader.h"

namespace rdf::receiver {

// Syncs the dirty volume trails of a save point in parallel (each fdatasync
// waits on the device; together they overlap), on threads that live as long
// as the image trails: a save point used to start a thread per trail, and
// under load those starts cost about a fifth of the receiver's CPU
// (measured with perf at 8 clients).
class ParallelSync {
 public:
  explicit ParallelSync(size_t threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~ParallelSync() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }
  // Syncs `writers` on the threads and `own` on the calling thread; the
  // first error, `own`'s first.
  absl::Status SyncAll(const std::vector<trail::TrailWriter*>& writers,
                       trail::TrailWriter* own) {
    {
      absl::MutexLock l(&mu_);
      todo_ = writers;
      error_ = absl::OkStatus();
    }
    absl::Status s = own->Sync();
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(this, &ParallelSync::Done));
    if (s.ok()) s = error_;
    return s;
  }

 private:
  bool Done() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return todo_.empty() && busy_ == 0; }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !todo_.empty(); }
  void Loop() {
    absl::MutexLock l(&mu_);
    for (;;) {
      mu_.Await(absl::Condition(this, &ParallelSync::HasWork));
      if (todo_.empty()) return;  // stopping
      trail::TrailWriter* w = todo_.back();
      todo_.pop_back();
      ++busy_;
      mu_.Unlock();
      absl::Status s = w->Sync();
      mu_.Lock();
      --busy_;
      if (!s.ok() && error_.ok()) error_ = s;
    }
  }

  absl::Mutex mu_;
  std::vector<trail::TrailWriter*> todo_ ABSL_GUARDED_BY(mu_);
  size_t busy_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

ImageTrails::~ImageTrails() = default;

namespace {
// The MIT frame of a save point carries the save point's ASN, so no MIT
// record is above it; but a trail has no ASN 0 (the writer refuses it), and
// the final save point of a backup that received nothing is at ASN 0. Its
// frame says 1: the MIT is empty then, and 1 is above no record in it.
uint64_t FrameAsn(uint64_t save_point_asn) { return std::max<uint64_t>(save_point_asn, 1); }
}  // namespace

absl::StatusOr<std::unique_ptr<ImageTrails>> ImageTrails::Open(
    const config::Config& config, const proto::NodeConfig& node, FileSystem* fs, Clock* clock,
    const std::optional<trail::End>& published_frame) {
  std::unique_ptr<ImageTrails> t(new ImageTrails());
  t->dir_ = config::ImageTrailDir(node);
  t->fs_ = fs;
  t->clock_ = clock;
  RDF_RETURN_IF_ERROR(fs->CreateDirs(t->dir_));
  std::vector<std::pair<std::string, std::string>> names = {{kMasterImageTrail, ""}};
  for (const proto::VolumeConfig* v : config.ProtectedVolumes()) {
    names.push_back({config::VolumeDirName(v->name()), v->name()});
  }
  for (const auto& [name, volume] : names) {
    auto trail = std::make_unique<Trail>();
    trail->name = name;
    trail::WriterOptions wo;
    wo.dir = t->dir_;
    wo.name = name;
    wo.segment_bytes = config.proto.trail().image_segment_bytes();
    wo.fs = fs;
    wo.clock = clock;
    RDF_ASSIGN_OR_RETURN(trail->writer, trail::TrailWriter::Open(wo));
    if (!volume.empty()) t->by_volume_[volume] = trail.get();
    t->trails_.push_back(std::move(trail));
  }
  // The newest save point whose every trail end survived (see SavePoint:
  // its frame is written before the trails are synced).
  auto survived = [&t](const proto::SavePoint& sp) {
    for (const proto::TrailEnd& te : sp.trails()) {
      const Trail* trail = nullptr;
      for (const auto& x : t->trails_) {
        if (x->name == te.trail()) trail = x.get();
      }
      if (trail == nullptr) continue;  // a volume no longer protected
      if (trail->writer->appended_end().pos < trail::Position{te.segment(), te.offset()}) {
        return false;
      }
    }
    return true;
  };
  if (published_frame.has_value()) {
    // A reopen in the same process: no save point frame past the last one
    // published may be adopted. A later frame's syncs failed, and after a
    // failed fdatasync its pages can stay in the page cache, clean but
    // never written (fsyncgate): readable now, gone after a power loss.
    trail::TrailWriter* mit = t->trails_[0]->writer.get();
    if (published_frame->pos < mit->appended_end().pos) {
      RDF_RETURN_IF_ERROR(Annotate(mit->TruncateTo(*published_frame),
                                   "cut the MIT back to the last published save point"));
    }
  }
  trail::Position mit_end, frame_start;
  RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp,
                       ReadLastSavePoint(fs, t->dir_, &mit_end, survived, &frame_start));
  if (sp.has_value()) {
    t->save_point_ = *std::move(sp);
    t->frame_end_ = trail::End{FrameAsn(t->save_point_.asn()), mit_end, 0};
  }
  RDF_RETURN_IF_ERROR(t->CutBackToSavePoint());
  t->received_asn_ = t->save_point_.asn();
  t->audit_end_asn_ = t->save_point_.audit_end_asn();
  t->audit_end_time_us_ = t->save_point_.audit_end_time_us();
  t->last_record_time_us_ = t->save_point_.asn_time_us();
  t->max_txid_ = t->save_point_.max_txid();
  for (auto& trail : t->trails_) {
    if (const proto::TrailEnd* e = FindTrailEnd(t->save_point_, trail->name)) {
      trail->records = e->records();
      trail->bytes = e->bytes();
    }
  }
  for (const proto::OpenTransaction& o : t->save_point_.open()) {
    t->open_[o.txid()] = {o.first_asn(), o.records()};
  }
  RDF_ASSIGN_OR_RETURN(t->shm_, SharedBlob::Create(SavePointShmPath(t->dir_)));
  t->sync_ = std::make_unique<ParallelSync>(std::max<size_t>(1, t->trails_.size() - 1));
  if (sp.has_value()) RDF_RETURN_IF_ERROR(t->Publish(frame_start));
  return t;
}

absl::Status ImageTrails::CutBackToSavePoint() {
  // Everything past the last save point may be incomplete across trails:
  // drop it (the extractor resends from the save point).
  for (auto& trail : trails_) {
    trail::End end;
    if (trail->name == kMasterImageTrail && frame_end_.has_value()) {
      end = *frame_end_;
    } else if (const proto::TrailEnd* e = FindTrailEnd(save_point_, trail->name)) {
      end = {e->asn(), {e->segment(), e->offset()}, 0};
    } else if (trail->writer->last_asn() == 0) {
      continue;  // nothing written yet
    } else {
      // Records but no save point that covers this trail: cut to empty.
      // (Before the first save point the trails are still in segment 1.)
      end = {0, {1, trail::kHeaderSize}, 0};
    }
    if (trail->writer->appended_end().pos == end.pos) continue;
    RDF_RETURN_IF_ERROR(Annotate(trail->writer->TruncateTo(end),
                                 absl::StrCat("cut image trail ", trail->name,
                                              " back to the save point")));
  }
  return absl::OkStatus();
}

ImageTrails::Trail* ImageTrails::VolumeTrail(const std::string& volume) const {
  auto it = by_volume_.find(volume);
  return it == by_volume_.end() ? nullptr : it->second;
}

absl::Status ImageTrails::Validate(const proto::Batch& b) const {
  if (b.from_asn() != received_asn_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "batch ", b.seq(), " continues from ASN ", b.from_asn(), ", but ASNs through ",
        received_asn_, " were received"));
  }
  bool open_after = partial_open_;  // a fragmented record still open after b
  if (partial_open_ || HasFragment(b)) {
    RDF_RETURN_IF_ERROR(ValidateFragment(b));
    open_after = FragmentEnd(b.records(0)) < b.records(0).total_bytes();
  }
  if (open_after && b.read_through_asn() >= b.records(0).asn()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "read_through_asn ", b.read_through_asn(), " reaches record ", b.records(0).asn(),
        ", which is not complete yet"));
  }
  uint64_t prev = received_asn_;
  for (const proto::WireRecord& r : b.records()) {
    if (r.total_bytes() != 0) {  // checked by ValidateFragment
      prev = r.asn();
      continue;
    }
    if (r.asn() <= prev) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ASN ", r.asn(), " not above ", prev));
    }
    prev = r.asn();
    RDF_RETURN_IF_ERROR(CheckRecordFields(r, /*prefix=*/false));
  }
  if (!open_after && b.read_through_asn() < prev) {
    return absl::InvalidArgumentError(absl::StrCat(
        "read_through_asn ", b.read_through_asn(), " below the last record ", prev));
  }
  return absl::OkStatus();
}

bool ImageTrails::HasFragment(const proto::Batch& b) {
  for (const proto::WireRecord& r : b.records()) {
    if (r.total_bytes() != 0) return true;
  }
  return false;
}

uint64_t ImageTrails::FragmentEnd(const proto::WireRecord& r) {
  return r.fragment_offset() + r.payload().size();
}

absl::Status ImageTrails::ValidateFragment(const proto::Batch& b) const {
  // A fragment travels alone in its batch, and while a record is open only
  // its next fragment may come (the extractor sends them in order).
  if (b.records_size() != 1 || b.records(0).total_bytes() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch ", b.seq(), ": a record fragment must travel alone", partial_open_ ?
        absl::StrCat(" (record ", partial_.asn(), " is incomplete)") : ""));
  }
  const proto::WireRecord& r = b.records(0);
  if (r.payload().empty() || FragmentEnd(r) > r.total_bytes() ||
      r.total_bytes() > trail::kMaxPayload) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record ", r.asn(), ": fragment of ", r.payload().size(), " bytes at ",
        r.fragment_offset(), " of ", r.total_bytes(), " (limit ", trail::kMaxPayload, ")"));
  }
  if (!partial_open_) {
    if (r.fragment_offset() != 0 || r.asn() <= received_asn_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", r.asn(), ": first fragment at offset ", r.fragment_offset(),
          " (received through ", received_asn_, ")"));
    }
    return CheckRecordFields(r, /*prefix=*/true);
  }
  if (r.asn() != partial_.asn() || r.type() != partial_.type() || r.txid() != partial_.txid() ||
      r.volume() != partial_.volume() || r.total_bytes() != partial_.total_bytes() ||
      r.fragment_offset() != partial_.payload().size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record ", r.asn(), ": fragment at ", r.fragment_offset(), " of ", r.total_bytes(),
        " does not continue record ", partial_.asn(), " (", partial_.payload().size(), " of ",
        partial_.total_bytes(), " bytes received)"));
  }
  return absl::OkStatus();
}

void ImageTrails::DropPartial() {
  partial_ = proto::WireRecord();  // frees the buffer
  partial_open_ = false;
}

absl::Status ImageTrails::CheckRecordFields(const proto::WireRecord& r, bool prefix) const {
  switch (r.type()) {
    case proto::DATA:
    case proto::DDL:
      if (VolumeTrail(r.volume()) == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("record ", r.asn(), " names volume '", r.volume(),
                         "', which is not a protected volume here"));
      }
      break;
    case proto::COMMIT:
    case proto::ABORT:
    case proto::CONTROL:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("record ", r.asn(), " has unknown type ", r.type()));
  }
  if (r.payload().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("record ", r.asn(), " has no payload"));
  }
  return CheckRouting(r, prefix);
}

absl::Status ImageTrails::CheckRouting(const proto::WireRecord& r, bool prefix) {
  // The trails are chosen by the routing fields and the open set is kept
  // from them; the payload is what the updaters apply. A record whose two
  // disagree would land in the wrong trail or leave a transaction open (or
  // closed) wrongly: refuse it rather than trust either.
  absl::StatusOr<AuditHeader> h = ScanAuditHeader(r.payload(), prefix);
  if (!h.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("record ", r.asn(), ": payload does not parse: ", h.status().message()));
  }
  // Only DATA and DDL are routed by volume; the others carry none.
  const bool routed = r.type() == proto::DATA || r.type() == proto::DDL;
  const absl::string_view volume = routed ? h->volume : absl::string_view();
  if (h->type != r.type() || h->txid != r.txid() || r.volume() != volume) {
    return absl::InvalidArgumentError(absl::StrCat(
        "record ", r.asn(), ": routing (type ", r.type(), ", tx ", r.txid(), ", volume '",
        r.volume(), "') disagrees with its payload (type ", h->type, ", tx ", h->txid,
        ", volume '", h->volume, "')"));
  }
  return absl::OkStatus();
}

absl::Status ImageTrails::Append(const proto::Batch& b) {
  for (const proto::WireRecord& r : b.records()) {
    if (r.total_bytes() == 0) {
      RDF_RETURN_IF_ERROR(AppendRecord(r));
      continue;
    }
    // A fragment (validated: the next one of partial_, or a first one).
    if (!partial_open_) {
      partial_ = r;
      partial_.mutable_payload()->reserve(r.total_bytes());
      partial_open_ = true;
    } else {
      partial_.mutable_payload()->append(r.payload());
    }
    if (partial_.payload().size() < partial_.total_bytes()) continue;
    proto::WireRecord whole = std::move(partial_);
    DropPartial();
    whole.clear_fragment_offset();
    whole.clear_total_bytes();
    RDF_RETURN_IF_ERROR(AppendRecord(whole));
    absl::StatusOr<AuditHeader> h = ScanAuditHeader(whole.payload());
    if (h.ok()) last_record_time_us_ = std::max(last_record_time_us_, h->time_us);
  }
  if (!b.records().empty() && b.records().rbegin()->total_bytes() == 0) {
    // The primary's time of the newest record (the header scan copies
    // nothing; a bad payload was refused by Validate's caller already).
    absl::StatusOr<AuditHeader> h = ScanAuditHeader(b.records().rbegin()->payload());
    if (h.ok()) last_record_time_us_ = std::max(last_record_time_us_, h->time_us);
  }
  received_asn_ = std::max(received_asn_, b.read_through_asn());
  NoteAuditEnd(b.audit_end_asn(), b.audit_end_time_us());
  return absl::OkStatus();
}

absl::Status ImageTrails::AppendRecord(const proto::WireRecord& r) {
  Trail* mit = trails_[0].get();
  if (r.type() == proto::DATA || r.type() == proto::DDL) {
    RDF_RETURN_IF_ERROR(AppendTo(VolumeTrail(r.volume()), r));
  }
  if (r.type() != proto::DATA) RDF_RETURN_IF_ERROR(AppendTo(mit, r));
  if (r.type() == proto::DATA) {
    auto [it, inserted] = open_.try_emplace(r.txid(), r.asn(), 0);
    ++it->second.second;
  } else if (r.type() == proto::COMMIT || r.type() == proto::ABORT) {
    open_.erase(r.txid());
  }
  max_txid_ = std::max(max_txid_, r.txid());
  ++records_;
  bytes_ += r.payload().size();
  return absl::OkStatus();
}

absl::Status ImageTrails::AppendTo(Trail* t, const proto::WireRecord& r) {
  RDF_RETURN_IF_ERROR(
      t->writer->Append(r.asn(), static_cast<uint8_t>(r.type()), r.payload(), 0));
  t->dirty = true;
  ++t->records;
  t->bytes += r.payload().size();
  return absl::OkStatus();
}

void ImageTrails::NoteAuditEnd(uint64_t asn, int64_t time_us) {
  if (asn >= audit_end_asn_) {
    audit_end_asn_ = asn;
    audit_end_time_us_ = std::max(audit_end_time_us_, time_us);
  }
}

void ImageTrails::NoteReadThrough(uint64_t asn) {
  received_asn_ = std::max(received_asn_, asn);
}

absl::Status ImageTrails::SavePoint(uint64_t next_seq, uint64_t takeover_epoch) {
  // One phase: the save point's frame goes to the MIT first, then the MIT
  // and every dirty volume trail are synced together (each fdatasync waits
  // on the device; together they overlap), and only then is the save point
  // published and acknowledged. A crash in between can leave a frame whose
  // trails did not all become durable: Open skips such a save point (every
  // trail end it names must be there after repair) and cuts back to the one
  // before, which was complete before this one began.
  proto::SavePoint sp;
  sp.set_version(kSavePointVersion);
  sp.set_asn(received_asn_);
  sp.set_time_us(clock_->NowMicros());
  sp.set_audit_end_asn(audit_end_asn_);
  sp.set_audit_end_time_us(audit_end_time_us_);
  sp.set_next_seq(next_seq);
  sp.set_asn_time_us(last_record_time_us_);
  sp.set_max_txid(max_txid_);
  sp.set_takeover_epoch(takeover_epoch);
  for (auto& t : trails_) {
    proto::TrailEnd* te = AddTrailEnd(&sp, t->name, t->writer->appended_end());
    te->set_records(t->records);
    te->set_bytes(t->bytes);
  }
  for (const auto& [txid, info] : open_) {
    AddOpenTransaction(&sp, txid, info.first)->set_records(info.second);
  }
  Trail* mit = trails_[0].get();
  const std::string frame = sp.SerializeAsString();
  RDF_RETURN_IF_ERROR(mit->writer->Append(FrameAsn(received_asn_), kSavePointRecordType, frame,
                                          sp.time_us()));
  const trail::End frame_end = mit->writer->appended_end();
  // A frame never spans segments: it starts its size before its end.
  const trail::Position frame_start{frame_end.pos.segment,
                                    frame_end.pos.offset - trail::kFrameOverhead - frame.size()};
  mit->dirty = true;
  std::vector<trail::TrailWriter*> volume_trails;
  for (auto& t : trails_) {
    if (t->dirty && t.get() != mit) volume_trails.push_back(t->writer.get());
  }
  // The MIT is synced on this thread.
  absl::Status synced = sync_->SyncAll(volume_trails, mit->writer.get());
  // On failure the trails stay dirty and the next call syncs them again;
  // this save point is not published (Open would judge its frame).
  RDF_RETURN_IF_ERROR(synced);
  for (auto& t : trails_) t->dirty = false;
  frame_end_ = trail::End{frame_end.asn, frame_end.pos, 0};
  save_point_ = std::move(sp);
  // Tell the updaters (the durable copy is the MIT frame).
  return Publish(frame_start);
}

absl::Status ImageTrails::Publish(const trail::Position& frame_start) {
  // The shared file holds a copy bounded by the number of trails; the open
  // set, which a workload can make as large as it likes, stays in the frame.
  return shm_->Write(PublishedCopy(save_point_, frame_start).SerializeAsString());
}

uint64_t ImageTrails::fsyncs() const {
  uint64_t n = 0;
  for (const auto& t : trails_) n += t->writer->fsyncs();
  return n;
}

}  // namespace rdf::receiver
