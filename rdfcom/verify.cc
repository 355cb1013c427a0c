#include "rdfcom/verify.h"

#include <algorithm>
#include <set>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/event_catalog.h"
#include "common/status_macros.h"

namespace rdf::rdfcom {

namespace {

constexpr char kOnlyOnPrimary[] = "only_on_primary";
constexpr char kOnlyOnBackup[] = "only_on_backup";
constexpr char kValuesDiffer[] = "values_differ";

struct FileId {
  std::string volume;
  std::string file;
};

struct Difference {
  std::string key;  // raw bytes
  const char* kind;
};

struct FileResult {
  FileId id;
  uint64_t primary_records = 0;
  uint64_t backup_records = 0;
  uint64_t difference_count = 0;
  std::vector<Difference> listed;  // the first differences, in key order
  bool rechecked = false;
  bool equal() const { return difference_count == 0; }
};

// One node as verify talks to it.
class Side {
 public:
  Side(const VerifyOptions& o, const proto::NodeConfig* node) : o_(o), node_(node) {}

  const std::string& name() const { return node_->name(); }

  // Sends `req` (version and operator filled in); a failed call or a reply
  // with ok = false is an error naming the node.
  absl::StatusOr<proto::ControlReply> Call(proto::ControlRequest req) const {
    req.set_version(proto::CONTROL_VERSION_1);
    req.set_operator_(o_.operator_name);
    absl::StatusOr<proto::ControlReply> r = o_.call(*node_, req);
    if (!r.ok()) return Annotate(r.status(), absl::StrCat("verify: node ", name()));
    if (!r->ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("verify: node ", name(), " refused: ", r->error()));
    }
    return r;
  }

  absl::StatusOr<proto::ControlReply> ListFiles() const {
    proto::ControlRequest req;
    req.set_command(proto::ControlRequest::VERIFY_FILES);
    return Call(std::move(req));
  }

  uint32_t page_limit() const { return o_.page_limit; }

 private:
  const VerifyOptions& o_;
  const proto::NodeConfig* node_;
};

// One file of one node, read page by page in key order.
class PageStream {
 public:
  PageStream(const Side* side, const FileId& id) : side_(side), id_(id) {}

  // The current entry; nullptr once the file is exhausted. The pointer is
  // valid until the next Advance().
  absl::StatusOr<const proto::VerifyEntry*> Head() {
    while (pos_ >= page_.entries_size()) {
      if (started_ && !page_.more()) return nullptr;
      RDF_RETURN_IF_ERROR(FetchNextPage());
    }
    return &page_.entries(pos_);
  }
  void Advance() { ++pos_; }

 private:
  absl::Status FetchNextPage() {
    proto::ControlRequest req;
    req.set_command(proto::ControlRequest::VERIFY_SCAN);
    req.set_volume(id_.volume);
    req.set_file(id_.file);
    req.set_from_start(!started_);
    req.set_after_key(last_key_);
    req.set_limit(side_->page_limit());
    RDF_ASSIGN_OR_RETURN(page_, side_->Call(std::move(req)));
    started_ = true;
    pos_ = 0;
    if (page_.more() && page_.entries_size() == 0) {
      return absl::DataLossError(absl::StrCat("verify: node ", side_->name(),
                                              " sent an empty page with more to follow for ",
                                              id_.volume, " ", id_.file));
    }
    // The merge relies on strictly increasing keys.
    for (const proto::VerifyEntry& e : page_.entries()) {
      if (!last_key_.empty() && e.key() <= last_key_) {
        return absl::DataLossError(absl::StrCat("verify: node ", side_->name(),
                                                " sent keys out of order for ", id_.volume, " ",
                                                id_.file, " at ", EscapeKey(e.key())));
      }
      last_key_ = e.key();
    }
    return absl::OkStatus();
  }

  const Side* side_;
  FileId id_;
  proto::ControlReply page_;
  int pos_ = 0;
  bool started_ = false;
  std::string last_key_;  // of the last page fetched (LMDB keys are never empty)
};

// Merges the two nodes' streams of one file (a state machine over the two
// heads: the smaller key is the one missing on the other side).
absl::StatusOr<FileResult> CompareFile(const Side& primary, const Side& backup,
                                       const FileId& id, size_t max_listed) {
  FileResult r;
  r.id = id;
  PageStream p(&primary, id), b(&backup, id);
  auto note = [&](const std::string& key, const char* kind) {
    ++r.difference_count;
    if (r.listed.size() < max_listed) r.listed.push_back({key, kind});
  };
  for (;;) {
    RDF_ASSIGN_OR_RETURN(const proto::VerifyEntry* pe, p.Head());
    RDF_ASSIGN_OR_RETURN(const proto::VerifyEntry* be, b.Head());
    if (pe == nullptr && be == nullptr) break;
    // std::string compares bytes as unsigned, like LMDB's default order.
    const int c = pe == nullptr ? 1 : be == nullptr ? -1 : pe->key().compare(be->key());
    if (c <= 0) ++r.primary_records;
    if (c >= 0) ++r.backup_records;
    if (c < 0) {
      note(pe->key(), kOnlyOnPrimary);
    } else if (c > 0) {
      note(be->key(), kOnlyOnBackup);
    } else if (pe->value_digest() != be->value_digest()) {
      note(pe->key(), kValuesDiffer);
    }
    if (c <= 0) p.Advance();
    if (c >= 0) b.Advance();
  }
  return r;
}

// The union of both nodes' file lists: volumes in configuration order
// (others after, by name), then files by name.
std::vector<FileId> UnionOfFiles(const config::Config& config, const proto::ControlReply& a,
                                 const proto::ControlReply& b) {
  std::map<std::string, size_t> volume_rank;
  for (const proto::VolumeConfig& v : config.proto.volumes()) {
    volume_rank.emplace(v.name(), volume_rank.size());
  }
  std::map<std::tuple<size_t, std::string, std::string>, FileId> files;
  for (const proto::ControlReply* reply : {&a, &b}) {
    for (const proto::VerifyFile& f : reply->files()) {
      auto it = volume_rank.find(f.volume());
      size_t rank = it == volume_rank.end() ? volume_rank.size() : it->second;
      files.emplace(std::make_tuple(rank, f.volume(), f.file()), FileId{f.volume(), f.file()});
    }
  }
  std::vector<FileId> out;
  for (auto& [k, id] : files) out.push_back(std::move(id));
  return out;
}

const char* KindText(const char* kind) {
  if (kind == kOnlyOnPrimary) return "only on primary";
  if (kind == kOnlyOnBackup) return "only on backup";
  return "values differ";
}

// A JSON string literal (quotes included) of `s`.
std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", static_cast<unsigned>(c));
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

void PrintText(const std::vector<FileResult>& results, const VerifySummary& s,
               absl::Duration recheck_delay, std::ostream& out) {
  out << "verify: primary applied ASN " << s.primary_applied_asn << ", backup applied ASN "
      << s.backup_applied_asn << "\n";
  for (const FileResult& r : results) {
    out << r.id.volume << " " << r.id.file << ": primary " << r.primary_records
        << " records, backup " << r.backup_records << " records, ";
    if (r.equal()) {
      out << "equal";
    } else {
      out << "DIFFERENT (" << r.difference_count
          << (r.difference_count == 1 ? " key" : " keys") << ")";
    }
    if (r.rechecked) out << " (rechecked after " << absl::FormatDuration(recheck_delay) << ")";
    out << "\n";
    for (const Difference& d : r.listed) {
      out << "  " << KindText(d.kind) << ": " << EscapeKey(d.key) << "\n";
    }
    if (r.difference_count > r.listed.size()) {
      out << "  ... and " << r.difference_count - r.listed.size() << " more\n";
    }
  }
  if (s.equal) {
    out << "verify: " << s.files << (s.files == 1 ? " file, " : " files, ")
        << s.primary_records << " records each side, equal\n";
  } else {
    out << "verify: " << s.differing_files << " of " << s.files << " files differ ("
        << s.primary_records << " records on primary, " << s.backup_records
        << " on backup)\n";
  }
}

void PrintJson(const std::vector<FileResult>& results, const VerifySummary& s,
               std::ostream& out) {
  out << "{\"equal\":" << (s.equal ? "true" : "false")
      << ",\"primary_applied_asn\":" << s.primary_applied_asn
      << ",\"backup_applied_asn\":" << s.backup_applied_asn << ",\"files\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    const FileResult& r = results[i];
    out << (i == 0 ? "" : ",") << "{\"volume\":" << JsonString(r.id.volume)
        << ",\"file\":" << JsonString(r.id.file) << ",\"primary_records\":" << r.primary_records
        << ",\"backup_records\":" << r.backup_records
        << ",\"equal\":" << (r.equal() ? "true" : "false")
        << ",\"difference_count\":" << r.difference_count
        << ",\"rechecked\":" << (r.rechecked ? "true" : "false") << ",\"differences\":[";
    for (size_t j = 0; j < r.listed.size(); ++j) {
      out << (j == 0 ? "" : ",") << "{\"key\":" << JsonString(EscapeKey(r.listed[j].key))
          << ",\"kind\":\"" << r.listed[j].kind << "\"}";
    }
    out << "]}";
  }
  out << "]}\n";
}

}  // namespace

absl::Status LogVerifyResult(const VerifyOptions& o, const VerifySummary& s) {
  const proto::NodeConfig* backup = o.config->NodeWithRole(proto::BACKUP);
  if (backup == nullptr) return absl::InvalidArgumentError("no BACKUP node");
  proto::ControlRequest req;
  req.set_command(proto::ControlRequest::VERIFY_RESULT);
  req.set_operator_(o.operator_name);
  auto add = [&req](uint32_t number) {
    proto::Event* e = req.add_events();
    e->set_number(number);
    return e->mutable_fields();
  };
  if (s.equal) {
    auto* f = add(events::kVerifyMatch);
    (*f)["volumes"] = absl::StrCat(s.volumes);
    (*f)["files"] = absl::StrCat(s.files);
    (*f)["records"] = absl::StrCat(s.primary_records);
  }
  for (const VerifyDifferingFile& d : s.differing) {
    auto* f = add(events::kVerifyMismatch);
    (*f)["volume"] = d.volume;
    (*f)["file"] = d.file;
    (*f)["differences"] = absl::StrCat(d.differences);
    (*f)["first_key"] = d.first_key;
  }
  return o.call(*backup, req).status();
}

std::string EscapeKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (unsigned char c : key) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c <= 0x7e) {
      out += static_cast<char>(c);
    } else {
      out += absl::StrFormat("\\x%02x", static_cast<unsigned>(c));
    }
  }
  return out;
}

absl::StatusOr<VerifySummary> RunVerify(const VerifyOptions& o, std::ostream& out) {
  const proto::NodeConfig* pn = o.config->NodeWithRole(proto::PRIMARY);
  const proto::NodeConfig* bn = o.config->NodeWithRole(proto::BACKUP);
  if (pn == nullptr || bn == nullptr) {
    return absl::FailedPreconditionError("verify: the configuration needs a primary and a backup");
  }
  const Side primary(o, pn), backup(o, bn);
  const size_t max_listed = static_cast<size_t>(std::max(o.max_listed_differences, 0));
  RDF_ASSIGN_OR_RETURN(proto::ControlReply pf, primary.ListFiles());
  RDF_ASSIGN_OR_RETURN(proto::ControlReply bf, backup.ListFiles());

  std::vector<FileResult> results;
  bool any_differ = false;
  for (const FileId& id : UnionOfFiles(*o.config, pf, bf)) {
    RDF_ASSIGN_OR_RETURN(FileResult r, CompareFile(primary, backup, id, max_listed));
    any_differ |= !r.equal();
    results.push_back(std::move(r));
  }
  if (any_differ) {
    // The pipeline may have been catching up: look at those files once more.
    o.clock->SleepMicros(absl::ToInt64Microseconds(o.recheck_delay));
    RDF_ASSIGN_OR_RETURN(pf, primary.ListFiles());
    RDF_ASSIGN_OR_RETURN(bf, backup.ListFiles());
    for (FileResult& r : results) {
      if (r.equal()) continue;
      RDF_ASSIGN_OR_RETURN(r, CompareFile(primary, backup, r.id, max_listed));
      r.rechecked = true;
    }
  }

  VerifySummary s;
  s.primary_applied_asn = pf.applied_asn();
  s.backup_applied_asn = bf.applied_asn();
  s.files = results.size();
  std::set<std::string> volumes;
  for (const FileResult& r : results) {
    volumes.insert(r.id.volume);
    if (!r.equal()) {
      s.differing.push_back({r.id.volume, r.id.file, r.difference_count,
                             r.listed.empty() ? "" : EscapeKey(r.listed.front().key)});
    }
    s.differing_files += !r.equal();
    s.primary_records += r.primary_records;
    s.backup_records += r.backup_records;
  }
  s.volumes = volumes.size();
  s.equal = s.differing_files == 0;
  if (o.json) {
    PrintJson(results, s, out);
  } else {
    PrintText(results, s, o.recheck_delay, out);
  }
  return s;
}

}  // namespace rdf::rdfcom
