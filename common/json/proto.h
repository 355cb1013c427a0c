// Protobuf messages as JSON, through the one writer (writer.h), by
// reflection. Replaces protobuf's MessageToJsonString, whose proto3 mapping
// quotes 64-bit integers.
//
// A message is an object with one key per field, named as in the .proto, in
// the order the .proto declares them:
//  - a field without presence (proto3 scalar, repeated, map) is always
//    written, at its default too: 0, "", false, [], {};
//  - a field with presence (a message field, a proto3 `optional`, a oneof
//    member) that is not set is left out, or written as null with
//    `unset_as_null` (rdf-trail-dump, whose readers look for every key);
//  - integers are JSON numbers, 64-bit ones too; enums are their value's
//    name (the number when the value is unknown); bytes are lowercase hex
//    strings; maps are objects sorted by key.
#ifndef RDF_COMMON_JSON_PROTO_H_
#define RDF_COMMON_JSON_PROTO_H_

#include <string>

#include "common/json/writer.h"
#include "google/protobuf/message.h"

namespace rdf::json {

struct MessageOptions {
  // An unset field with presence: null, instead of left out.
  bool unset_as_null = false;
};

// Writes the fields of `m` as keys and values into the object `w` has open.
void WriteFields(const google::protobuf::Message& m, const MessageOptions& o, Writer* w);

// `m` as one JSON object (no newline).
std::string MessageToJson(const google::protobuf::Message& m, const MessageOptions& o = {});

}  // namespace rdf::json

#endif  // RDF_COMMON_JSON_PROTO_H_
