// Tests for common/config: defaults, TOML parsing and its errors, byte sizes, CLI11 flags, and
// the TOML rendering.
#include "common/config.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace cairn {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = kKiB * 1024;
constexpr uint64_t kGiB = kMiB * 1024;
constexpr uint64_t kTiB = kGiB * 1024;

// Parses a document that is expected to fail and returns the error.
Status ParseError(std::string_view toml) {
  Result<Config> r = ParseConfig(toml);
  return r.ok() ? Status::OK() : r.status();
}

// Runs CLI11 over `args` (without the program name) with the engine flags bound to `config`.
// Returns the CLI11 error text, empty on success.
std::string ParseFlags(EngineConfig& config, std::vector<std::string> args) {
  CLI::App app("test");
  AddEngineFlags(app, config);
  std::vector<const char*> argv = {"cairn"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return {};
}

TEST(ConfigTest, DefaultsMatchTheHeader) {
  Config c;
  EXPECT_EQ(c.engine.segment_size, 256 * kMiB);
  EXPECT_TRUE(c.engine.direct_io);
  EXPECT_FALSE(c.engine.direct_reads);
  EXPECT_EQ(c.engine.io_backend, "auto");
  EXPECT_EQ(c.engine.max_batch_bytes, 16 * kMiB);
  EXPECT_EQ(c.engine.checkpoint_interval_bytes, kGiB);
  EXPECT_DOUBLE_EQ(c.engine.compaction_dead_ratio, 0.5);
  EXPECT_EQ(c.engine.compaction_interval_ms, 1000u);
  EXPECT_TRUE(c.engine.background_compaction);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.file, "");
  EXPECT_EQ(c.server.listen, "127.0.0.1:9000");
  EXPECT_EQ(c.server.data_dir, "./data");
  EXPECT_OK(ValidateConfig(c));
}

TEST(ConfigTest, EmptyDocumentGivesDefaults) {
  Result<Config> r = ParseConfig("");
  ASSERT_OK(r);
  EXPECT_EQ(ConfigToToml(*r), ConfigToToml(Config{}));
}

TEST(ConfigTest, ParsesEveryField) {
  Result<Config> r = ParseConfig(R"(
[engine]
segment_size = "64MiB"
direct_io = false
direct_reads = true
io_backend = "psync"
max_batch_bytes = 1048576
checkpoint_interval_bytes = "2GiB"
compaction_dead_ratio = 0.25
compaction_interval_ms = 50
background_compaction = false

[log]
level = "debug"
file = "/var/log/cairn.log"

[server]
listen = "0.0.0.0:9100"
data_dir = "/srv/cairn"
)");
  ASSERT_OK(r);
  const Config& c = *r;
  EXPECT_EQ(c.engine.segment_size, 64 * kMiB);
  EXPECT_FALSE(c.engine.direct_io);
  EXPECT_TRUE(c.engine.direct_reads);
  EXPECT_EQ(c.engine.io_backend, "psync");
  EXPECT_EQ(c.engine.max_batch_bytes, kMiB);
  EXPECT_EQ(c.engine.checkpoint_interval_bytes, 2 * kGiB);
  EXPECT_DOUBLE_EQ(c.engine.compaction_dead_ratio, 0.25);
  EXPECT_EQ(c.engine.compaction_interval_ms, 50u);
  EXPECT_FALSE(c.engine.background_compaction);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.file, "/var/log/cairn.log");
  EXPECT_EQ(c.server.listen, "0.0.0.0:9100");
  EXPECT_EQ(c.server.data_dir, "/srv/cairn");
}

TEST(ConfigTest, AbsentKeysKeepDefaults) {
  Result<Config> r = ParseConfig("[engine]\ndirect_io = false\n");
  ASSERT_OK(r);
  EXPECT_FALSE(r->engine.direct_io);
  EXPECT_EQ(r->engine.segment_size, 256 * kMiB);
  EXPECT_EQ(r->log.level, "info");
}

TEST(ConfigTest, IntegerAcceptedForRatio) {
  Result<Config> r = ParseConfig("[engine]\ncompaction_dead_ratio = 1\n");
  ASSERT_OK(r);
  EXPECT_DOUBLE_EQ(r->engine.compaction_dead_ratio, 1.0);
}

TEST(ConfigTest, UnknownKeyIsAnErrorNamingIt) {
  Status s = ParseError("[engine]\nsegmnt_size = 1\n");
  EXPECT_TRUE(s.IsConfigError()) << s;
  EXPECT_NE(s.message().find("engine.segmnt_size"), std::string::npos) << s;
  EXPECT_NE(s.message().find("line 2"), std::string::npos) << s;
}

TEST(ConfigTest, UnknownTableIsAnError) {
  Status s = ParseError("[engin]\nsegment_size = 1\n");
  EXPECT_TRUE(s.IsConfigError()) << s;
  EXPECT_NE(s.message().find("engin"), std::string::npos) << s;
}

TEST(ConfigTest, TopLevelKeyIsAnError) {
  Status s = ParseError("segment_size = 1\n");
  EXPECT_TRUE(s.IsConfigError()) << s;
  EXPECT_NE(s.message().find("segment_size"), std::string::npos) << s;
}

TEST(ConfigTest, WrongTypeIsAnErrorNamingTheKey) {
  struct Case {
    const char* toml;
    const char* key;
  };
  for (const Case& c : {
           Case{"[engine]\ndirect_io = \"yes\"\n", "engine.direct_io"},
           Case{"[engine]\nsegment_size = true\n", "engine.segment_size"},
           Case{"[engine]\ncompaction_interval_ms = \"1s\"\n", "engine.compaction_interval_ms"},
           Case{"[engine]\ncompaction_dead_ratio = \"half\"\n", "engine.compaction_dead_ratio"},
           Case{"[log]\nlevel = 3\n", "log.level"},
           Case{"[server]\nlisten = 9000\n", "server.listen"},
           Case{"engine = 5\n", "engine"},
       }) {
    Status s = ParseError(c.toml);
    EXPECT_TRUE(s.IsConfigError()) << c.toml << " -> " << s;
    EXPECT_NE(s.message().find(c.key), std::string::npos) << c.toml << " -> " << s;
  }
}

TEST(ConfigTest, BadValuesAreErrors) {
  EXPECT_TRUE(ParseError("[engine]\nsegment_size = -1\n").IsConfigError());
  EXPECT_TRUE(ParseError("[engine]\nsegment_size = \"64KB\"\n").IsConfigError());
  EXPECT_TRUE(ParseError("[engine]\nsegment_size = 0\n").IsConfigError());
  EXPECT_TRUE(ParseError("[engine]\ncompaction_interval_ms = -5\n").IsConfigError());
  EXPECT_TRUE(ParseError("[engine]\ncompaction_dead_ratio = 1.5\n").IsConfigError());
  EXPECT_TRUE(ParseError("[engine]\nio_backend = \"aio\"\n").IsConfigError());
  EXPECT_TRUE(ParseError("[log]\nlevel = \"verbose\"\n").IsConfigError());
}

TEST(ConfigTest, SyntaxErrorReportsLine) {
  Status s = ParseError("[engine]\nsegment_size = = 3\n");
  EXPECT_TRUE(s.IsConfigError()) << s;
  EXPECT_NE(s.message().find("line 2"), std::string::npos) << s;
}

TEST(ConfigTest, SizeSuffixes) {
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 64 * kKiB);
  EXPECT_EQ(*ParseByteSize("64K"), 64 * kKiB);
  EXPECT_EQ(*ParseByteSize("256MiB"), 256 * kMiB);
  EXPECT_EQ(*ParseByteSize("256M"), 256 * kMiB);
  EXPECT_EQ(*ParseByteSize("1GiB"), kGiB);
  EXPECT_EQ(*ParseByteSize("1G"), kGiB);
  EXPECT_EQ(*ParseByteSize("2TiB"), 2 * kTiB);
  EXPECT_EQ(*ParseByteSize("3T"), 3 * kTiB);
  EXPECT_EQ(*ParseByteSize(" 8 mib "), 8 * kMiB);
  EXPECT_EQ(*ParseByteSize("512B"), 512u);
  EXPECT_EQ(*ParseByteSize("18446744073709551615"), UINT64_MAX);
}

TEST(ConfigTest, BadSizesAreErrors) {
  for (const char* text : {"", "MiB", "-1", "+1", "1.5GiB", "64KB", "64 kilobytes", "1PiB", "0x10",
                           "18446744073709551616", "16777216TiB"}) {
    Result<uint64_t> r = ParseByteSize(text);
    EXPECT_FALSE(r.ok()) << text;
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsConfigError()) << text;
    }
  }
}

TEST(ConfigTest, FormatByteSizeUsesLargestExactSuffix) {
  EXPECT_EQ(FormatByteSize(0), "0");
  EXPECT_EQ(FormatByteSize(1000), "1000");
  EXPECT_EQ(FormatByteSize(64 * kKiB), "64KiB");
  EXPECT_EQ(FormatByteSize(1536 * kKiB), "1536KiB");
  EXPECT_EQ(FormatByteSize(256 * kMiB), "256MiB");
  EXPECT_EQ(FormatByteSize(kTiB), "1TiB");
}

TEST(ConfigTest, FlagsSetEngineFields) {
  EngineConfig c;
  ASSERT_EQ(
      ParseFlags(c, {"--segment-size", "64MiB", "--no-direct-io", "--direct-reads", "--io-backend=psync",
                     "--max-batch-bytes", "1MiB", "--checkpoint-interval-bytes", "4GiB", "--compaction-dead-ratio",
                     "0.75", "--compaction-interval-ms", "250", "--no-background-compaction"}),
      "");
  EXPECT_EQ(c.segment_size, 64 * kMiB);
  EXPECT_FALSE(c.direct_io);
  EXPECT_TRUE(c.direct_reads);
  EXPECT_EQ(c.io_backend, "psync");
  EXPECT_EQ(c.max_batch_bytes, kMiB);
  EXPECT_EQ(c.checkpoint_interval_bytes, 4 * kGiB);
  EXPECT_DOUBLE_EQ(c.compaction_dead_ratio, 0.75);
  EXPECT_EQ(c.compaction_interval_ms, 250u);
  EXPECT_FALSE(c.background_compaction);
}

TEST(ConfigTest, BoolFlagsTakeExplicitValues) {
  EngineConfig c;
  ASSERT_EQ(ParseFlags(c, {"--direct-io=false", "--background-compaction=true"}), "");
  EXPECT_FALSE(c.direct_io);
  EXPECT_TRUE(c.background_compaction);
}

TEST(ConfigTest, FlagsOverrideFileValues) {
  Result<Config> r = ParseConfig(R"(
[engine]
segment_size = "32MiB"
io_backend = "io_uring"
compaction_interval_ms = 10
direct_io = false
)");
  ASSERT_OK(r);
  Config c = *r;
  ASSERT_EQ(ParseFlags(c.engine, {"--segment-size=128MiB", "--io-backend", "psync"}), "");
  EXPECT_EQ(c.engine.segment_size, 128 * kMiB);     // flag wins
  EXPECT_EQ(c.engine.io_backend, "psync");          // flag wins
  EXPECT_EQ(c.engine.compaction_interval_ms, 10u);  // file value kept: no flag given
  EXPECT_FALSE(c.engine.direct_io);                 // file value kept
  EXPECT_OK(ValidateConfig(c));
}

TEST(ConfigTest, BadFlagValuesAreRejected) {
  EngineConfig c;
  EXPECT_NE(ParseFlags(c, {"--segment-size", "64KB"}), "");
  EXPECT_NE(ParseFlags(c, {"--io-backend", "aio"}), "");
  EXPECT_NE(ParseFlags(c, {"--compaction-dead-ratio", "2"}), "");
  EXPECT_NE(ParseFlags(c, {"--compaction-interval-ms", "0"}), "");
  EXPECT_NE(ParseFlags(c, {"--compaction-interval-ms", "-3"}), "");
  EXPECT_NE(ParseFlags(c, {"--compaction-interval-ms", "1.5"}), "");
  EXPECT_EQ(c.segment_size, EngineConfig{}.segment_size);
  EXPECT_EQ(c.io_backend, "auto");
  EXPECT_EQ(c.compaction_interval_ms, EngineConfig{}.compaction_interval_ms);
}

TEST(ConfigTest, TomlRenderingRoundTrips) {
  Config c;
  c.engine.segment_size = 64 * kMiB;
  c.engine.max_batch_bytes = 1000;
  c.engine.compaction_dead_ratio = 1.0;
  c.log.file = "/tmp/with \"quotes\" and \\ backslash";
  c.server.data_dir = "tab\there";
  const std::string toml = ConfigToToml(c);
  EXPECT_NE(toml.find("segment_size = \"64MiB\""), std::string::npos) << toml;
  EXPECT_NE(toml.find("max_batch_bytes = 1000\n"), std::string::npos) << toml;
  EXPECT_NE(toml.find("compaction_dead_ratio = 1.0\n"), std::string::npos) << toml;
  Result<Config> back = ParseConfig(toml);
  ASSERT_OK(back);
  EXPECT_EQ(ConfigToToml(*back), toml);
  EXPECT_EQ(back->log.file, c.log.file);
  EXPECT_EQ(back->server.data_dir, c.server.data_dir);
}

TEST(ConfigTest, TomlRenderingOfDefaults) {
  EXPECT_EQ(ConfigToToml(Config{}),
            "# Cairn configuration; every field is listed. See docs/config.md.\n"
            "\n"
            "[engine]\n"
            "segment_size = \"256MiB\"\n"
            "direct_io = true\n"
            "direct_reads = false\n"
            "io_backend = \"auto\"\n"
            "max_batch_bytes = \"16MiB\"\n"
            "checkpoint_interval_bytes = \"1GiB\"\n"
            "compaction_dead_ratio = 0.5\n"
            "compaction_interval_ms = 1000\n"
            "background_compaction = true\n"
            "\n"
            "[log]\n"
            "level = \"info\"\n"
            "file = \"\"\n"
            "\n"
            "[server]\n"
            "listen = \"127.0.0.1:9000\"\n"
            "data_dir = \"./data\"\n"
            "\n"
            "[cluster]\n"
            "etcd = \"\"\n"
            "node_id = \"\"\n"
            "rpc = \"\"\n"
            "zone = \"\"\n"
            "name = \"default\"\n"
            "secret_file = \"\"\n"
            "lease_ttl_seconds = 3\n"
            "replicas = 3\n"
            "chains = 64\n"
            "orphan_interval_seconds = 3600\n"
            "orphan_grace_seconds = 86400\n"
            "peer_timeout_ms = 3000\n"
            "eviction_quarantine_seconds = 60\n"
            "rpc_advertise = \"\"\n");
}

TEST(ConfigTest, ClusterTable) {
  Result<Config> r = ParseConfig(
      "[cluster]\netcd = \"http://127.0.0.1:2379\"\nnode_id = \"n1\"\nrpc = \"127.0.0.1:9101\"\nzone = \"z1\"\n"
      "lease_ttl_seconds = 2\nreplicas = 2\nchains = 8\n");
  ASSERT_OK(r);
  EXPECT_EQ(r->cluster.etcd, "http://127.0.0.1:2379");
  EXPECT_EQ(r->cluster.node_id, "n1");
  EXPECT_EQ(r->cluster.name, "default");
  EXPECT_EQ(r->cluster.lease_ttl_seconds, 2u);
  EXPECT_EQ(r->cluster.replicas, 2u);
  EXPECT_EQ(r->cluster.chains, 8u);
  EXPECT_EQ(ConfigToToml(*ParseConfig(ConfigToToml(*r))), ConfigToToml(*r));
}

TEST(ConfigTest, ClusterModeNeedsValidIdsAndRanges) {
  const std::string base = "[cluster]\netcd = \"http://127.0.0.1:2379\"\n";
  struct Case {
    std::string extra;
    const char* key;
  };
  for (const Case& c : {
           Case{"rpc = \"127.0.0.1:1\"\n", "cluster.node_id"},
           Case{"node_id = \"n1\"\n", "cluster.rpc"},
           Case{"node_id = \"n 1\"\nrpc = \"a:1\"\n", "cluster.node_id"},
           Case{"node_id = \"n/1\"\nrpc = \"a:1\"\n", "cluster.node_id"},
           Case{"node_id = \"" + std::string(65, 'a') + "\"\nrpc = \"a:1\"\n", "cluster.node_id"},
           Case{"node_id = \"n1\"\nrpc = \"a:1\"\nname = \"\"\n", "cluster.name"},
           Case{"node_id = \"n1\"\nrpc = \"a:1\"\nzone = \"z/1\"\n", "cluster.zone"},
           Case{"node_id = \"n1\"\nrpc = \"a:1\"\nlease_ttl_seconds = 0\n", "cluster.lease_ttl_seconds"},
           Case{"node_id = \"n1\"\nrpc = \"a:1\"\nreplicas = 0\n", "cluster.replicas"},
           Case{"node_id = \"n1\"\nrpc = \"a:1\"\nchains = 121\n", "cluster.chains"},
       }) {
    Status s = ParseError(base + c.extra);
    EXPECT_TRUE(s.IsConfigError()) << c.extra << " -> " << s;
    EXPECT_NE(s.message().find(c.key), std::string::npos) << c.extra << " -> " << s;
  }
  EXPECT_OK(ParseConfig(base + "node_id = \"node-1.a_b\"\nrpc = \"a:1\"\n").status());
}

TEST(ConfigTest, NodeIdWithoutClusterIsAnError) {
  // A half-configured cluster node must not start as a single node that takes writes.
  Status s = ParseError("[cluster]\nnode_id = \"n1\"\n");
  EXPECT_TRUE(s.IsConfigError()) << s;
  EXPECT_NE(s.message().find("cluster.node_id"), std::string::npos) << s;
}

TEST(ConfigTest, NodeIdRule) {
  EXPECT_TRUE(IsValidNodeId("n1"));
  EXPECT_TRUE(IsValidNodeId("A.b_c-9"));
  EXPECT_TRUE(IsValidNodeId(std::string(64, 'x')));
  EXPECT_FALSE(IsValidNodeId(""));
  EXPECT_FALSE(IsValidNodeId(std::string(65, 'x')));
  EXPECT_FALSE(IsValidNodeId("n1/0"));
  EXPECT_FALSE(IsValidNodeId("é"));
}

TEST(ConfigTest, LoadsFile) {
  test::TempDir dir;
  const std::string path = dir.path() + "/cairn.toml";
  std::ofstream(path) << "[server]\ndata_dir = \"/srv/x\"\n";
  Result<Config> r = LoadConfigFile(path);
  ASSERT_OK(r);
  EXPECT_EQ(r->server.data_dir, "/srv/x");
}

TEST(ConfigTest, MissingFileIsNotFound) {
  Result<Config> r = LoadConfigFile("/nonexistent/cairn.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status();
}

TEST(ConfigTest, FileErrorsNameThePath) {
  test::TempDir dir;
  const std::string path = dir.path() + "/bad.toml";
  std::ofstream(path) << "[log]\nlevle = \"debug\"\n";
  Result<Config> r = LoadConfigFile(path);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsConfigError());
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("log.levle"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace cairn
