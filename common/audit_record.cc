#include "common/audit_record.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"

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
}  // namespace

absl::StatusOr<AuditHeader> ScanAuditHeader(absl::string_view in, bool prefix) {
  // Field numbers of proto::AuditRecord (proto/audit.proto).
  constexpr uint32_t kTime = 3, kTxid = 4, kType = 5, kVolume = 6, kFile = 7;
  AuditHeader h;
  while (!in.empty()) {
    uint64_t tag, v;
    if (!ReadVarint(in, &tag)) return absl::DataLossError("audit record: bad tag");
    if (prefix && (tag >> 3) > kFile) break;
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(in, &v)) return absl::DataLossError("audit record: bad varint");
        if ((tag >> 3) == kTime) h.time_us = static_cast<int64_t>(v);
        if ((tag >> 3) == kTxid) h.txid = v;
        if ((tag >> 3) == kType) h.type = static_cast<uint32_t>(v);
        break;
      case 2: {  // length-delimited
        if (!ReadVarint(in, &v) || v > in.size()) {
          return absl::DataLossError("audit record: bad length");
        }
        absl::string_view bytes = in.substr(0, v);
        if ((tag >> 3) == kVolume) h.volume = bytes;
        if ((tag >> 3) == kFile) h.file = bytes;
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
  return h;
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
