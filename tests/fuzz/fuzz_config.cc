// Fuzz target: the configuration loader (common/config/config.h). The input is the
// text of a configuration file; config::Parse parses and validates it (and
// builds its error messages, with their line, column and field path) without
// touching the file system. A configuration that loads is then queried the
// way the processes do at start.
//
// `rdfcom keygen` edits the same text (curve::SetPublicKeysInText) with its
// own small scanner; it runs on every configuration that loads.
//
// Promises checked:
//  - a configuration that loads has exactly one PRIMARY and one BACKUP
//    node, at least one protected volume, and absolute node paths;
//  - when SetPublicKeysInText succeeds, the text it returns loads, and to
//    the same configuration except that each node has the key it was given.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/config/config.h"
#include "common/net/curve_keys.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr char kPath[] = "/tmp/fuzz/rdf.textproto";

// What rdfcom keygen does to the text: a distinct valid key for each node.
void CheckKeygenEdit(std::string_view text, const rdf::config::Config& c) {
  static constexpr std::string_view kZ85 =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (c.proto.nodes_size() > static_cast<int>(kZ85.size())) return;
  std::map<std::string, std::string> keys;
  for (int i = 0; i < c.proto.nodes_size(); ++i) {
    keys[c.proto.nodes(i).name()] = std::string(39, 'k') + kZ85[i];
  }
  absl::StatusOr<std::string> edited = rdf::curve::SetPublicKeysInText(absl::string_view(text.data(), text.size()), keys);
  if (!edited.ok()) return;
  absl::StatusOr<rdf::config::Config> again = rdf::config::Parse(*edited, kPath);
  RDF_FUZZ_CHECK(again.ok(), "the text keygen wrote does not load");
  rdf::proto::SystemConfig before = c.proto;
  rdf::proto::SystemConfig after = again->proto;
  RDF_FUZZ_CHECK(before.nodes_size() == after.nodes_size(), "keygen changed the nodes");
  for (int i = 0; i < after.nodes_size(); ++i) {
    RDF_FUZZ_CHECK(after.nodes(i).public_key() == keys[after.nodes(i).name()],
                   "keygen gave a node another node's key, or none");
    before.mutable_nodes(i)->clear_public_key();
    after.mutable_nodes(i)->clear_public_key();
  }
  RDF_FUZZ_CHECK(before.SerializeAsString() == after.SerializeAsString(),
                 "keygen changed more than the public keys");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdf;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<config::Config> c = config::Parse(text, kPath);
  if (!c.ok()) return 0;

  const proto::NodeConfig* primary = c->NodeWithRole(proto::PRIMARY);
  const proto::NodeConfig* backup = c->NodeWithRole(proto::BACKUP);
  RDF_FUZZ_CHECK(primary != nullptr && backup != nullptr && primary != backup,
                 "a loaded configuration lacks a PRIMARY or a BACKUP node");
  RDF_FUZZ_CHECK(!c->ProtectedVolumes().empty(),
                 "a loaded configuration has no protected volume");
  for (const proto::NodeConfig& n : c->proto.nodes()) {
    RDF_FUZZ_CHECK(!n.data_dir().empty() && n.data_dir()[0] == '/' &&
                       !n.key_file().empty() && n.key_file()[0] == '/',
                   "a loaded configuration has a relative node path");
    config::SelectNode(*c, n.name(), proto::PRIMARY).IgnoreError();
    config::AuditDir(n);
    config::ImageTrailDir(n);
    config::EventDir(n);
  }
  config::SelectNode(*c, "", proto::BACKUP).IgnoreError();
  config::SelectNode(*c, "no such node", proto::BACKUP).IgnoreError();
  for (const proto::VolumeConfig* v : c->ProtectedVolumes()) {
    config::VolumeDir(*backup, v->name());
    c->FindVolume(v->name());
    c->IsProtected(v->name(), "LOAD");
    for (const proto::FileConfig& f : v->files()) c->IsProtected(v->name(), f.name());
    for (const std::string& p : v->include()) c->IsProtected(v->name(), p);
    for (const std::string& p : v->exclude()) c->IsProtected(v->name(), p);
  }
  CheckKeygenEdit(text, *c);
  return 0;
}
