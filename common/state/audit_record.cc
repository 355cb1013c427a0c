#include "common/state/audit_record.h"

#include <cstring>

#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "google/protobuf/io/coded_stream.h"

namespace rdf {

std::string EncodeAuditPayload(const proto::AuditRecord& r) {
  proto::AuditRecord copy = r;
  PrepareAuditPayload(&copy);
  return copy.SerializeAsString();
}

void PrepareAuditPayload(proto::AuditRecord* r) {
  r->set_asn(0);
  r->set_version(kAuditRecordVersion);
}

absl::StatusOr<proto::AuditRecord> DecodeAuditRecord(const trail::Record& rec) {
  proto::AuditRecord r;
  if (!r.ParseFromString(rec.payload)) {
    return absl::DataLossError(absl::StrCat("audit record at ",
                                            trail::ToString(rec.pos),
                                            " (asn ", rec.asn,
                                            ") does not parse"));
  }
  if (r.version() != kAuditRecordVersion) {
    return absl::DataLossError(absl::StrCat("audit record at ",
                                            trail::ToString(rec.pos),
                                            " has unknown version ",
                                            r.version()));
  }
  if (static_cast<uint8_t>(r.type()) != rec.type) {
    return absl::DataLossError(absl::StrCat(
        "audit record at ", trail::ToString(rec.pos), ": frame type ",
        rec.type, " disagrees with record type ", r.type()));
  }
  r.set_asn(rec.asn);
  return r;
}

namespace {
bool ReadVarint(absl::string_view& in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    *v |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// Field numbers of proto::AuditRecord (proto/audit.proto).
constexpr uint32_t kTime = 3, kTxid = 4, kType = 5, kVolume = 6, kFile = 7, kBefore = 9,
                   kAfter = 10;

// Calls `f` for each field of an encoded message in order, with its number
// and its value (a varint, or the bytes of a length-delimited field; fixed-
// width fields are skipped). With `stop_above` > 0 it stops at the first
// field numbered above it.
absl::Status ForEachField(absl::string_view in, uint32_t stop_above,
                          absl::FunctionRef<void(uint32_t, uint64_t, absl::string_view)> f) {
  while (!in.empty()) {
    uint64_t tag, v;
    if (!ReadVarint(in, &tag)) return absl::DataLossError("audit record: bad tag");
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    if (stop_above > 0 && field > stop_above) break;
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(in, &v)) return absl::DataLossError("audit record: bad varint");
        f(field, v, {});
        break;
      case 2: {  // length-delimited
        if (!ReadVarint(in, &v) || v > in.size()) {
          return absl::DataLossError("audit record: bad length");
        }
        f(field, 0, in.substr(0, v));
        in.remove_prefix(v);
        break;
      }
      case 1:
        if (in.size() < 8) return absl::DataLossError("audit record: short fixed64");
        in.remove_prefix(8);
        break;
      case 5:
        if (in.size() < 4) return absl::DataLossError("audit record: short fixed32");
        in.remove_prefix(4);
        break;
      default:
        return absl::DataLossError("audit record: bad wire type");
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<AuditHeader> ScanAuditHeader(absl::string_view in, bool prefix) {
  AuditHeader h;
  RDF_RETURN_IF_ERROR(ForEachField(
      in, prefix ? kFile : 0, [&](uint32_t field, uint64_t v, absl::string_view bytes) {
        if (field == kTime) h.time_us = static_cast<int64_t>(v);
        if (field == kTxid) h.txid = v;
        if (field == kType) h.type = static_cast<uint32_t>(v);
        if (field == kVolume) h.volume = bytes;
        if (field == kFile) h.file = bytes;
      }));
  return h;
}

absl::StatusOr<AuditImages> ScanAuditImages(absl::string_view payload) {
  AuditImages i;
  RDF_RETURN_IF_ERROR(ForEachField(payload, 0, [&](uint32_t field, uint64_t, absl::string_view b) {
    if (field == kBefore) i.before = b;
    if (field == kAfter) i.after = b;
  }));
  return i;
}

AuditPayload::AuditPayload(proto::AuditRecord* r, std::optional<absl::string_view> after)
    : head_(r), after_(after) {
  PrepareAuditPayload(r);
  if (after.has_value()) {
    // After `after` (10) come compensation (11), op (12), ddl (13), control (14).
    tail_.set_compensation(r->compensation());
    tail_.set_op(r->op());
    tail_.set_ddl(r->ddl());
    tail_.set_control(r->control());
    r->clear_compensation();
    r->clear_op();
    r->clear_ddl();
    r->clear_control();
    const uint32_t n = static_cast<uint32_t>(after->size());
    after_size_ = 1 + google::protobuf::io::CodedOutputStream::VarintSize32(n) + n;
  }
  head_size_ = r->ByteSizeLong();
  tail_size_ = tail_.ByteSizeLong();
}

void AuditPayload::WriteTo(char* p) const {
  auto* out = reinterpret_cast<uint8_t*>(p);
  out = head_->SerializeWithCachedSizesToArray(out);
  if (after_.has_value()) {
    *out++ = static_cast<uint8_t>((kAfter << 3) | 2);  // length-delimited
    out = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
        static_cast<uint32_t>(after_->size()), out);
    if (!after_->empty()) std::memcpy(out, after_->data(), after_->size());
    out += after_->size();
  }
  tail_.SerializeWithCachedSizesToArray(out);
}

size_t AuditRecordBytes(const proto::AuditRecord& r) {
  return trail::kFrameOverhead + 24 + r.volume().size() + r.file().size() +
         r.key().size() + r.before().size() + r.after().size();
}

std::string DescribeAuditRecord(const proto::AuditRecord& r) {
  std::string s = absl::StrCat(proto::RecordType_Name(r.type()));
  if (r.type() == proto::DATA) absl::StrAppend(&s, " ", proto::DataOp_Name(r.op()));
  if (r.type() == proto::DDL) absl::StrAppend(&s, " ", proto::DdlOp_Name(r.ddl()));
  absl::StrAppend(&s, " asn ", r.asn(), " tx ", r.txid());
  if (!r.volume().empty()) absl::StrAppend(&s, " ", r.volume(), "/", r.file());
  if (!r.key().empty()) absl::StrAppend(&s, " key=", absl::CHexEscape(r.key()));
  if (r.compensation()) absl::StrAppend(&s, " (compensation)");
  return s;
}

}  // namespace rdf
