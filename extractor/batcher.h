// Batcher: the extractor's batching, apart from its session. Audit trail
// records go in, in ASN order; numbered proto::Batch messages come out
// (docs/protocol.md, "Batches"). It keeps the protected records, packs them
// up to batch_bytes, cuts a record larger than a batch into fragments that
// travel alone, and numbers the batches (seq, from_asn, read_through_asn).
// No clock, no socket, no file: when to read, wait and send is the
// session's (extractor.cc).
//
//   Batcher b({.batch_bytes = 256 << 10, .is_protected = ...});
//   b.Restart(welcome.restart_asn() - 1, welcome.next_seq());
//   for each batch:
//     b.Begin();
//     while (!b.full() && (rec = reader->Next()) has a record)
//       RDF_RETURN_IF_ERROR(b.Add(std::move(*rec)));
//     if (!b.empty()) Send(b.Take(end).batch);
//
// Between a Take and the next Begin the open batch is empty and
// read_through() is below every record not yet in a taken batch, so a
// heartbeat may carry it.
//
// Not thread-safe.
#ifndef RDF_EXTRACTOR_BATCHER_H_
#define RDF_EXTRACTOR_BATCHER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "audit.pb.h"
#include "common/trail/durable_end.h"
#include "common/trail/reader.h"
#include "wire.pb.h"

namespace rdf::extractor {

struct BatcherOptions {
  // The records of one batch stay within this many bytes (payload plus
  // kRecordOverhead each). REQUIRES: > kRecordOverhead.
  size_t batch_bytes = 256 << 10;
  // Whether a DATA or DDL record of (volume, file) is shipped.
  std::function<bool(absl::string_view volume, absl::string_view file)> is_protected;
};

class Batcher {
 public:
  // WireRecord fields around the payload, counted against batch_bytes.
  static constexpr size_t kRecordOverhead = 32;

  explicit Batcher(BatcherOptions options);

  // Starts a session: the next record must be `read_through` + 1, the
  // next batch is numbered `next_seq` and continues from `read_through`.
  // Drops the open batch and any record not wholly sent.
  void Restart(uint64_t read_through, uint64_t next_seq);

  // Opens the next batch: a record held back from the last one goes first
  // (whole, or its next fragment). REQUIRES: empty().
  void Begin();

  // Takes the next record of the trail. REQUIRES: !full(), after Begin.
  //   kNotFound  its ASN is not read_through() + 1 (audit is missing);
  //   kDataLoss  its payload is not an audit record.
  // Either way nothing changes.
  absl::Status Add(trail::Record rec);

  // The open batch takes no more records: it is at batch_bytes, or the
  // next record (held back for the next batch) does not fit, or it holds a
  // fragment.
  bool full() const { return full_; }
  // The open batch has no records.
  bool empty() const { return batch_.records().empty(); }

  struct Output {
    proto::Batch batch;
    size_t bytes = 0;         // as counted against batch_bytes
    int64_t newest_time_us = 0;  // audit time of its newest whole record; 0: none
  };
  // Closes the open batch with the next seq and the audit end. The next
  // batch starts at Begin. REQUIRES: !empty().
  Output Take(const trail::End& audit_end);

  // The ASN through which the audit is read and either batched or
  // skipped; below a record until its last fragment is batched.
  uint64_t read_through() const { return read_through_; }
  // The seq the next batch gets.
  uint64_t next_seq() const { return next_seq_; }
  // For a heartbeat: the from_asn it carries, which its read_through (this
  // read_through()) becomes for the next batch or heartbeat.
  uint64_t NoteHeartbeat();

 private:
  // A protected record not yet wholly in a batch.
  struct Held {
    trail::Record rec;
    proto::RecordType type;
    uint64_t txid = 0;
    std::string volume;
    int64_t time_us = 0;
    size_t sent = 0;  // payload bytes already in fragments
  };
  // Moves held_ into the open batch: whole, or its next fragment; sets
  // full_ when the batch can take no more.
  void Pack();
  proto::WireRecord* AddWireRecord();

  BatcherOptions opt_;
  uint64_t read_through_ = 0;
  uint64_t told_asn_ = 0;  // read_through of the last batch or heartbeat
  uint64_t next_seq_ = 1;
  proto::Batch batch_;
  size_t bytes_ = 0;
  int64_t newest_time_us_ = 0;
  bool full_ = false;
  std::optional<Held> held_;
};

}  // namespace rdf::extractor

#endif  // RDF_EXTRACTOR_BATCHER_H_
