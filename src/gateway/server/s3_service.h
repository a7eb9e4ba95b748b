// The S3 operations: authenticate a request, run it against the object and metadata layers, and
// answer as Amazon S3 documents it (headers, XML bodies, error codes).
//
// One entry point, Handle(exchange), called by a connection for each request. It never throws
// and always leaves the exchange answered (or the connection marked for closing when the peer
// went away mid-request). Every refusal is an S3 error document from the one error table
// (gateway/s3_errors.h).
//
// Streaming: PUT bodies go through ObjectWriter piece by piece, hashed (MD5 for the ETag,
// SHA-256 when the payload is signed) and CRC'd as they arrive; the record is committed only
// after the body verified, so a bad digest or a truncated body leaves nothing visible. GET
// bodies are sent chunk by chunk from the engine's files with sendfile.
//
// Thread-safety: Handle may be called concurrently from any number of connection threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "gateway/s3_errors.h"
#include "gateway/s3_request.h"
#include "gateway/server/http.h"
#include "gateway/sigv4.h"
#include "meta/meta_store.h"
#include "object/object_store.h"

namespace cairn::gateway::server {

struct S3ServiceOptions {
  std::string region = "us-east-1";
  // Base domains for virtual-host addressing ("<bucket>.<domain>").
  std::vector<std::string> domains = {"localhost"};
  // Canonical id and display name of the owner (the root user until users exist).
  std::string owner_id;
  std::string owner_name = "root";
  // The largest single PUT S3 accepts: 5 GiB.
  uint64_t max_put_size = 5ull << 30;
  // Parts other than the last must hold at least this much (S3: 5 MiB).
  uint64_t min_part_size = 5ull << 20;
  // Clock for SigV4 (unix seconds); tests replace it.
  std::function<int64_t()> now = nullptr;
};

class S3Service {
 public:
  S3Service(object::ObjectStore* objects, meta::MetaStore* meta, SecretLookup secrets, S3ServiceOptions options);
  ~S3Service();

  // Serves one request. REQUIRES: the request head was parsed into the exchange. A body the
  // operation did not read is left for the connection to drain or close on.
  void Handle(HttpExchange& exchange);

  const S3ServiceOptions& options() const { return options_; }

 private:
  struct Request;
  struct Metrics;

  void Dispatch(Request& r);
  void SendError(Request& r, const S3Error& error);
  void SendXml(Request& r, int status, std::string body);

  // Buckets
  void ListBuckets(Request& r);
  void CreateBucket(Request& r);
  void DeleteBucket(Request& r);
  void HeadBucket(Request& r);
  void GetBucketLocation(Request& r);
  void GetBucketVersioning(Request& r);
  void GetAcl(Request& r);
  void GetObjectTagging(Request& r);
  void ListObjects(Request& r, int version);
  void ListObjectVersions(Request& r);
  void ListMultipartUploads(Request& r);
  void DeleteObjects(Request& r);
  // Objects
  void PutObject(Request& r);
  void CopyObject(Request& r);
  void GetObject(Request& r, bool head);
  void DeleteObject(Request& r);
  // Multipart
  void CreateMultipartUpload(Request& r);
  void UploadPart(Request& r, bool copy);
  void CompleteMultipartUpload(Request& r);
  void AbortMultipartUpload(Request& r);
  void ListParts(Request& r);

  object::ObjectStore* objects_;
  meta::MetaStore* meta_;
  SecretLookup secrets_;
  S3ServiceOptions options_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace cairn::gateway::server
