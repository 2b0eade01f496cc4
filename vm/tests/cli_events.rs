//! `bpfvm run` shows the events a program produced, read after the runs as a user-space
//! consumer reads them: ring buffer records in order (a full ring drops what does not fit,
//! and the fixture counts the drops), perf buffer samples per CPU (a perf buffer is opened
//! on every CPU, 8 pages each, and a full one drops samples) — in the text output
//! and in `--json`.

use assert_cmd::Command;
use serde_json::Value;

const OBJECT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/ringbuf_logger.o"
);

/// An Ethernet + IPv4 + UDP frame, 10.0.0.1:1234 -> 10.0.0.2:53.
fn udp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([2; 6]);
    f.extend([0x08, 0x00]);
    f.extend([
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend([0x04, 0xd2, 0x00, 0x35, 0, 8, 0, 0]);
    f
}

fn run(args: &[&str]) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("bpfvm-cli-events-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One data file per call (tests run in parallel; arguments may hold paths).
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let data = dir.join(format!("udp-{n}.bin"));
    std::fs::write(&data, udp_frame()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(["run", OBJECT, "--data"])
        .arg(&data)
        .args(args)
        // The kernel loads these programs for root only (variable packet offsets without
        // CAP_PERFMON: "pointer arithmetic with it prohibited for !root"), as bpfvm does.
        .args(["--privileged", "root"])
        .output()
        .unwrap();
    std::fs::remove_file(&data).ok();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn events<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["map"] == name)
        .unwrap_or_else(|| panic!("no events of {name} in {doc}"))
}

fn u32_at(hex: &str, at: usize) -> u32 {
    u32::from_str_radix(&hex[at * 2..at * 2 + 8], 16)
        .unwrap()
        .swap_bytes()
}

#[test]
fn ring_buffer_records_come_out_in_order_and_a_full_ring_drops() {
    // 4 CPUs x 30 runs of 48-byte records (8-byte header + 40) into a 4096-byte ring: the
    // first 85 fit, the other 35 are dropped and counted in the per-CPU `lost` array.
    let args = ["--prog", "xdp_ringbuf_logger", "--repeat", "30", "--json"];
    let doc: Value = serde_json::from_slice(&run(&args)).unwrap();
    let rb = events(&doc, "events");
    assert_eq!(rb["type"], "ringbuf");
    let records = rb["records"].as_array().unwrap();
    assert_eq!(records.len(), 85);
    for r in records {
        let r = r.as_str().unwrap();
        assert_eq!(r.len(), 80, "40 bytes");
        assert_eq!(u32_at(r, 0), 1, "KIND_FLOW");
        assert_eq!(u32_at(r, 4), 42, "frame length");
    }
    let lost = doc["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "lost")
        .unwrap();
    let total: u64 = lost["entries"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            u64::from_str_radix(v.as_str().unwrap(), 16)
                .unwrap()
                .swap_bytes()
        })
        .sum();
    assert_eq!(total, 35);
    // The perf event array is there, with its per-CPU buffers and nothing in them.
    let perf = events(&doc, "perf_events");
    let buffers = perf["buffers"].as_array().unwrap();
    assert_eq!(buffers.len(), 4);
    assert!(buffers.iter().all(|b| b["records"] == Value::Array(vec![])));
}

#[test]
fn perf_samples_come_out_per_cpu_and_a_full_buffer_drops() {
    // 60-byte samples (40-byte event + 14-byte Ethernet header + padding) take 72 bytes of a
    // 32 KiB buffer: 455 fit per CPU, the other 45 of 500 runs are lost.
    let args = [
        "--prog",
        "xdp_perf_logger",
        "--cpus",
        "2",
        "--repeat",
        "500",
    ];
    let doc: Value = serde_json::from_slice(&run(&[&args[..], &["--json"]].concat())).unwrap();
    let buffers = events(&doc, "perf_events")["buffers"].as_array().unwrap();
    assert_eq!(buffers.len(), 2);
    for (cpu, b) in buffers.iter().enumerate() {
        assert_eq!(b["cpu"], cpu);
        assert_eq!(b["index"], cpu);
        let records = b["records"].as_array().unwrap();
        let samples: Vec<&str> = records
            .iter()
            .filter_map(|r| r["sample"].as_str())
            .collect();
        assert_eq!(samples.len(), 455);
        assert!(
            samples.iter().all(|s| u32_at(s, 16) == cpu as u32),
            "the cpu field"
        );
        assert!(
            samples.iter().all(|s| s[80..92] == *"ffffffffffff"),
            "the Ethernet header"
        );
        // The kernel writes a lost-samples record before the next sample that fits; none
        // fits once the consumer stops reading, so the 45 losses are pending, not records.
        let lost: u64 = records.iter().filter_map(|r| r["lost"].as_u64()).sum();
        assert_eq!(lost, 0);
        assert_eq!(b["pending_lost"], 45);
    }
    // The text names the counts and shows the first records.
    let text = String::from_utf8(run(&args)).unwrap();
    assert!(
        text.contains(
            "events of perf_events (perf_event_array): 910 records, 90 lost\n  index 0 \
             (cpu 0): 45 sample(s) lost at the end (the buffer was full)\n    #0 01000000"
        ),
        "{text}"
    );
    assert!(text.contains("... 878 more record(s) in --json"), "{text}");
    assert!(text.contains("map events (ringbuf, key 0 B, value 0 B, max_entries 4096)\n  (no entries: its events are listed below)"), "{text}");
}

/// `--explain` tells what a consumer reads from each event map and why per-CPU perf buffers
/// have no order between CPUs; `--report` draws records (and lost samples) per buffer.
#[test]
fn explain_and_report_show_the_events() {
    let text = String::from_utf8(run(&[
        "--prog",
        "xdp_perf_logger",
        "--cpus",
        "2",
        "--repeat",
        "3",
        "--explain",
    ]))
    .unwrap();
    assert!(
        text.contains("events: perf_events (perf_event_array)"),
        "{text}"
    );
    assert!(text.contains("one buffer per CPU"), "{text}");
    assert!(
        text.contains("index 0 (cpu 0):") && text.contains("index 1 (cpu 1):"),
        "{text}"
    );
    let svg_path = std::env::temp_dir().join(format!("bpfvm-events-{}.svg", std::process::id()));
    let svg_arg = svg_path.to_str().unwrap();
    run(&[
        "--prog",
        "xdp_ringbuf_logger",
        "--cpus",
        "4",
        "--repeat",
        "30",
        "--report",
        svg_arg,
    ]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    std::fs::remove_file(&svg_path).ok();
    assert!(svg.contains("events of events (ringbuf)"), "{svg}");
    assert!(
        svg.contains("all cpus: 85 records"),
        "the ring's 85 records"
    );
}
