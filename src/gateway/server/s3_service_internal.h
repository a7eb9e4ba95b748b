// What the S3 service's operations share across its source files (s3_service.cc, the form upload
// in post_object_handler.cc, the admin API in admin_api.cc): the state of one request and a few
// helpers. Not part of the service's interface.
// Thread-safety: a Request belongs to its connection's thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/access.h"
#include "gateway/s3_errors.h"
#include "gateway/s3_request.h"
#include "gateway/server/http.h"
#include "gateway/server/s3_service.h"
#include "gateway/sigv4.h"
#include "meta/types.h"
#include "object/object_store.h"

namespace cairn::gateway::server {

struct S3Service::Request {
  explicit Request(HttpExchange& e) : ex(e) {}
  HttpExchange& ex;
  std::string request_id;
  S3Target target;
  S3Op op = S3Op::kUnknown;
  AuthResult auth;
  Principal principal;  // anonymous until the signature names a key
  // The bucket the request names, when it exists (read once, before authentication). Every
  // operation but CreateBucket runs only when it does (Dispatch answers otherwise).
  std::optional<meta::BucketInfo> bucket_info;
  // The object, for operations on an object's data or ACL (read for authorization; present when
  // the operation runs).
  std::optional<meta::ObjectRecord> object;
  // The source of a copy, as authorized; the copy reads exactly this version.
  std::optional<meta::ObjectRecord> copy_source;
  // The multipart upload an upload operation names (without its parts), as authorized.
  std::optional<meta::MultipartUpload> upload;
  // A form upload's fields (lowercase names), once read: the policy's condition keys come from
  // them instead of the request's headers.
  const std::map<std::string, std::string>* form_fields = nullptr;
  // Access-Control-* headers for a browser request that a CORS rule matched; every response
  // to it carries them, errors included, so the page can read what went wrong.
  std::vector<std::pair<std::string, std::string>> cors_headers;
  std::string resource;
  int status = 0;

  const std::string& bucket() const { return target.bucket; }
  const std::string& key() const { return target.key; }
  std::optional<std::string> Query(std::string_view name) const { return target.query.Get(name); }

  ResponseHead Head(int code) const {
    ResponseHead h;
    h.status = code;
    h.Add("x-amz-request-id", request_id);
    h.Add("x-amz-id-2", request_id);
    for (const auto& [name, value] : cors_headers) h.Add(name, value);
    return h;
  }
};

namespace internal {

int64_t NowMillis();
// "\"<etag>\"".
std::string Quoted(std::string_view etag);
// Sets the object headers named by `fields` (lowercase names: content-type, content-encoding
// without aws-chunked, content-language, content-disposition, cache-control, expires,
// x-amz-storage-class, x-amz-meta-*), for PUT headers and form fields alike. The S3 error when a
// storage class is unknown or the user metadata is over 2 KB.
std::optional<S3Error> ObjectHeadersFrom(const std::vector<std::pair<std::string, std::string>>& fields,
                                         meta::ObjectHeaders* h);
// Hands all of `data` to the writer, waiting while its window is full. Fails when the writer
// stopped taking bytes (a chunk failed; Finish reports why).
Status WriteAll(object::ObjectWriter* writer, std::span<const std::byte> data);

}  // namespace internal

}  // namespace cairn::gateway::server
