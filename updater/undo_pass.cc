#include "updater/undo_pass.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit.pb.h"
#include "common/base/status_macros.h"
#include "common/state/audit_record.h"
#include "common/state/takeover_state.h"

namespace rdf::updater {

absl::StatusOr<std::unique_ptr<UndoPass>> UndoPass::Resume(const UndoPassOptions& options) {
  std::unique_ptr<UndoPass> pass(new UndoPass(options));
  for (const proto::OpenTransaction& o : options.save_point->open()) {
    pass->lost_.insert(o.txid());
    pass->from_asn_ = std::min(pass->from_asn_, o.first_asn());
  }
  const trail::End end = options.trail.limit->Get();
  pass->cursor_ = end.pos;
  // A volume trail that has no end in the save point has nothing to undo.
  pass->done_ = pass->lost_.empty() || end.pos.segment == 0;
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(options.env));
  RDF_ASSIGN_OR_RETURN(auto e, lmdb::GetU64(txn.get(), options.meta, kMetaUndoEpoch));
  RDF_ASSIGN_OR_RETURN(auto seg, lmdb::GetU64(txn.get(), options.meta, kMetaUndoSegment));
  RDF_ASSIGN_OR_RETURN(auto off, lmdb::GetU64(txn.get(), options.meta, kMetaUndoOffset));
  RDF_ASSIGN_OR_RETURN(auto n, lmdb::GetU64(txn.get(), options.meta, kMetaUndoneRecords));
  if (e == options.epoch && seg.has_value() && off.has_value()) {
    pass->cursor_ = {*seg, *off};  // resuming an interrupted pass
    pass->undone_ = n.value_or(0);
  }
  return pass;
}

absl::Status UndoPass::OpenTrail() {
  if (!done_) {
    RDF_ASSIGN_OR_RETURN(back_, trail::TrailReader::Open(opt_.trail));
    RDF_RETURN_IF_ERROR(back_->SeekToPosition(cursor_));
  }
  // What REDO skipped (error 10 or 11) it never applied: nothing to undo.
  RDF_ASSIGN_OR_RETURN(skipped_by_redo_,
                       opt_.volume->SkippedByRedo(from_asn_ == UINT64_MAX ? 0 : from_asn_));
  return absl::OkStatus();
}

absl::StatusOr<bool> UndoPass::UndoBatch() {
  RDF_ASSIGN_OR_RETURN(std::vector<proto::AuditRecord> undo, Scan());
  RDF_RETURN_IF_ERROR(OpenFiles(undo));
  const uint64_t undone_after = undone_ + undo.size();
  RDF_RETURN_IF_ERROR(opt_.volume->Write(
      [&](lmdb::WriteTxn* txn) { return WriteBatch(txn, undo, undone_after); }));
  undone_ = undone_after;
  return done_;
}

absl::StatusOr<std::vector<proto::AuditRecord>> UndoPass::Scan() {
  std::vector<proto::AuditRecord> undo;
  size_t scanned = 0;
  uint64_t bytes = 0;
  while (!done_ && undo.size() < opt_.batch_records && bytes < opt_.batch_bytes &&
         scanned < kScanPerBatch) {
    RDF_ASSIGN_OR_RETURN(std::optional<trail::Record> rec, back_->Prev());
    if (!rec.has_value() || rec->asn < from_asn_) {
      done_ = true;  // every record of a lost transaction has ASN >= its first
      break;
    }
    ++scanned;
    if (rec->type != proto::DATA) continue;
    RDF_ASSIGN_OR_RETURN(AuditHeader h, ScanAuditHeader(rec->payload));
    if (!lost_.contains(h.txid)) continue;
    // What REDO skipped as already in the initial copy was never applied.
    // (A lost transaction has no outcome, so this happens only when the
    // takeover's save point is below the copy's snapshot ASN.)
    if (opt_.copy->Skips(rec->asn, h.txid)) continue;
    if (auto it = skipped_by_redo_.find(rec->asn);
        it != skipped_by_redo_.end() && it->second == h.txid) {
      continue;
    }
    RDF_ASSIGN_OR_RETURN(proto::AuditRecord r, DecodeAuditRecord(*rec));
    bytes += rec->payload.size();
    undo.push_back(std::move(r));
  }
  if (!done_) cursor_ = back_->position();
  return undo;
}

absl::Status UndoPass::OpenFiles(const std::vector<proto::AuditRecord>& undo) {
  for (const proto::AuditRecord& r : undo) {
    if (files_.contains(r.file())) continue;
    absl::StatusOr<MDB_dbi> d = opt_.env->OpenDb(r.file(), false);
    if (!d.ok() && !absl::IsNotFound(d.status())) return d.status();
    if (d.ok()) files_.emplace(r.file(), *d);
  }
  return absl::OkStatus();
}

absl::Status UndoPass::WriteBatch(lmdb::WriteTxn* txn, const std::vector<proto::AuditRecord>& undo,
                                  uint64_t undone_after) {
  for (const proto::AuditRecord& r : undo) {
    auto it = files_.find(r.file());
    if (it == files_.end()) continue;  // the file was purged by a later DDL
    // The before image, or no key when there was none (an insert).
    if (r.has_before()) {
      RDF_RETURN_IF_ERROR(txn->Put(it->second, r.key(), r.before()));
    } else {
      absl::Status s = txn->Delete(it->second, r.key());
      if (!s.ok() && !absl::IsNotFound(s)) return s;
    }
  }
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, opt_.meta, kMetaUndoEpoch, opt_.epoch));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, opt_.meta, kMetaUndoSegment, cursor_.segment));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, opt_.meta, kMetaUndoOffset, cursor_.offset));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, opt_.meta, kMetaUndoneRecords, undone_after));
  if (!done_) return absl::OkStatus();
  // A tmf opened here as the new primary starts transaction ids above every
  // id the backup has seen (tmf keeps the next id under this key).
  RDF_ASSIGN_OR_RETURN(std::optional<uint64_t> have, lmdb::GetU64(txn, opt_.meta, kMetaMaxTxid));
  const uint64_t next = std::max(opt_.save_point->max_txid() + 1, have.value_or(0));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, opt_.meta, kMetaMaxTxid, next));
  return lmdb::PutU64(txn, opt_.meta, kMetaDoneEpoch, opt_.epoch);
}

}  // namespace rdf::updater
