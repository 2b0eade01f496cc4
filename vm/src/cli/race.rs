//! `bpfvm race`: the interleaving explorer ([`bpfvm::race`]) on a program of an object:
//! the verdict, the shortest schedule that loses an update as a K-column timeline, the maps
//! before and after, data races; `--json` as one object, `--report` as an SVG timeline.

use std::io::Write;

use bpfvm::loader::MapDefinition;
use bpfvm::maps::MapMemory;
use bpfvm::race::{
    report, AccessKind, Execution, Exploration, Explorer, MapsState, RaceConfig, Schedule, Step,
};
use bpfvm::{EngineKind, VerifierMode};
use serde_json::{json, Value};

use super::args::RaceArgs;
use super::{input, object, CliError};

/// Runs `bpfvm race` with `args`, writing the output to `out`.
pub fn race(args: &RaceArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let path = args.object.as_path();
    let object::ChosenProgram {
        object: obj,
        name,
        run_type,
        prog_type,
        target_btf,
    } = object::open_program(
        path,
        &args.load,
        args.prog.as_deref(),
        args.prog_type.as_deref(),
    )?;
    let input = input::program_input(run_type, args.data.as_deref())?;
    // Per map, as `bpfvm run`: a map only other programs use does not stop this one.
    let (obj, maps) = object::create_maps_per_map(obj, path, args.cpus, &MapMemory::default())?;
    let def = object::choose_program(&obj, path, Some(&name))?;
    let program = object::program(&obj, def, &maps, EngineKind::Interpreter, prog_type)?;
    let failed = |source| CliError::Race {
        program: def.name.to_string(),
        source: Box::new(source),
    };
    let config = RaceConfig {
        cpus: args.cpus,
        runs: args.runs,
        input,
        budget: args.budget,
        // `--schedules N` runs N random schedules, whatever the exhaustive cap.
        max_schedules: args.max_schedules.max(args.schedules.unwrap_or(0)),
        seed: args.seed,
        partial_order_reduction: !args.no_reduction,
        verifier: VerifierMode::Kernel,
        privilege: super::args::privilege(&args.privileged),
        target_btf,
        ..RaceConfig::default()
    };
    let explorer = Explorer::new(program, config).map_err(failed)?;
    let title = format!("{} in {}", def.name, path.display());
    if let Some(s) = &args.schedule {
        let schedule: Schedule = s.parse().map_err(failed)?;
        let exec = explorer.replay(&schedule).map_err(failed)?;
        let (_, serial) = explorer.serial_states().map_err(failed)?;
        let text = replay_text(&explorer, &exec, &serial, &title);
        if args.json {
            let doc = json!({
                "program": def.name.to_string(),
                "cpus": args.cpus,
                "runs": args.runs,
                "schedule": exec.schedule.to_string(),
                "lost_update": !serial.contains(&exec.state),
                "steps": steps_json(&explorer, &exec),
                "maps_after": state_json(&exec.state, obj.maps()),
            });
            return write_json(out, &doc);
        }
        return out.write_all(text.as_bytes()).map_err(CliError::stdout);
    }
    let e = match args.schedules {
        Some(n) => explorer.random(n, args.seed),
        None => explorer.exhaustive(),
    }
    .map_err(failed)?;
    // Whole keys and values decoded with the object's BTF where it has their types.
    let decode = |name: &str, key: bool, bytes: &[u8]| {
        let def = obj.maps().iter().find(|d| d.name.as_ref() == name)?;
        let v = if key {
            obj.decode_key(def, bytes)
        } else {
            obj.decode_value(def, bytes.get(..def.value_size as usize)?)
        }?;
        Some(v.to_string())
    };
    if args.json {
        write_json(
            out,
            &exploration_json(&explorer, &e, def.name.as_ref(), obj.maps()),
        )?;
    } else {
        out.write_all(report::text_with(&explorer, &e, &title, &decode).as_bytes())
            .map_err(CliError::stdout)?;
    }
    if let Some(file) = &args.report {
        let svg = svg(&explorer, &e, &title);
        std::fs::write(file, svg).map_err(|err| CliError::io(file, err))?;
        eprintln!("bpfvm: report written to {}", file.display());
    }
    Ok(())
}

fn write_json(out: &mut dyn Write, doc: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into());
    writeln!(out, "{text}").map_err(CliError::stdout)
}

/// The text of a replayed schedule.
fn replay_text(explorer: &Explorer, exec: &Execution, serial: &[MapsState], title: &str) -> String {
    let mut out = format!(
        "bpfvm race: {title}: schedule {} ({} shared steps)\n",
        exec.schedule,
        exec.steps.len()
    );
    let lost = !serial.contains(&exec.state);
    out.push_str(if lost {
        "lost update: no serial order of the runs ends in this state\n"
    } else {
        "no lost update: a serial order of the runs ends in this state\n"
    });
    for (i, s) in exec.steps.iter().enumerate() {
        out.push_str(&format!(
            "  {:>4}  CPU {}  {} {}  at {}\n",
            i + 1,
            s.cpu,
            report::action_text(s),
            explorer.describe(s),
            report::where_text(explorer, s)
        ));
    }
    out
}

fn kind_name(k: AccessKind) -> &'static str {
    match k {
        AccessKind::Read => "read",
        AccessKind::Write => "write",
        AccessKind::Atomic => "atomic",
        AccessKind::HelperRead => "helper_read",
        AccessKind::HelperWrite => "helper_write",
    }
}

fn step_json(explorer: &Explorer, s: &Step) -> Value {
    json!({
        "cpu": s.cpu,
        "run": s.run,
        "kind": kind_name(s.point.kind),
        "helper": s.point.helper,
        "insn": s.point.pc,
        "source": explorer.program().source_line(s.point.pc),
        "where": explorer.describe(s),
        "key": s.key.as_deref().map(hex),
        "before": hex(&s.before),
        "after": hex(&s.after),
    })
}

fn steps_json(explorer: &Explorer, exec: &Execution) -> Value {
    Value::Array(exec.steps.iter().map(|s| step_json(explorer, s)).collect())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn state_json(s: &MapsState, _defs: &[MapDefinition]) -> Value {
    Value::Array(
        s.0.iter()
            .filter_map(|m| {
                let entries = m.entries.as_ref()?;
                Some(json!({
                    "name": m.name,
                    "entries": entries.iter().map(|(k, v)| json!({"key": hex(k), "value": hex(v)})).collect::<Vec<_>>(),
                }))
            })
            .collect(),
    )
}

fn exploration_json(
    explorer: &Explorer,
    e: &Exploration,
    program: &str,
    defs: &[MapDefinition],
) -> Value {
    let c = explorer.config();
    let lost = e.lost_update.as_ref().map(|l| {
        let x = &l.execution;
        json!({
            "schedule": x.schedule.to_string(),
            "steps": steps_json(explorer, x),
            "conflict": l.conflict.as_ref().map(|cf| json!({
                "stale_read": cf.stale_read,
                "other_write": cf.other_write,
                "overwrite": cf.overwrite,
            })),
            "maps_after": state_json(&x.state, defs),
        })
    });
    let races: Vec<Value> = e
        .data_races
        .iter()
        .map(|r| {
            json!({
                "schedule": r.schedule.to_string(),
                "first": step_json(explorer, &r.first),
                "second": step_json(explorer, &r.second),
            })
        })
        .collect();
    json!({
        "program": program,
        "cpus": c.cpus,
        "runs": c.runs,
        "mode": match e.mode {
            bpfvm::race::Mode::Exhaustive => "exhaustive".to_string(),
            bpfvm::race::Mode::Random { seed } => format!("random:{seed}"),
        },
        "complete": e.complete,
        "schedules": e.schedules,
        "pruned": e.pruned,
        "serial_orders": e.serial_orders,
        "verdict": e.verdict(),
        "lost_update": lost,
        "data_races": races,
        "maps_before": state_json(&e.initial, defs),
        "serial_results": e.serial_states.iter().map(|s| state_json(s, defs)).collect::<Vec<_>>(),
    })
}

/// Column width, row height and margins of the SVG timeline.
const COL_W: f64 = 300.0;
const ROW_H: f64 = 22.0;
const TOP: f64 = 70.0;
const LEFT: f64 = 50.0;
/// Steps drawn.
const MAX_ROWS: usize = 200;

/// The timeline of the lost update (or a note that there is none) as SVG.
pub fn svg(explorer: &Explorer, e: &Exploration, title: &str) -> String {
    use super::report::escape;
    let k = explorer.config().cpus as usize;
    let steps: &[Step] = e
        .lost_update
        .as_ref()
        .map_or(&[], |l| &l.execution.steps[..]);
    let rows = steps.len().min(MAX_ROWS);
    let width = LEFT + COL_W * k as f64 + 20.0;
    let height = TOP + ROW_H * (rows as f64 + 1.0) + 40.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"monospace\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    s.push_str(&format!(
        "<text x=\"10\" y=\"22\" font-size=\"16\">{}</text>\n<text x=\"10\" y=\"44\">{}</text>\n",
        escape(&format!("bpfvm race: {title}")),
        escape(&e.verdict())
    ));
    let conflict: Vec<usize> = e
        .lost_update
        .as_ref()
        .and_then(|l| l.conflict.as_ref())
        .map(|c| {
            [Some(c.stale_read), Some(c.other_write), c.overwrite]
                .into_iter()
                .flatten()
                .collect()
        })
        .unwrap_or_default();
    for cpu in 0..k {
        let x = LEFT + COL_W * cpu as f64;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\">CPU {cpu}</text>\n\
             <line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ccc\"/>\n",
            x + 6.0,
            TOP - 6.0,
            TOP,
            TOP + ROW_H * rows as f64
        ));
    }
    for (i, st) in steps.iter().take(rows).enumerate() {
        let y = TOP + ROW_H * i as f64;
        let x = LEFT + COL_W * st.cpu as f64;
        let fill = if conflict.contains(&i) {
            "#f8d7da"
        } else {
            "#e8eef7"
        };
        let label = format!("{} {}", report::action_text(st), explorer.describe(st));
        let tip = report::where_text(explorer, st);
        s.push_str(&format!(
            "<g><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{fill}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text></g>\n<text x=\"8\" y=\"{}\" fill=\"#888\">{}</text>\n",
            escape(&tip),
            x + 2.0,
            y + 2.0,
            COL_W - 4.0,
            ROW_H - 4.0,
            x + 8.0,
            y + 15.0,
            escape(&cut(&label, 40)),
            y + 15.0,
            i + 1
        ));
    }
    s.push_str("</svg>\n");
    s
}

fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}
