// placeholder, replaced by the engine workload generator
namespace cairn::bench {}
