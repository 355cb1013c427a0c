// Fuzz target: a message as it arrives from the network (common/wire/wire.h),
// taken through what the receiver and the extractor do with raw bytes before
// they act: wire::Decode (size limit, parse, version, body), then for a batch
// the receiver's ImageTrails::Validate and the audit-record header scan the
// receiver runs on payloads (ScanAuditHeader), and the full decode the
// updater runs on them (DecodeAuditRecord); for a refusal, the reason name
// the extractor logs.
//
// Promises checked:
//  - a decoded message encodes and decodes again to the same message;
//  - where both the header scan and the full decode accept a payload, they
//    agree on its time, transaction, volume and file (the extractor routes
//    by the scan, the updater applies by the decode).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "audit.pb.h"
#include "common/base/clock.h"
#include "common/config/config.h"
#include "common/state/audit_record.h"
#include "common/testing/mem_file_system.h"
#include "common/trail/reader.h"
#include "common/wire/wire.h"
#include "receiver/image_trails.h"
#include "tests/fuzz/fuzz_check.h"
#include "wire.pb.h"

namespace rdf::fuzz {
namespace {

// The receiver's limit (receiver.max_message_bytes' default).
constexpr size_t kMaxMessageBytes = config::kDefaultMaxMessageBytes;

// A receiver's image trails, opened once: Validate only reads them. Their
// shared end and save point files are real mapped files, so they live in a
// temporary folder removed at exit.
struct Backup {
  std::string dir;
  std::unique_ptr<config::Config> config;
  MemFileSystem fs;
  FakeClock clock;
  std::unique_ptr<receiver::ImageTrails> trails;
};

std::string g_backup_dir;

void RemoveBackupDir() {
  std::error_code ec;
  if (!g_backup_dir.empty()) std::filesystem::remove_all(g_backup_dir, ec);
}

Backup* OpenBackup() {
  auto* b = new Backup;
  std::string tmpl = (std::filesystem::temp_directory_path() / "rdf-fuzz-wire.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();
  b->dir = g_backup_dir = tmpl;
  std::atexit(RemoveBackupDir);
  absl::StatusOr<config::Config> c = config::Parse(R"(
      system: "fuzz"
      nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "p.key" }
      nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17999
              data_dir: "b" key_file: "b.key" }
      volumes { name: "$DATA01" }
      volumes { name: "$DATA02" }
      # The trails live in a MemFileSystem, which preallocates in memory.
      trail { image_segment_bytes: 65536 }
    )", b->dir + "/rdf.textproto");
  RDF_FUZZ_CHECK(c.ok(), std::string(c.status().message()).c_str());
  b->config = std::make_unique<config::Config>(*std::move(c));
  const proto::NodeConfig* node = b->config->FindNode("backup");
  std::filesystem::create_directories(config::ImageTrailDir(*node));
  absl::StatusOr<std::unique_ptr<receiver::ImageTrails>> t =
      receiver::ImageTrails::Open(*b->config, *node, &b->fs, &b->clock);
  RDF_FUZZ_CHECK(t.ok(), std::string(t.status().message()).c_str());
  b->trails = *std::move(t);
  return b;
}

Backup& TheBackup() {
  static Backup* const backup = OpenBackup();
  return *backup;
}

void CheckPayload(const proto::WireRecord& w) {
  absl::StatusOr<AuditHeader> h = ScanAuditHeader(w.payload());
  trail::Record rec;
  rec.asn = w.asn();
  rec.type = static_cast<uint8_t>(w.type());
  rec.payload = w.payload();
  absl::StatusOr<proto::AuditRecord> r = DecodeAuditRecord(rec);
  if (r.ok()) DescribeAuditRecord(*r);
  if (!h.ok() || !r.ok()) return;
  RDF_FUZZ_CHECK(h->time_us == r->time_us(), "header scan and decode disagree on time_us");
  RDF_FUZZ_CHECK(h->txid == r->txid(), "header scan and decode disagree on txid");
  RDF_FUZZ_CHECK(h->volume == r->volume(), "header scan and decode disagree on volume");
  RDF_FUZZ_CHECK(h->file == r->file(), "header scan and decode disagree on file");
}

}  // namespace
}  // namespace rdf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdf;
  using namespace rdf::fuzz;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<proto::WireMessage> m = wire::Decode(bytes, kMaxMessageBytes);
  if (!m.ok()) return 0;

  absl::StatusOr<proto::WireMessage> again =
      wire::Decode(wire::Encode(*m), kMaxMessageBytes);
  RDF_FUZZ_CHECK(again.ok(), "a decoded message does not decode once re-encoded");
  RDF_FUZZ_CHECK(again->SerializeAsString() == m->SerializeAsString(),
                 "a decoded message changes when re-encoded");

  switch (m->body_case()) {
    case proto::WireMessage::kBatch: {
      TheBackup().trails->Validate(m->batch()).IgnoreError();
      for (const proto::WireRecord& w : m->batch().records()) CheckPayload(w);
      break;
    }
    case proto::WireMessage::kRefuse:
      proto::Refuse::Reason_Name(m->refuse().reason());
      break;
    default:
      break;
  }
  return 0;
}
