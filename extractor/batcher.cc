#include "extractor/batcher.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/state/audit_record.h"

namespace rdf::extractor {

Batcher::Batcher(BatcherOptions options) : opt_(std::move(options)) {}

void Batcher::Restart(uint64_t read_through, uint64_t next_seq) {
  read_through_ = told_asn_ = read_through;
  next_seq_ = next_seq;
  batch_.Clear();
  bytes_ = 0;
  newest_time_us_ = 0;
  full_ = false;
  held_.reset();
}

void Batcher::Begin() {
  assert(empty());
  full_ = false;
  if (held_.has_value()) Pack();
}

absl::Status Batcher::Add(trail::Record rec) {
  assert(!full_ && !held_.has_value());
  // Only the routing facts are read; the payload goes out as it is.
  absl::StatusOr<AuditHeader> a = ScanAuditHeader(rec.payload);
  if (!a.ok()) {
    return Annotate(a.status(),
                    absl::StrCat("audit record ", rec.asn, " at ", trail::ToString(rec.pos)));
  }
  // tmf numbers every audit record: ASNs are contiguous, so a jump means
  // audit is gone (a segment removed before it was shipped).
  if (rec.asn != read_through_ + 1) {
    return absl::NotFoundError(absl::StrCat(
        "audit ASNs ", read_through_ + 1, "..", rec.asn - 1, " are missing before ",
        trail::ToString(rec.pos), " (an audit segment was removed before it was shipped)"));
  }
  const auto type = static_cast<proto::RecordType>(rec.type);
  const bool routed = type == proto::DATA || type == proto::DDL;
  if (routed && !opt_.is_protected(a->volume, a->file)) {
    read_through_ = rec.asn;
    return absl::OkStatus();
  }
  // (The header's views point into the payload: copy before moving it.)
  std::string volume = routed ? std::string(a->volume) : std::string();
  held_ = Held{std::move(rec), type, a->txid, std::move(volume), a->time_us, 0};
  Pack();
  return absl::OkStatus();
}

proto::WireRecord* Batcher::AddWireRecord() {
  proto::WireRecord* w = batch_.add_records();
  w->set_asn(held_->rec.asn);
  w->set_type(held_->type);
  w->set_txid(held_->txid);
  w->set_volume(held_->volume);
  return w;
}

// The held record goes in whole when it fits in what is left of the batch;
// else, when it fits in a batch of its own, it waits for the next one; else
// (larger than a batch) its next fragment goes alone in a batch.
void Batcher::Pack() {
  Held& h = *held_;
  const size_t max = opt_.batch_bytes;
  const size_t total = h.rec.payload.size();
  if (h.sent == 0 && bytes_ + total + kRecordOverhead <= max) {
    bytes_ += total + kRecordOverhead;
    AddWireRecord()->set_payload(std::move(h.rec.payload));
  } else if ((h.sent == 0 && total + kRecordOverhead <= max) || !empty()) {
    full_ = true;  // the next batch: whole, or fragments alone
    return;
  } else {
    const size_t n = std::min(max, total - h.sent);
    proto::WireRecord* w = AddWireRecord();
    w->set_payload(h.rec.payload.substr(h.sent, n));
    w->set_fragment_offset(h.sent);
    w->set_total_bytes(total);
    h.sent += n;
    bytes_ += n + kRecordOverhead;
    full_ = true;  // a fragment closes its batch
    // read_through stays below a record until its last fragment is batched.
    if (h.sent < total) return;
  }
  read_through_ = h.rec.asn;
  newest_time_us_ = h.time_us;
  held_.reset();
  if (bytes_ >= max) full_ = true;
}

Batcher::Output Batcher::Take(const trail::End& audit_end) {
  assert(!empty());
  batch_.set_seq(next_seq_++);
  batch_.set_from_asn(told_asn_);
  batch_.set_read_through_asn(read_through_);
  batch_.set_audit_end_asn(audit_end.asn);
  batch_.set_audit_end_time_us(audit_end.time_us);
  told_asn_ = read_through_;
  Output out{std::move(batch_), bytes_, newest_time_us_};
  batch_.Clear();
  bytes_ = 0;
  newest_time_us_ = 0;
  full_ = held_.has_value();  // until Begin
  return out;
}

uint64_t Batcher::NoteHeartbeat() {
  assert(empty());
  return std::exchange(told_asn_, read_through_);
}

}  // namespace rdf::extractor
