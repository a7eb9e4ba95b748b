// Configuration: TOML parsing (toml++), validation, command-line flags (CLI11) and rendering.
//
// Every field appears once, in Fields() below, with its table, key and kind; parsing and
// rendering both walk that list, so a new field in config.h needs one line here (plus its flag
// and docs/config.md). toml++ reports syntax errors by throwing toml::parse_error; it is caught
// here and becomes kConfigError. Thread-safety: the functions are pure and may run on any thread;
// AddEngineFlags binds to a caller-owned EngineConfig, which must outlive the CLI::App's parse.
#include "common/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "common/logging.h"

namespace cairn {
namespace {

constexpr std::array<std::string_view, 3> kIoBackends = {"auto", "io_uring", "psync"};

// Binary size suffixes accepted by ParseByteSize, compared case-insensitively.
struct SizeSuffix {
  std::string_view name;
  unsigned shift;
};
constexpr std::array<SizeSuffix, 9> kSizeSuffixes = {{
    {"b", 0},
    {"k", 10},
    {"kib", 10},
    {"m", 20},
    {"mib", 20},
    {"g", 30},
    {"gib", 30},
    {"t", 40},
    {"tib", 40},
}};
// Suffixes FormatByteSize writes, largest first.
constexpr std::array<SizeSuffix, 4> kFormatSuffixes = {{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}}};

// A field holding a byte count: a TOML integer or a ParseByteSize string.
struct SizeRef {
  uint64_t* value;
};
// A field holding a plain non-negative integer (no suffixes).
struct UintRef {
  uint64_t* value;
};
using FieldRef = std::variant<SizeRef, UintRef, bool*, double*, std::string*>;

struct Field {
  std::string_view table;
  std::string_view key;
  FieldRef ref;
};

// Every field of Config, in the order of config.h.
std::vector<Field> Fields(Config& c) {
  return {
      {"engine", "segment_size", SizeRef{&c.engine.segment_size}},
      {"engine", "direct_io", &c.engine.direct_io},
      {"engine", "direct_reads", &c.engine.direct_reads},
      {"engine", "io_backend", &c.engine.io_backend},
      {"engine", "max_batch_bytes", SizeRef{&c.engine.max_batch_bytes}},
      {"engine", "checkpoint_interval_bytes", SizeRef{&c.engine.checkpoint_interval_bytes}},
      {"engine", "compaction_dead_ratio", &c.engine.compaction_dead_ratio},
      {"engine", "compaction_interval_ms", UintRef{&c.engine.compaction_interval_ms}},
      {"engine", "background_compaction", &c.engine.background_compaction},
      {"log", "level", &c.log.level},
      {"log", "file", &c.log.file},
      {"server", "listen", &c.server.listen},
      {"server", "data_dir", &c.server.data_dir},
      {"cluster", "etcd", &c.cluster.etcd},
      {"cluster", "node_id", &c.cluster.node_id},
      {"cluster", "rpc", &c.cluster.rpc},
      {"cluster", "zone", &c.cluster.zone},
      {"cluster", "name", &c.cluster.name},
      {"cluster", "secret_file", &c.cluster.secret_file},
      {"cluster", "lease_ttl_seconds", UintRef{&c.cluster.lease_ttl_seconds}},
      {"cluster", "replicas", UintRef{&c.cluster.replicas}},
      {"cluster", "chains", UintRef{&c.cluster.chains}},
      {"cluster", "orphan_interval_seconds", UintRef{&c.cluster.orphan_interval_seconds}},
      {"cluster", "orphan_grace_seconds", UintRef{&c.cluster.orphan_grace_seconds}},
      {"cluster", "peer_timeout_ms", UintRef{&c.cluster.peer_timeout_ms}},
      {"cluster", "eviction_quarantine_seconds", UintRef{&c.cluster.eviction_quarantine_seconds}},
      {"cluster", "rpc_advertise", &c.cluster.rpc_advertise},
  };
}

constexpr std::array<std::string_view, 4> kTables = {"engine", "log", "server", "cluster"};

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string Where(const std::string& key, const toml::node& node) {
  return fmt::format("{} (line {})", key, node.source().begin.line);
}

Status WrongType(const std::string& key, const toml::node& node, std::string_view expected) {
  return Status::ConfigError(fmt::format("{}: expected {}, got {}", Where(key, node), expected, TypeName(node)));
}

Status ReadSize(const toml::node& node, const std::string& key, uint64_t* out) {
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) return Status::ConfigError(Where(key, node) + ": a size cannot be negative");
    *out = static_cast<uint64_t>(i->get());
    return Status::OK();
  }
  if (const auto* s = node.as_string()) {
    Result<uint64_t> parsed = ParseByteSize(s->get());
    if (!parsed.ok()) return parsed.status().WithContext(Where(key, node));
    *out = *parsed;
    return Status::OK();
  }
  return WrongType(key, node, "an integer or a size string such as \"256MiB\"");
}

Status ReadUint(const toml::node& node, const std::string& key, uint64_t* out) {
  const auto* i = node.as_integer();
  if (i == nullptr) return WrongType(key, node, "an integer");
  if (i->get() < 0) return Status::ConfigError(Where(key, node) + ": cannot be negative");
  *out = static_cast<uint64_t>(i->get());
  return Status::OK();
}

Status ReadBool(const toml::node& node, const std::string& key, bool* out) {
  const auto* b = node.as_boolean();
  if (b == nullptr) return WrongType(key, node, "a boolean");
  *out = b->get();
  return Status::OK();
}

// Accepts integers as well as floats: `compaction_dead_ratio = 1` means 1.0.
Status ReadDouble(const toml::node& node, const std::string& key, double* out) {
  if (const auto* f = node.as_floating_point()) {
    *out = f->get();
    return Status::OK();
  }
  if (const auto* i = node.as_integer()) {
    *out = static_cast<double>(i->get());
    return Status::OK();
  }
  return WrongType(key, node, "a number");
}

Status ReadString(const toml::node& node, const std::string& key, std::string* out) {
  const auto* s = node.as_string();
  if (s == nullptr) return WrongType(key, node, "a string");
  *out = s->get();
  return Status::OK();
}

Status ReadField(const toml::node& node, const std::string& key, const FieldRef& ref) {
  if (const auto* size = std::get_if<SizeRef>(&ref)) return ReadSize(node, key, size->value);
  if (const auto* uint = std::get_if<UintRef>(&ref)) return ReadUint(node, key, uint->value);
  if (auto* const* b = std::get_if<bool*>(&ref)) return ReadBool(node, key, *b);
  if (auto* const* d = std::get_if<double*>(&ref)) return ReadDouble(node, key, *d);
  return ReadString(node, key, std::get<std::string*>(ref));
}

Status ReadTable(const toml::table& root, Config& config) {
  std::vector<Field> fields = Fields(config);
  for (const auto& [table_key, table_node] : root) {
    const std::string table_name(table_key.str());
    bool known_table = false;
    for (std::string_view t : kTables) known_table = known_table || t == table_name;
    if (!known_table) {
      return Status::ConfigError(fmt::format("{}: unknown table (expected [engine], [log], [server] or [cluster])",
                                             Where(table_name, table_node)));
    }
    const toml::table* table = table_node.as_table();
    if (table == nullptr) return WrongType(table_name, table_node, "a table");
    for (const auto& [key, node] : *table) {
      const std::string qualified = table_name + "." + std::string(key.str());
      const Field* field = nullptr;
      for (const Field& f : fields) {
        if (f.table == table_name && f.key == key.str()) field = &f;
      }
      if (field == nullptr) return Status::ConfigError(Where(qualified, node) + ": unknown key");
      CAIRN_RETURN_IF_ERROR(ReadField(node, qualified, field->ref));
    }
  }
  return Status::OK();
}

// A TOML basic string, quoted and escaped.
std::string TomlQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += fmt::format("\\u{:04X}", static_cast<unsigned>(u));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string TomlValue(const FieldRef& ref) {
  if (const auto* size = std::get_if<SizeRef>(&ref)) {
    const uint64_t v = *size->value;
    const std::string formatted = FormatByteSize(v);
    const bool fits_integer = v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    const bool has_suffix = !formatted.empty() && std::isalpha(static_cast<unsigned char>(formatted.back()));
    return (has_suffix || !fits_integer) ? TomlQuote(formatted) : formatted;
  }
  if (const auto* uint = std::get_if<UintRef>(&ref)) return std::to_string(*uint->value);
  if (auto* const* b = std::get_if<bool*>(&ref)) return **b ? "true" : "false";
  if (auto* const* d = std::get_if<double*>(&ref)) {
    const double v = **d;
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    std::string s = fmt::format("{}", v);
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
  }
  return TomlQuote(*std::get<std::string*>(ref));
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}


// CLI11 2.1 reads "-3" into a uint64_t as 2^64-3 and its Range checks only after converting, so
// integer flags are checked as text first.
CLI::Validator PositiveIntegerValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t value = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, value);
        if (ec != std::errc() || ptr != end || value == 0) return "expected a positive integer, got \"" + text + "\"";
        return {};
      },
      /*validator_desc=*/"");
}

// --name and --no-name; --name=false works too. The help shows the current value.
void AddBoolFlag(CLI::App& app, const std::string& name, bool* field, const std::string& help) {
  app.add_flag("--" + name + ",!--no-" + name, *field, help + (*field ? " [default: on]" : " [default: off]"));
}

Status ValidateCluster(const ClusterConfig& c) {
  if (c.etcd.empty()) {
    // A node id or RPC address without etcd is a half-configured cluster node: starting it as a
    // single node would quietly serve unreplicated data under a name meant for the cluster.
    if (!c.node_id.empty()) return Status::ConfigError("cluster.node_id: set, but cluster.etcd (--cluster) is not");
    if (!c.rpc.empty()) return Status::ConfigError("cluster.rpc: set, but cluster.etcd (--cluster) is not");
    return Status::OK();
  }
  const auto bad_id = [](std::string_view key, const std::string& value) {
    return Status::ConfigError(
        fmt::format("{}: \"{}\" is not 1 to 64 characters of letters, digits, '.', '_' and '-'", key, value));
  };
  if (c.node_id.empty()) return Status::ConfigError("cluster.node_id: cluster mode needs a node id (--node-id)");
  if (!IsValidNodeId(c.node_id)) return bad_id("cluster.node_id", c.node_id);
  if (!IsValidNodeId(c.name)) return bad_id("cluster.name", c.name);
  if (!c.zone.empty() && !IsValidNodeId(c.zone)) return bad_id("cluster.zone", c.zone);
  if (c.rpc.empty()) return Status::ConfigError("cluster.rpc: cluster mode needs an RPC address (--rpc)");
  if (c.rpc.starts_with("0.0.0.0:") || c.rpc.starts_with("[::]:")) {
    // The registration carries the address as bound: peers would dial themselves.
    return Status::ConfigError("cluster.rpc: " + c.rpc +
                               " is not an address peers can dial; give this node's own address (e.g. 10.0.0.5:9100)");
  }
  if (c.lease_ttl_seconds < 1 || c.lease_ttl_seconds > 600) {
    return Status::ConfigError(fmt::format("cluster.lease_ttl_seconds: {} is outside [1, 600]", c.lease_ttl_seconds));
  }
  if (c.replicas < 1) return Status::ConfigError("cluster.replicas: must be at least 1");
  if (c.chains < 1 || c.chains > 120) {
    return Status::ConfigError(fmt::format("cluster.chains: {} is outside [1, 120]", c.chains));
  }
  constexpr uint64_t kYear = uint64_t{365} * 86400;
  if (c.orphan_grace_seconds < 1 || c.orphan_grace_seconds > kYear) {
    return Status::ConfigError(
        fmt::format("cluster.orphan_grace_seconds: {} is outside [1, {}]", c.orphan_grace_seconds, kYear));
  }
  if (c.orphan_interval_seconds > kYear) {
    return Status::ConfigError(
        fmt::format("cluster.orphan_interval_seconds: {} is outside [0, {}]", c.orphan_interval_seconds, kYear));
  }
  if (c.peer_timeout_ms < 200 || c.peer_timeout_ms > 600000) {
    return Status::ConfigError(fmt::format("cluster.peer_timeout_ms: {} is outside [200, 600000]", c.peer_timeout_ms));
  }
  if (c.eviction_quarantine_seconds > 86400) {
    return Status::ConfigError(fmt::format("cluster.eviction_quarantine_seconds: {} is outside [0, 86400]",
                                           c.eviction_quarantine_seconds));
  }
  if (c.rpc_advertise.starts_with("0.0.0.0:") || c.rpc_advertise.starts_with("[::]:")) {
    return Status::ConfigError("cluster.rpc_advertise: " + c.rpc_advertise + " is not an address peers can dial");
  }
  return Status::OK();
}

}  // namespace

bool IsValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char ch : id) {
    // ASCII only, whatever the locale: ids become etcd keys and file contents.
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                    ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

void AddSizeFlag(CLI::App& app, const std::string& name, uint64_t* field, const std::string& help) {
  const CLI::Validator size_check(
      [](std::string& text) -> std::string {
        Result<uint64_t> parsed = ParseByteSize(text);
        return parsed.ok() ? std::string() : parsed.status().message();
      },
      /*validator_desc=*/"");
  app.add_option_function<std::string>(
         name,
         [field](const std::string& text) {
           Result<uint64_t> parsed = ParseByteSize(text);
           if (parsed.ok()) *field = *parsed;  // always ok: size_check ran first
         },
         help)
      ->check(size_check)
      ->type_name("SIZE")
      ->default_str(FormatByteSize(*field));
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  const std::string_view trimmed = TrimSpace(text);
  const auto invalid = [&](std::string_view why) {
    return Status::ConfigError(fmt::format("invalid size \"{}\": {}", text, why));
  };
  size_t digits = 0;
  while (digits < trimmed.size() && std::isdigit(static_cast<unsigned char>(trimmed[digits]))) ++digits;
  if (digits == 0) return invalid("expected an integer, optionally followed by K/KiB, M/MiB, G/GiB or T/TiB");
  uint64_t number = 0;
  const auto [end, ec] = std::from_chars(trimmed.data(), trimmed.data() + digits, number);
  if (ec == std::errc::result_out_of_range) return invalid("too large");
  if (ec != std::errc() || end != trimmed.data() + digits) return invalid("not an integer");

  const std::string suffix = ToLower(TrimSpace(trimmed.substr(digits)));
  if (suffix.empty()) return number;
  for (const SizeSuffix& s : kSizeSuffixes) {
    if (s.name != suffix) continue;
    if (number > (std::numeric_limits<uint64_t>::max() >> s.shift)) return invalid("too large");
    return number << s.shift;
  }
  return invalid("unknown suffix (expected K/KiB, M/MiB, G/GiB or T/TiB; units are powers of 1024)");
}

std::string FormatByteSize(uint64_t bytes) {
  if (bytes != 0) {
    for (const SizeSuffix& s : kFormatSuffixes) {
      const uint64_t unit = uint64_t{1} << s.shift;
      if (bytes % unit == 0) return fmt::format("{}{}", bytes / unit, s.name);
    }
  }
  return std::to_string(bytes);
}

Status ValidateConfig(const Config& config) {
  const EngineConfig& e = config.engine;
  if (e.segment_size == 0) return Status::ConfigError("engine.segment_size: must be positive");
  if (e.max_batch_bytes == 0) return Status::ConfigError("engine.max_batch_bytes: must be positive");
  if (e.checkpoint_interval_bytes == 0) {
    return Status::ConfigError("engine.checkpoint_interval_bytes: must be positive");
  }
  if (e.compaction_interval_ms == 0) return Status::ConfigError("engine.compaction_interval_ms: must be positive");
  if (!(e.compaction_dead_ratio >= 0.0 && e.compaction_dead_ratio <= 1.0)) {
    return Status::ConfigError(
        fmt::format("engine.compaction_dead_ratio: {} is outside [0, 1]", e.compaction_dead_ratio));
  }
  bool known_backend = false;
  for (std::string_view b : kIoBackends) known_backend = known_backend || b == e.io_backend;
  if (!known_backend) {
    return Status::ConfigError("engine.io_backend: unknown back end \"" + e.io_backend +
                               "\" (expected auto, io_uring or psync)");
  }
  Result<LogLevel> level = ParseLogLevel(config.log.level);
  if (!level.ok()) return level.status().WithContext("log.level");
  if (config.server.listen.empty()) return Status::ConfigError("server.listen: must not be empty");
  if (config.server.data_dir.empty()) return Status::ConfigError("server.data_dir: must not be empty");
  return ValidateCluster(config.cluster);
}

Result<Config> ParseConfig(std::string_view toml_text) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    return Status::ConfigError(
        fmt::format("line {}, column {}: {}", e.source().begin.line, e.source().begin.column, e.description()));
  }
  Config config;
  CAIRN_RETURN_IF_ERROR(ReadTable(root, config));
  CAIRN_RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::FromErrno(errno, "open config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError("read config file " + path);
  Result<Config> config = ParseConfig(text.str());
  if (!config.ok()) return config.status().WithContext(path);
  return config;
}

void AddEngineFlags(CLI::App& app, EngineConfig& config) {
  AddSizeFlag(app, "--segment-size", &config.segment_size,
              "Maximum size of one segment file, e.g. 256MiB ([engine] segment_size)");
  AddBoolFlag(app, "direct-io", &config.direct_io, "Write segments with O_DIRECT ([engine] direct_io)");
  AddBoolFlag(app, "direct-reads", &config.direct_reads, "Read chunks with O_DIRECT ([engine] direct_reads)");
  app.add_option("--io-backend", config.io_backend, "io back end: auto, io_uring or psync ([engine] io_backend)")
      ->check(CLI::IsMember(std::vector<std::string>(kIoBackends.begin(), kIoBackends.end())))
      ->capture_default_str();
  AddSizeFlag(app, "--max-batch-bytes", &config.max_batch_bytes,
              "Bytes one group commit writes before its fdatasync ([engine] max_batch_bytes)");
  AddSizeFlag(app, "--checkpoint-interval-bytes", &config.checkpoint_interval_bytes,
              "Record bytes between index checkpoints ([engine] checkpoint_interval_bytes)");
  app.add_option("--compaction-dead-ratio", config.compaction_dead_ratio,
                 "Dead fraction of a sealed segment that triggers compaction ([engine] compaction_dead_ratio)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--compaction-interval-ms", config.compaction_interval_ms,
                 "Milliseconds between background compactor passes ([engine] compaction_interval_ms)")
      ->check(PositiveIntegerValidator())
      ->capture_default_str();
  AddBoolFlag(app, "background-compaction", &config.background_compaction,
              "Run the background compactor ([engine] background_compaction)");
}

std::string ConfigToToml(const Config& config) {
  Config copy = config;
  std::string out = "# Cairn configuration; every field is listed. See docs/config.md.\n";
  std::string_view current_table;
  for (const Field& field : Fields(copy)) {
    if (field.table != current_table) {
      current_table = field.table;
      out += fmt::format("\n[{}]\n", current_table);
    }
    out += fmt::format("{} = {}\n", field.key, TomlValue(field.ref));
  }
  return out;
}

}  // namespace cairn
