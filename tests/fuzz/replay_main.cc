// Replays inputs through a fuzz target without libFuzzer, so that the normal
// (g++) build runs the kept corpus as a test: every file named on the command
// line, and every file in every folder named there (not recursive), in name
// order. A crash or a failed check aborts the process (and fails the test);
// otherwise it prints how many inputs ran and exits 0. As libFuzzer's
// -malloc_limit_mb (scripts/fuzz), one allocation above kMallocLimit is a
// failure: fuzz inputs are a few KiB, so memory sized by a damaged length
// field is a bug even where it is freed again.
//   replay_<target> PATH...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// Keep in step with -malloc_limit_mb in scripts/fuzz. (Under AddressSanitizer,
// which owns operator new, the limit is libFuzzer's or ASan's business.)
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RDF_REPLAY_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RDF_REPLAY_ASAN 1
#endif
#ifndef RDF_REPLAY_ASAN
constexpr size_t kMallocLimit = size_t{128} << 20;

void* operator new(size_t n) {
  if (n > kMallocLimit) {
    std::fprintf(stderr, "replay: allocation of %zu bytes exceeds the limit of %zu\n", n,
                 kMallocLimit);
    std::abort();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#endif

namespace {

namespace fs = std::filesystem;

bool ReadFile(const fs::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    std::fprintf(stderr,
                 "usage: %s PATH...\n"
                 "Runs the fuzz target on every file given, and on every file in every\n"
                 "folder given (the kept corpus: tests/fuzz/corpus/<target>/).\n",
                 argv[0]);
    return argc < 2 ? 2 : 0;
  }
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const fs::directory_entry& e : fs::directory_iterator(arg, ec)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      if (ec) {
        std::fprintf(stderr, "%s: cannot list: %s\n", argv[i], ec.message().c_str());
        return 2;
      }
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "%s: no such file or folder\n", argv[i]);
      return 2;
    }
  }
  for (const fs::path& p : inputs) {
    std::string bytes;
    if (!ReadFile(p, &bytes)) {
      std::fprintf(stderr, "%s: cannot read\n", p.c_str());
      return 2;
    }
    std::fprintf(stderr, "replay %s (%zu bytes)\n", p.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replayed %zu inputs\n", inputs.size());
  return inputs.empty() ? 1 : 0;
}
