//! The interleaving explorer (`bpfvm::race`) on the teaching fixture `race_counter.o` (the
//! same counter as a shared `+=`, an atomic add and a per-CPU value) and the rate limiter
//! `race_ratelimit.o` (a hash map updated without atomics).

mod common;

use bpfvm::race::{AccessKind, Explorer, RaceConfig, RaceError, Schedule};
use bpfvm::Input;

fn explorer(fixture: &str, prog: &str, cpus: u32, runs: u32) -> Result<Explorer, RaceError> {
    let obj = common::fixture(fixture);
    let maps = obj.create_maps(cpus.max(1)).unwrap();
    let program = obj.vm_program(prog, &maps).unwrap();
    Explorer::new(
        program,
        RaceConfig {
            cpus,
            runs,
            input: Input::packet(vec![0u8; 64]),
            ..RaceConfig::default()
        },
    )
}

fn counter_value(state: &bpfvm::race::MapsState, map: &str) -> u64 {
    let img = state.0.iter().find(|m| m.name == map).unwrap();
    let (_, v) = &img.entries.as_ref().unwrap()[0];
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

#[test]
fn the_shared_counter_loses_an_update_in_four_steps() {
    let x = explorer("race_counter", "shared_counter", 2, 1).unwrap();
    let e = x.exhaustive().unwrap();
    assert!(e.complete);
    let lost = e.lost_update.as_ref().expect("a lost update");
    let steps = &lost.execution.steps;
    assert!(steps.len() <= 4, "{} steps", steps.len());
    assert_eq!(counter_value(&lost.execution.state, "shared"), 1);
    assert_eq!(e.serial_states.len(), 1);
    assert_eq!(counter_value(&e.serial_states[0], "shared"), 2);
    // The conflict: one CPU's stale read, the other's write, the first's overwrite.
    let c = lost.conflict.as_ref().unwrap();
    let (r, w, o) = (
        &steps[c.stale_read],
        &steps[c.other_write],
        &steps[c.overwrite.unwrap()],
    );
    assert_eq!(r.point.kind, AccessKind::Read);
    assert_eq!(w.point.kind, AccessKind::Write);
    assert_eq!(o.point.kind, AccessKind::Write);
    assert_eq!(r.cpu, o.cpu);
    assert_ne!(r.cpu, w.cpu);
    assert_eq!(r.before, 0u64.to_le_bytes());
    assert_eq!(o.after, 1u64.to_le_bytes());
    // The source line of the read is the `+=`.
    let line = x.program().source_line(r.point.pc).unwrap();
    assert!(line.contains("*count += 1"), "{line}");
    // A data race is reported too.
    assert!(!e.data_races.is_empty());
    // The schedule replays the lost update exactly.
    let again = x.replay(&lost.execution.schedule).unwrap();
    assert_eq!(again.state, lost.execution.state);
    assert_eq!(again.steps, lost.execution.steps);
}

#[test]
fn partial_order_reduction_explores_fewer_schedules_and_finds_the_same() {
    let x = explorer("race_counter", "shared_counter", 2, 1).unwrap();
    let with = x.exhaustive().unwrap();
    let obj = common::fixture("race_counter");
    let maps = obj.create_maps(2).unwrap();
    let full = Explorer::new(
        obj.vm_program("shared_counter", &maps).unwrap(),
        RaceConfig {
            input: Input::packet(vec![0u8; 64]),
            partial_order_reduction: false,
            ..RaceConfig::default()
        },
    )
    .unwrap()
    .exhaustive()
    .unwrap();
    // 4 steps, 2 per CPU: C(4,2) = 6 interleavings without reduction.
    assert_eq!(full.schedules, 6);
    assert!(
        with.schedules < full.schedules,
        "{} vs {}",
        with.schedules,
        full.schedules
    );
    assert!(with.lost_update.is_some() && full.lost_update.is_some());
}

#[test]
fn the_atomic_and_per_cpu_counters_lose_nothing_and_say_why() {
    let atomic = explorer("race_counter", "atomic_counter", 2, 1).unwrap();
    let e = atomic.exhaustive().unwrap();
    assert!(e.complete && e.lost_update.is_none() && e.data_races.is_empty());
    assert_eq!(counter_value(&e.serial_states[0], "atomic"), 2);
    assert!(e.verdict().contains("atomic"), "{}", e.verdict());
    assert!(atomic.find_lost_update().unwrap().is_none());

    let percpu = explorer("race_counter", "percpu_counter", 2, 1).unwrap();
    let e = percpu.exhaustive().unwrap();
    assert!(e.complete && e.lost_update.is_none() && e.data_races.is_empty());
    assert!(e.kinds.is_empty());
    assert!(e.verdict().contains("per-CPU"), "{}", e.verdict());
}

#[test]
fn three_cpus_and_two_runs_each_still_lose_updates() {
    let x = explorer("race_counter", "shared_counter", 3, 2).unwrap();
    let e = x.random(200, 7).unwrap();
    let lost = e.lost_update.expect("random schedules find it too");
    assert!(counter_value(&lost.execution.state, "shared") < 6);
    assert_eq!(counter_value(&e.serial_states[0], "shared"), 6);
}

#[test]
fn the_rate_limiter_loses_tokens() {
    let x = explorer("race_ratelimit", "rate_limit", 2, 2).unwrap();
    let e = x.exhaustive().unwrap();
    assert!(e.complete);
    let lost = e
        .lost_update
        .as_ref()
        .expect("a lost update in the rate limiter");
    assert!(e.kinds.contains(&AccessKind::HelperWrite));
    // Serially 4 packets take 4 tokens of 8: 4 left, 4 passed.
    let img = |s: &bpfvm::race::MapsState| {
        let m = s.0.iter().find(|m| m.name == "buckets").unwrap();
        let (_, v) = &m.entries.as_ref().unwrap()[0];
        (
            u64::from_le_bytes(v[..8].try_into().unwrap()),
            u64::from_le_bytes(v[8..16].try_into().unwrap()),
        )
    };
    assert_eq!(img(&e.serial_states[0]), (4, 4));
    let (tokens, passed) = img(&lost.execution.state);
    assert!(tokens > 4 || passed < 4, "{tokens} {passed}");
}

#[test]
fn bad_configurations_are_refused_clearly() {
    let e = explorer("race_counter", "shared_counter", 1, 1).unwrap_err();
    assert!(matches!(e, RaceError::Cpus { cpus: 1, .. }), "{e}");
    let e = explorer("race_counter", "shared_counter", 0, 1).unwrap_err();
    assert!(e.to_string().contains("2 to 16 CPUs"), "{e}");
    let e = explorer("race_counter", "shared_counter", 1000, 1).unwrap_err();
    assert!(matches!(e, RaceError::Cpus { cpus: 1000, .. }), "{e}");
    let e = explorer("race_counter", "shared_counter", 2, 0).unwrap_err();
    assert!(matches!(e, RaceError::Runs { .. }), "{e}");
    let e = explorer("race_counter", "shared_counter", 16, 5).unwrap_err();
    assert!(matches!(e, RaceError::Runs { .. }), "{e}");
    // A schedule naming a CPU that is not waiting.
    let x = explorer("race_counter", "shared_counter", 2, 1).unwrap();
    let e = x.replay(&"05".parse::<Schedule>().unwrap()).unwrap_err();
    assert!(e.to_string().contains("CPU 5"), "{e}");
}

#[test]
fn a_step_limit_bounds_each_schedule() {
    let obj = common::fixture("race_counter");
    let maps = obj.create_maps(2).unwrap();
    let x = Explorer::new(
        obj.vm_program("shared_counter", &maps).unwrap(),
        RaceConfig {
            input: Input::packet(vec![0u8; 64]),
            max_steps: 3,
            ..RaceConfig::default()
        },
    )
    .unwrap();
    let e = x.exhaustive().unwrap_err();
    assert!(matches!(e, RaceError::StepLimit { max: 3, .. }), "{e}");
}

#[test]
fn more_cpus_give_more_schedules_and_reduction_cuts_them() {
    // The counter's 2 accesses per CPU: (2K)! / 2^K interleavings without reduction.
    for (cpus, full) in [(2u32, 6u64), (3, 90)] {
        let count = |por: bool| {
            let obj = common::fixture("race_counter");
            let maps = obj.create_maps(cpus).unwrap();
            Explorer::new(
                obj.vm_program("shared_counter", &maps).unwrap(),
                RaceConfig {
                    cpus,
                    input: Input::packet(vec![0u8; 64]),
                    partial_order_reduction: por,
                    ..RaceConfig::default()
                },
            )
            .unwrap()
            .exhaustive()
            .unwrap()
        };
        let (with, without) = (count(true), count(false));
        assert_eq!(without.schedules, full);
        assert_eq!(without.pruned, 0);
        assert!(
            with.schedules < full,
            "{cpus} CPUs: {} of {full}",
            with.schedules
        );
        assert!(with.lost_update.is_some() && without.lost_update.is_some());
    }
}

/// `src` assembled, its first instruction (an `lddw`) made `BPF_PSEUDO_MAP_VALUE` of map 0,
/// with one shared 8-byte ARRAY value, on a structural-checks explorer of `cpus` CPUs.
fn raw_explorer(src: &str, config: RaceConfig) -> Explorer {
    use bpfvm::maps::{Map, MapSpec, MapType};
    let mut code = common::asm(src);
    code[1] = (code[1] & 0x0f) | (2 << 4);
    let map = std::sync::Arc::new(
        Map::create(MapSpec::new(MapType::Array, 4, 8, 1), config.cpus).unwrap(),
    );
    let program = bpfvm::Program::new(code, bpfvm::ProgramType::Unspecified).with_map(map);
    Explorer::new(
        program,
        RaceConfig {
            verifier: bpfvm::VerifierMode::Structural,
            ..config
        },
    )
    .unwrap()
}

#[test]
fn a_fault_in_one_interleaving_names_the_schedule_that_replays_it() {
    // Sets the value to 1 and back to 0; a CPU that reads the 1 dereferences it.
    let x = raw_explorer(
        "lddw r6, 0
         ldxdw r1, [r6]
         jeq r1, 0, +2
         ldxdw r0, [r1]
         exit
         stdw [r6], 1
         stdw [r6], 0
         mov64 r0, 0
         exit",
        RaceConfig::default(),
    );
    // Serially nothing faults.
    let (_, serial) = x.serial_states().unwrap();
    assert_eq!(serial.len(), 1);
    let e = x.exhaustive().unwrap_err();
    let RaceError::Run {
        schedule, source, ..
    } = &e
    else {
        panic!("{e}");
    };
    assert!(matches!(source, bpfvm::RunError::Fault { .. }), "{source}");
    assert!(e.to_string().contains(&schedule.to_string()), "{e}");
    let again = x.replay(schedule).unwrap_err();
    assert_eq!(again, e);
}

#[test]
fn loops_are_bounded_by_the_step_limit_and_the_budget() {
    // A loop over shared memory: every iteration is a shared access.
    let spin = raw_explorer(
        "lddw r6, 0
         ldxdw r1, [r6]
         ja -2",
        RaceConfig {
            max_steps: 100,
            budget: 1_000_000,
            ..RaceConfig::default()
        },
    );
    let e = spin.exhaustive().unwrap_err();
    // The serial baseline runs first: each run ends at its budget.
    assert!(
        matches!(
            &e,
            RaceError::SerialRun {
                source: bpfvm::RunError::BudgetExhausted { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("one after another"), "{e}");
    let e = spin.random(1, 0).unwrap_err();
    assert!(matches!(e, RaceError::SerialRun { .. }), "{e}");
    // Interleaved, the step limit comes first.
    let x = spin.replay(&Schedule::default()).unwrap_err();
    assert!(matches!(x, RaceError::StepLimit { max: 100, .. }), "{x}");
}

#[test]
fn the_documented_limits_are_the_real_ones() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/reliability.md"
    ))
    .unwrap();
    let section = doc.split("### The race explorer").nth(1).unwrap();
    let cfg = RaceConfig::default();
    for want in [
        format!("2 ..= {} (`race::MAX_CPUS`)", bpfvm::race::MAX_CPUS),
        format!("| {} (`race::MAX_TOTAL_RUNS`)", bpfvm::race::MAX_TOTAL_RUNS),
        "| 20,000 (`race::MAX_SERIAL_ORDERS`)".to_string(),
        format!("`RaceConfig::max_steps` ({})", cfg.max_steps).replace("10000", "10,000"),
        format!("`RaceConfig::budget` ({};", cfg.budget).replace("100000", "100,000"),
        format!("`RaceConfig::max_schedules` ({};", cfg.max_schedules).replace("100000", "100,000"),
        format!(
            "{} entries of one map, {} MiB",
            bpfvm::race::state::MAX_ENTRIES,
            bpfvm::race::state::MAX_STATE_BYTES >> 20
        )
        .replace("65536", "65,536"),
    ] {
        assert!(
            section.contains(&want),
            "docs/reliability.md lacks {want:?}"
        );
    }
    assert_eq!(bpfvm::race::MAX_SERIAL_ORDERS, 20_000);
}
