// rdf-receiver: the backup node's receiver (see receiver.h).
#include <csignal>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/config.h"
#include "receiver/receiver.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace rdf;
  std::string config_path, node;
  cli::Parser p("rdf-receiver --config FILE [--node NAME]",
                "Receives audit from the extractor over ZeroMQ/CURVE and writes the\n"
                "backup's image trails with save points. Stops on SIGTERM or SIGINT.");
  p.AddString("config", &config_path, "system configuration (text proto)");
  p.AddString("node", &node, "backup node name (default: the node with role BACKUP)");
  p.Require("config");
  std::vector<std::string> rest = p.Parse(argc, argv);
  if (!rest.empty()) p.Fail(absl::StrCat("unexpected argument '", rest[0], "'"));
  absl::StatusOr<config::Config> cfg = config::Load(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "rdf-receiver: %s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<const proto::NodeConfig*> n = config::SelectNode(*cfg, node, proto::BACKUP);
  if (!n.ok()) {
    std::fprintf(stderr, "rdf-receiver: %s\n", std::string(n.status().message()).c_str());
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  receiver::ReceiverOptions o;
  o.config = &*cfg;
  o.node = (*n)->name();
  absl::StatusOr<std::unique_ptr<receiver::Receiver>> r = receiver::Receiver::Open(o);
  if (!r.ok()) {
    std::fprintf(stderr, "rdf-receiver: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  absl::Status s = (*r)->Run(&g_stop);
  if (!s.ok()) {
    std::fprintf(stderr, "rdf-receiver: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
