// The one JSON writer of rdf: status files, `rdfcom status --json`, event
// lines, `rdfcom verify --json`, takeover and initial-copy reports, the
// updater's exception log and rdf-trail-dump all print through it
// (proto.h walks protobuf messages with it).
//
// Output is compact (no white space) and deterministic:
//  - integers, 64-bit ones included, are JSON numbers, never strings;
//  - doubles print the shortest text that reads back as the same double;
//    NaN and infinities, which JSON cannot write, print null;
//  - keys and values appear in the order they are written;
//  - strings: `"` and `\` are backslash-escaped, \b \f \n \r \t take their
//    short forms, every other byte below 0x20 is \u00xx (lowercase hex).
//    Valid UTF-8 is copied as it is; each byte that does not belong to a
//    valid UTF-8 sequence (stray continuation byte, truncated or overlong
//    sequence, surrogate, above U+10FFFF) becomes \ufffd, so the output is
//    always valid UTF-8 and valid JSON.
#ifndef RDF_COMMON_JSON_WRITER_H_
#define RDF_COMMON_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"

namespace rdf::json {

// Appends `s` to `*out` as a JSON string literal, quotes included.
void AppendString(absl::string_view s, std::string* out);

// Builds one JSON text. Inside an object, call Key before each value; inside
// an array (or at the top), write values only. Commas are the writer's job.
// REQUIRES: Begin/End calls nest; str() is read once every Begin has its End.
// Not thread-safe: one writer per text.
class Writer {
 public:
  Writer& BeginObject();
  Writer& EndObject();
  Writer& BeginArray();
  Writer& EndArray();
  Writer& Key(absl::string_view key);

  Writer& String(absl::string_view v);
  Writer& Int(int64_t v);
  Writer& Uint(uint64_t v);
  Writer& Double(double v);
  Writer& Bool(bool v);
  Writer& Null();

  // The value by its C++ type: bool, any integer, float or double, or
  // anything that converts to a string view (a string literal writes a JSON
  // string, never a bool).
  template <typename T>
  Writer& Value(const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      return Bool(v);
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      return Int(v);
    } else if constexpr (std::is_integral_v<T>) {
      return Uint(v);
    } else if constexpr (std::is_floating_point_v<T>) {
      return Double(v);
    } else {
      return String(absl::string_view(v));
    }
  }
  // Key(key).Value(v).
  template <typename T>
  Writer& Field(absl::string_view key, const T& v) {
    return Key(key).Value(v);
  }

  const std::string& str() const { return out_; }

 private:
  // Writes the comma that separates this value or key from the one before.
  void Separate();
  Writer& Open(char bracket);
  Writer& Close(char bracket);

  std::string out_;
  // One entry per open object or array: true until its first member.
  std::vector<bool> empty_;
  bool after_key_ = false;
};

}  // namespace rdf::json

#endif  // RDF_COMMON_JSON_WRITER_H_
