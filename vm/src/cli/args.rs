//! Command-line arguments (clap derive). The flags of `run` are fixed by issue 5.

use std::path::PathBuf;

use bpfvm::{EngineKind, Privilege, VerifierMode};
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Args, Parser, Subcommand};

use super::size::parse_size;

/// Run BPF objects on simulated CPUs with kernel-exact per-CPU maps.
#[derive(Debug, Parser)]
#[command(name = "bpfvm", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program of an object on every simulated CPU (or one) and show the maps.
    Run(Box<RunArgs>),
    /// List an object's programs: type, attach type, and whether each loads (and why not).
    #[command(alias = "programs")]
    List(ListArgs),
    /// List the maps an object defines.
    Maps(ObjectArgs),
    /// Print a program's instructions after relocation.
    Disasm(DisasmArgs),
    /// Print every kernel helper and map type with bpfvm's support for it (Markdown, as in
    /// the README).
    Support,
    /// Give the Linux kernel verifier's verdict on an object's programs, with its reason
    /// and the C source line (exit code 1 when one is refused).
    Verify(VerifyArgs),
    /// Run a program on several simulated CPUs under every interleaving of their shared map
    /// accesses (or random ones) and report lost updates and data races (docs/races.md).
    Race(Box<RaceArgs>),
}

/// `bpfvm race`.
#[derive(Debug, Args)]
pub struct RaceArgs {
    /// The BPF ELF object, at most 64 MiB.
    pub object: PathBuf,
    /// Program to explore: function or section name (default: the only program).
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// The program type, as for `bpfvm run --type`.
    #[arg(long = "type", value_name = "TYPE")]
    pub prog_type: Option<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Simulated CPUs running the program at the same time.
    #[arg(long, value_name = "K", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(2..=bpfvm::race::MAX_CPUS as i64))]
    pub cpus: u32,
    /// Runs of the program on each CPU (CPUs x runs at most 64).
    #[arg(long, value_name = "R", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=bpfvm::race::MAX_TOTAL_RUNS as i64))]
    pub runs: u32,
    /// Packet bytes for every run (the raw context for non-packet program types), as for
    /// `bpfvm run --data`.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Run N random schedules (seeded by --seed) instead of every interleaving.
    #[arg(long, value_name = "N", conflicts_with = "exhaustive",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub schedules: Option<u64>,
    /// Every interleaving of the shared accesses, up to partial-order reduction (the
    /// default), at most --max-schedules runs.
    #[arg(long)]
    pub exhaustive: bool,
    /// Most schedules an exhaustive exploration runs before it stops (and says so).
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_schedules: u64,
    /// Seed of the random schedules and of the runs' virtual clock and PRNG.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Replay one schedule (as printed, one CPU digit per shared step) and show it.
    #[arg(long, value_name = "SCHEDULE", conflicts_with_all = ["schedules", "exhaustive"])]
    pub schedule: Option<String>,
    /// Explore every interleaving, without partial-order reduction (to compare counts).
    #[arg(long)]
    pub no_reduction: bool,
    /// Instructions each run may execute.
    #[arg(long, value_name = "N", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub budget: u64,
    /// Print exactly one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the lost update's timeline as a self-contained SVG picture.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The loader's privileges for the kernel verifier's verdict.
    #[arg(long, value_name = "WHO", default_value = "root", value_parser = PRIVILEGES)]
    pub privileged: String,
}

/// The loader privileges `--privileged` names.
pub const PRIVILEGES: [&str; 3] = ["cap_bpf", "unpriv", "root"];

/// The privilege a `--privileged` value names (`cap_bpf`/`unpriv`: CAP_BPF + CAP_NET_ADMIN).
pub fn privilege(name: &str) -> Privilege {
    if name == "root" {
        Privilege::Root
    } else {
        Privilege::CapBpfNetAdmin
    }
}

/// `bpfvm verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The BPF ELF object.
    pub object: PathBuf,
    /// Program to verify: function or section name (default: every program).
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// The loader's privileges: CAP_BPF + CAP_NET_ADMIN without CAP_PERFMON (`cap_bpf`,
    /// also `unpriv`), or `root`.
    #[arg(long, value_name = "WHO", default_value = "cap_bpf", value_parser = PRIVILEGES)]
    pub privileged: String,
    /// Possible CPUs of the machine the program would load on (bounds
    /// bpf_get_smp_processor_id()).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus: u32,
    /// Target BTF for CO-RE relocations and for the attach targets of tracing programs
    /// (fentry/, fexit/, fmod_ret/, tp_btf/, which need it): raw BTF such as
    /// /sys/kernel/btf/vmlinux, or an ELF
    /// file with a .BTF section (at most 64 MiB). Without it, CO-RE relocations resolve
    /// against the object's own ABI types (__sk_buff, xdp_md, protocol headers, ...) only.
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
}

/// `bpfvm run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The BPF ELF object (clang -target bpf), at most 64 MiB.
    pub object: PathBuf,
    /// Program to run: function or section name (default: the only program).
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// The program type, for a section name libbpf does not know (`xdp_pass`, `prog`) or to
    /// run a program as another type: a kernel type name as bpftool prints it (`xdp`,
    /// `sched_cls`, `socket_filter`, `kprobe`, ...) or a section name libbpf knows (`tc`,
    /// `socket`).
    #[arg(long = "type", value_name = "TYPE")]
    pub prog_type: Option<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Number of simulated CPUs.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus: u32,
    /// Runs on each CPU (at least 1).
    #[arg(long, value_name = "R", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub repeat: u64,
    /// Run only on CPU K (0-based) instead of on every CPU.
    #[arg(long, value_name = "K")]
    pub cpu: Option<u32>,
    /// Packet bytes for every run (the raw context for non-packet program types). Read once;
    /// at most what the kernel's test run takes: 3712 bytes for __sk_buff programs, 73152 for
    /// XDP, 65535 for a raw context (larger or endless files are refused).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Engine that runs the program. `interpreter` and `jit` are sandboxed; the rbpf engines
    /// need --unsafe-engine.
    #[arg(long, value_name = "ENGINE", default_value = "interpreter",
          value_parser = engine_parser())]
    pub engine: String,
    /// Run on an engine that is NOT sandboxed (rbpf-interpreter, rbpf-jit) anyway. Such an
    /// engine runs the program on host pointers without memory checks: a wrong or hostile
    /// program can read or overwrite bpfvm's memory or crash it. Only for programs you trust.
    #[arg(long)]
    pub unsafe_engine: bool,
    /// Memory the object's maps may use together (value arenas and bookkeeping), in bytes or
    /// with a K, M, G or T suffix (powers of 1024). A map that does not fit is refused with
    /// ENOMEM, as a memory cgroup would refuse it.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub map_memory_limit: u64,
    /// Seed of the virtual clock and PRNG (and of the value `--explain` writes).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// Print exactly one JSON object on stdout instead of tables.
    #[arg(long, conflicts_with = "explain")]
    pub json: bool,
    /// Walk through what per-CPU means on this run, step by step (no timing; reproducible).
    #[arg(long)]
    pub explain: bool,
    /// Also write a self-contained SVG picture of per-CPU values and runs per CPU.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The loader's privileges for the kernel verifier's verdict: `cap_bpf` (CAP_BPF +
    /// CAP_NET_ADMIN without CAP_PERFMON, also `unpriv`) or `root`.
    #[arg(long, value_name = "WHO", default_value = "cap_bpf", value_parser = PRIVILEGES)]
    pub privileged: String,
    /// Load-time checks: `kernel` (the Linux kernel verifier's verdict) or `structural`
    /// (bpfvm's structural checks only; run-time checks stay on).
    #[arg(long, value_name = "MODE", default_value = "kernel",
          value_parser = ["kernel", "structural"])]
    pub verifier: String,
    /// Before the runs, set map NAME's KEY to VALUE (repeatable). KEY and VALUE are numbers
    /// (decimal or 0x hex, sized by the map) or hex:BYTES; on a per-CPU map VALUE goes to
    /// every CPU (BPF_F_ALL_CPUS), or to one with VALUE@CPU (BPF_F_CPU); on a map-in-map
    /// (array_of_maps, hash_of_maps) VALUE is the name of another map of the object.
    #[arg(long = "map-set", value_names = ["NAME", "KEY=VALUE"], num_args = 2,
          action = clap::ArgAction::Append, allow_hyphen_values = true)]
    pub map_set: Vec<String>,
    /// Before the runs (and before --map-set), write the map entries of FILE: JSON in the
    /// shape `--json` prints ({"maps": [{"name", "entries": [{"key", "value" | "values"}]}]}),
    /// so one run's output can seed the next.
    #[arg(long, value_name = "FILE")]
    pub maps: Option<PathBuf>,
}

/// The engine names, each with what it is and whether it is sandboxed (shown by `--help`).
fn engine_parser() -> PossibleValuesParser {
    PossibleValuesParser::new([
        PossibleValue::new("interpreter").help(
            "bpfvm's interpreter (default): sandboxed — every memory access is checked, \
             loops end at the instruction budget",
        ),
        PossibleValue::new("jit").help(
            "bpfvm's JIT (cranelift; x86_64 and aarch64): sandboxed — the interpreter's checks \
             and budget compiled inline; no tail calls or callbacks yet",
        ),
        PossibleValue::new("rbpf-interpreter").help(
            "rbpf's interpreter: NOT sandboxed (host pointers, rbpf checks only an access's \
             first byte); needs --unsafe-engine",
        ),
        PossibleValue::new("rbpf-jit").help(
            "rbpf's x86_64 JIT: NOT sandboxed (native code without memory checks; a wild \
             store crashes bpfvm); needs --unsafe-engine",
        ),
    ])
}

impl RunArgs {
    /// The engine (the value parser only lets the four names through).
    pub fn engine_kind(&self) -> EngineKind {
        self.engine.parse().unwrap_or_default()
    }

    /// The verifier mode (the value parser only lets the two names through).
    pub fn verifier_mode(&self) -> VerifierMode {
        self.verifier.parse().unwrap_or_default()
    }
}

/// How the object is loaded: values for `__kconfig` externs.
#[derive(Debug, Args, Default)]
pub struct LoadArgs {
    /// Kernel config for `__kconfig` externs (`CONFIG_*`), in the kernel's `.config` text
    /// format (`zcat /proc/config.gz > FILE`): `CONFIG_X=y|n|m`, numbers, `"strings"`.
    /// Without it no `CONFIG_*` option is set (a weak extern is 0, a strong one refuses
    /// the programs that use it).
    #[arg(long, value_name = "FILE")]
    pub kconfig: Option<PathBuf>,
    /// `LINUX_KERNEL_VERSION` for `__kconfig` externs, as MAJOR.MINOR.PATCH (default
    /// 6.18.0).
    #[arg(long, value_name = "X.Y.Z", value_parser = parse_kernel_version)]
    pub kernel_version: Option<(u32, u32, u32)>,
    /// Target BTF for CO-RE relocations and for the attach targets of tracing programs
    /// (fentry/, fexit/, fmod_ret/, tp_btf/, which need it): raw BTF such as
    /// /sys/kernel/btf/vmlinux, or an ELF
    /// file with a .BTF section (at most 64 MiB). Without it, CO-RE relocations resolve
    /// against the object's own ABI types (__sk_buff, xdp_md, protocol headers, ...) only.
    /// `bpfvm run` and `bpfvm race` also show its types for bpf_snprintf_btf (without it,
    /// -EINVAL).
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
}

/// `6.18.0` (or `6.18`) as numbers.
fn parse_kernel_version(s: &str) -> Result<(u32, u32, u32), String> {
    let parts: Vec<&str> = s.split('.').collect();
    let num = |p: &str| {
        p.parse::<u32>()
            .ok()
            .filter(|&n| n <= 255)
            .ok_or_else(|| format!("{p:?} is not a number from 0 to 255"))
    };
    match parts.as_slice() {
        [a, b] => Ok((num(a)?, num(b)?, 0)),
        [a, b, c] => Ok((num(a)?, num(b)?, num(c)?)),
        _ => Err(format!("{s:?} is not MAJOR.MINOR.PATCH")),
    }
}

/// `bpfvm list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The BPF ELF object, at most 64 MiB.
    pub object: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Subcommands that take only an object.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// The BPF ELF object, at most 64 MiB.
    pub object: PathBuf,
}

/// `bpfvm disasm`.
#[derive(Debug, Args)]
pub struct DisasmArgs {
    /// The BPF ELF object.
    pub object: PathBuf,
    /// Program to print: function or section name (default: every program).
    #[arg(long, value_name = "NAME")]
    pub prog: Option<String>,
    /// Target BTF for CO-RE relocations and for the attach targets of tracing programs
    /// (fentry/, fexit/, fmod_ret/, tp_btf/, which need it): raw BTF such as
    /// /sys/kernel/btf/vmlinux, or an ELF
    /// file with a .BTF section (at most 64 MiB). Without it, CO-RE relocations resolve
    /// against the object's own ABI types (__sk_buff, xdp_md, protocol headers, ...) only.
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_argument_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_has_the_documented_defaults() {
        let cli = Cli::parse_from(["bpfvm", "run", "x.o"]);
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!((a.cpus, a.repeat, a.cpu, a.seed), (4, 1, None, 0));
        assert_eq!(a.engine_kind(), EngineKind::Interpreter);
        assert!(!a.unsafe_engine);
        assert_eq!(a.map_memory_limit, bpfvm::limits::DEFAULT_MAP_MEMORY_LIMIT);
        let cli = Cli::parse_from(["bpfvm", "run", "x.o", "--map-memory-limit", "64M"]);
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.map_memory_limit, 64 << 20);
    }

    #[test]
    fn type_and_kconfig_flags() {
        let cli = Cli::parse_from([
            "bpfvm",
            "run",
            "x.o",
            "--type",
            "xdp",
            "--kconfig",
            "k",
            "--kernel-version",
            "5.15",
        ]);
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.prog_type.as_deref(), Some("xdp"));
        assert_eq!(a.load.kernel_version, Some((5, 15, 0)));
        assert!(Cli::try_parse_from(["bpfvm", "run", "x.o", "--kernel-version", "5"]).is_err());
        assert!(Cli::try_parse_from(["bpfvm", "run", "x.o", "--kernel-version", "5.x.1"]).is_err());
        assert!(Cli::try_parse_from(["bpfvm", "list", "x.o"]).is_ok());
    }

    #[test]
    fn btf_takes_a_file() {
        let cli = Cli::parse_from(["bpfvm", "run", "x.o", "--btf", "/sys/kernel/btf/vmlinux"]);
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            a.load.btf.as_deref(),
            Some("/sys/kernel/btf/vmlinux".as_ref())
        );
    }

    #[test]
    fn zero_cpus_is_refused() {
        assert!(Cli::try_parse_from(["bpfvm", "run", "x.o", "--cpus", "0"]).is_err());
    }
}
