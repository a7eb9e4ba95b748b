// Shared benchmark plumbing; see bench_util.h.
#include "bench/bench_util.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace cairn::bench {
namespace {

using Json = nlohmann::json;

std::string Trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// The first line of a small file, trimmed; empty when unreadable.
std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  return Trim(line);
}

// The value of the first "key<sep>value" line of a /proc file whose key matches.
std::string ProcField(const std::string& path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (Trim(line.substr(0, colon)) != key) continue;
    return Trim(line.substr(colon + 1));
  }
  return {};
}

// "12345 kB" from /proc/<pid>/status or /proc/meminfo, in bytes; 0 when absent.
uint64_t KibFieldBytes(const std::string& path, std::string_view key) {
  const std::string value = ProcField(path, key);
  if (value.empty()) return 0;
  return std::strtoull(value.c_str(), nullptr, 10) * 1024;
}

std::string FileSystemName(const std::string& dir) {
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) != 0) return "unknown";
  // Magic numbers from statfs(2) / <linux/magic.h>.
  struct Magic {
    uint64_t magic;
    const char* name;
  };
  static constexpr std::array<Magic, 11> kMagics = {{
      {0xEF53, "ext4"},
      {0x58465342, "xfs"},
      {0x9123683E, "btrfs"},
      {0x01021994, "tmpfs"},
      {0x794C7630, "overlayfs"},
      {0x2FC12FC1, "zfs"},
      {0xF2F52010, "f2fs"},
      {0x6969, "nfs"},
      {0xFF534D42, "cifs"},
      {0x65735546, "fuse"},
      {0x858458F6, "ramfs"},
  }};
  const auto type = static_cast<uint64_t>(static_cast<uint32_t>(fs.f_type));
  for (const Magic& m : kMagics) {
    if (m.magic == type) return m.name;
  }
  return fmt::format("0x{:x}", type);
}

// The model of the block device holding `dir`, from sysfs (or its driver, e.g. "virtio_blk");
// "unknown" for anonymous devices (overlayfs, tmpfs) and devices that report neither.
std::string DeviceModel(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || major(st.st_dev) == 0) return "unknown";
  const std::string sys = fmt::format("/sys/dev/block/{}:{}", major(st.st_dev), minor(st.st_dev));
  // A partition's model lives on its parent disk.
  for (const std::string& base : {sys, sys + "/.."}) {
    std::string model = ReadFirstLine(base + "/device/model");
    if (model.empty()) model = ReadFirstLine(base + "/device/name");
    if (!model.empty()) return model;
  }
  // Virtual disks (virtio) report no model: name the driver instead.
  std::error_code ec;
  const std::filesystem::path driver = std::filesystem::read_symlink(sys + "/device/driver", ec);
  if (!ec && !driver.empty()) return driver.filename().string();
  const std::string name = ReadFirstLine(sys + "/dm/name");
  return name.empty() ? "unknown" : "device-mapper " + name;
}

}  // namespace

uint64_t RandomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

void FillPseudoRandom(uint64_t seed, std::span<std::byte> out) {
  Rng rng(seed);
  for (size_t i = 0; i < out.size(); i += sizeof(uint64_t)) {
    const uint64_t v = rng.Next();
    std::memcpy(out.data() + i, &v, std::min(sizeof(v), out.size() - i));
  }
}

uint64_t ElapsedMicros(Clock::time_point from, Clock::time_point to) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
  return static_cast<uint64_t>(std::max<int64_t>(0, (ns + 500) / 1000));
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

Json MachineInfo(const std::string& dir) {
  struct utsname uts {};
  const std::string kernel = uname(&uts) == 0 ? uts.release : "unknown";
  std::string cpu = ProcField("/proc/cpuinfo", "model name");
  if (cpu.empty()) cpu = "unknown";
  Json out{{"nproc", sysconf(_SC_NPROCESSORS_ONLN)},
           {"kernel", kernel},
           {"cpu_model", cpu},
           {"memory_bytes", KibFieldBytes("/proc/meminfo", "MemTotal")}};
  if (!dir.empty()) {
    out["filesystem"] = FileSystemName(dir);
    out["device_model"] = DeviceModel(dir);
  }
  return out;
}

uint64_t RssBytes() { return KibFieldBytes("/proc/self/status", "VmRSS"); }

ProcessSample SampleProcess(int pid) {
  ProcessSample sample;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  if (!in || !std::getline(in, stat)) return sample;
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the
  // last ')'. utime and stime are fields 14 and 15, in clock ticks.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return sample;
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  uint64_t utime = 0;
  uint64_t stime = 0;
  constexpr int kUtimeField = 14;
  constexpr int kStimeField = 15;
  for (int i = 3; i <= kStimeField && (fields >> field); ++i) {
    if (i == kUtimeField) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == kStimeField) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  const std::string status = fmt::format("/proc/{}/status", pid);
  sample.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
  sample.rss_bytes = KibFieldBytes(status, "VmRSS");
  sample.hwm_bytes = KibFieldBytes(status, "VmHWM");
  sample.ok = true;
  return sample;
}

void LatencyMerge::Add(const metrics::Histogram& h) {
  const metrics::Histogram::Snapshot s = h.TakeSnapshot();
  for (size_t i = 0; i < s.buckets.size(); ++i) total_.buckets[i] += s.buckets[i];
  total_.count += s.count;
  total_.sum += s.sum;
  total_.max = std::max(total_.max, s.max);
}

void LatencyMerge::Report(Json& out) const {
  out["ops"] = total_.count;
  out["mean_us"] = total_.count == 0 ? 0.0 : static_cast<double>(total_.sum) / static_cast<double>(total_.count);
  out["p50_us"] = Percentile(0.5);
  out["p99_us"] = Percentile(0.99);
  out["p999_us"] = Percentile(0.999);
  out["max_us"] = total_.max;
}

double LatencyMerge::Percentile(double q) const {
  const double p = total_.Percentile(q);
  return std::isnan(p) ? 0.0 : p;
}

void FirstError::Set(const Status& s) {
  std::lock_guard<std::mutex> l(mu_);
  if (status_.ok()) status_ = s;
  failed_.store(true, std::memory_order_relaxed);
}

Status FirstError::status() {
  std::lock_guard<std::mutex> l(mu_);
  return status_;
}

std::string FormatTable(std::string_view title, const Json& report, const std::vector<std::string_view>& headline) {
  std::ostringstream out;
  const auto row = [&](const std::string& key, const Json& value) {
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_number_float()) {
      text = fmt::format("{:.2f}", value.get<double>());
    } else {
      text = value.dump();
    }
    out << fmt::format("  {:<34} {}\n", key, text);
  };
  const auto section = [&](const std::string& prefix, const Json& obj, const auto& self) -> void {
    for (const auto& [key, value] : obj.items()) {
      if (value.is_object()) {
        self(prefix + key + ".", value, self);
      } else {
        row(prefix + key, value);
      }
    }
  };
  out << title << "\n";
  Json rest = report;
  for (std::string_view key : headline) {
    const std::string k(key);
    if (report.contains(k)) row(k, report[k]);
    rest.erase(k);
  }
  section("", rest, section);
  return out.str();
}

}  // namespace cairn::bench
