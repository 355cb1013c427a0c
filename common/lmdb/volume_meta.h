// Keys of the bookkeeping records in a backup volume's __meta database
// (lmdb::kMetaDb), shared by the updater that writes them and the readers
// that need them (purger, takeover, benchmarks).
#ifndef RDF_COMMON_LMDB_VOLUME_META_H_
#define RDF_COMMON_LMDB_VOLUME_META_H_

namespace rdf {

// The updater's restart point, written in the same LMDB transaction as each
// batch: image-trail position, last ASN applied, and the trail records,
// payload bytes and primary time up to it (backlog and RTD).
inline constexpr char kMetaRestartSegment[] = "updater_restart_segment";
inline constexpr char kMetaRestartOffset[] = "updater_restart_offset";
inline constexpr char kMetaAppliedAsn[] = "updater_applied_asn";
inline constexpr char kMetaAppliedRecords[] = "updater_applied_records";
inline constexpr char kMetaAppliedBytes[] = "updater_applied_bytes";
inline constexpr char kMetaAppliedTime[] = "updater_applied_time_us";

// On the primary, tmf keeps in each volume's __meta the commit ASN through
// which the volume holds committed work (tmf/store.cc kAppliedAsn, same
// string); `rdfcom verify` reports it (monitor/verify_scan.h).
inline constexpr char kMetaTmfAppliedAsn[] = "applied_asn";
// Where tmf's recovery scan of the audit starts for the volume (tmf/store.cc
// kRecoveryAsn). `rdfcom initialize` removes both from a volume copied to the
// backup: they count the primary's audit, which a promoted backup does not
// have.
inline constexpr char kMetaTmfRecoveryAsn[] = "recovery_asn";

}  // namespace rdf

#endif  // RDF_COMMON_LMDB_VOLUME_META_H_
