//! Events a run produced: the records of every ring buffer and the samples (and lost-sample
//! records) of every perf event array, read once after the runs as a user-space consumer
//! reads them — ring buffers in order, perf buffers per CPU — and shown by the text output
//! and `--json`.
//!
//! Before the runs, [`open_perf_buffers`] attaches a perf buffer of [`PERF_PAGES`] pages to
//! each CPU's index of every perf event array, as libbpf's `perf_buffer__new` does (without
//! one, `bpf_perf_event_output` answers `-ENOENT`). The records read are at most what the
//! rings hold, so holding them is bounded by the maps' memory limit.

use bpfvm::loader::{MapDefinition, ObjectMaps};
use bpfvm::maps::{MapType, PerfRecord};

use super::hex::hex;
use super::CliError;

/// Data pages of each perf buffer the command line opens (32 KiB of samples per CPU).
pub const PERF_PAGES: u32 = 8;

/// Records of one map's events shown in the text output (all are in `--json`).
pub const SHOWN_RECORDS: usize = 32;

/// Bytes of a record shown in the text output (all are in `--json`).
pub const SHOWN_RECORD_BYTES: usize = 64;

/// One record as a consumer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A ring buffer record's data, or a perf sample's raw data (with the kernel's padding
    /// to a multiple of 8 bytes after the 4-byte size).
    Sample(Vec<u8>),
    /// A perf lost-samples record: this many samples did not fit.
    Lost(u64),
}

/// The records of one ring (a ring buffer, or the perf buffer at one index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// For a perf buffer: its index in the map and the CPU its event belongs to.
    pub perf_index: Option<(u32, u32)>,
    /// The records, oldest first.
    pub records: Vec<Record>,
    /// Perf: samples lost after the last record (the kernel writes their lost-samples record
    /// only before a later sample that fits, so a consumer has not seen them yet).
    pub pending_lost: u64,
}

/// The events of one RINGBUF or PERF_EVENT_ARRAY map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEvents {
    /// The map's name.
    pub map: String,
    /// `ringbuf` or `perf_event_array`.
    pub map_type: &'static str,
    /// One stream for a ring buffer; one per opened index for a perf event array.
    pub streams: Vec<Stream>,
}

/// Opens a perf buffer on every CPU of every perf event array of `maps`.
pub fn open_perf_buffers(maps: &ObjectMaps) -> Result<(), CliError> {
    for (def, map) in maps.iter() {
        if map.map_type() == MapType::PerfEventArray {
            map.perf_open_all_cpus(PERF_PAGES)
                .map_err(|source| fail(def, source))?;
        }
    }
    Ok(())
}

fn fail(def: &MapDefinition, source: bpfvm::maps::MapError) -> CliError {
    CliError::Map {
        map: def.name.to_string(),
        source,
    }
}

/// Reads (and consumes) every record of every event map of `maps`, in the object's order.
pub fn read_all(maps: &ObjectMaps) -> Result<Vec<MapEvents>, CliError> {
    let mut out = Vec::new();
    for (def, map) in maps.iter() {
        let streams = match map.map_type() {
            MapType::Ringbuf => {
                let records = map.ringbuf_drain().map_err(|e| fail(def, e))?;
                vec![Stream {
                    perf_index: None,
                    records: records.into_iter().map(Record::Sample).collect(),
                    pending_lost: 0,
                }]
            }
            MapType::PerfEventArray => {
                let mut streams = Vec::new();
                for index in 0..map.max_entries() {
                    let Some(cpu) = map.perf_event_cpu(index) else {
                        continue;
                    };
                    let records = map.perf_read(index).map_err(|e| fail(def, e))?;
                    let pending_lost = map.perf_pending_lost(index).map_err(|e| fail(def, e))?;
                    streams.push(Stream {
                        perf_index: Some((index, cpu.0)),
                        pending_lost,
                        records: records
                            .into_iter()
                            .map(|r| match r {
                                PerfRecord::Sample(s) => Record::Sample(s),
                                PerfRecord::Lost(n) => Record::Lost(n),
                            })
                            .collect(),
                    });
                }
                streams
            }
            _ => continue,
        };
        out.push(MapEvents {
            map: def.name.to_string(),
            map_type: def.map_type_name(),
            streams,
        });
    }
    Ok(out)
}

impl MapEvents {
    /// Samples and lost samples (in records and pending) over all streams.
    pub fn totals(&self) -> (u64, u64) {
        let mut samples = 0;
        let mut lost: u64 = self.streams.iter().map(|s| s.pending_lost).sum();
        for r in self.streams.iter().flat_map(|s| &s.records) {
            match r {
                Record::Sample(_) => samples += 1,
                Record::Lost(n) => lost += n,
            }
        }
        (samples, lost)
    }

    /// The text block: a title line, then per stream at most [`SHOWN_RECORDS`] records in
    /// all, each cut to [`SHOWN_RECORD_BYTES`].
    pub fn render(&self) -> String {
        let (samples, lost) = self.totals();
        let mut out = format!(
            "events of {} ({}): {samples} record",
            self.map, self.map_type
        );
        if samples != 1 {
            out.push('s');
        }
        if lost > 0 {
            out.push_str(&format!(", {lost} lost"));
        }
        out.push('\n');
        let mut shown = 0;
        for s in &self.streams {
            if let Some((index, cpu)) = s.perf_index {
                if s.records.is_empty() && s.pending_lost == 0 {
                    continue;
                }
                out.push_str(&format!("  index {index} (cpu {cpu}):"));
                if s.pending_lost > 0 {
                    out.push_str(&format!(
                        " {} sample(s) lost at the end (the buffer was full)",
                        s.pending_lost
                    ));
                }
                out.push('\n');
            }
            for (i, r) in s.records.iter().enumerate() {
                if shown == SHOWN_RECORDS {
                    break;
                }
                shown += 1;
                let line = match r {
                    Record::Sample(d) if d.len() > SHOWN_RECORD_BYTES => {
                        format!("{} ... ({} bytes)", hex(&d[..SHOWN_RECORD_BYTES]), d.len())
                    }
                    Record::Sample(d) => format!("{} ({} bytes)", hex(d), d.len()),
                    Record::Lost(n) => format!("lost {n} sample{}", if *n == 1 { "" } else { "s" }),
                };
                out.push_str(&format!("    #{i} {line}\n"));
            }
        }
        let total = self.streams.iter().map(|s| s.records.len()).sum::<usize>();
        if total > shown {
            out.push_str(&format!(
                "  ... {} more record(s) in --json\n",
                total - shown
            ));
        }
        out
    }

    /// The JSON value: `{"map", "type", "records": [HEX...]}` for a ring buffer,
    /// `{"map", "type", "buffers": [{"index", "cpu", "records": [{"sample": HEX} |
    /// {"lost": N}], "pending_lost": N}]}` for a perf event array (`pending_lost`: samples
    /// lost after the last record).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let record = |r: &Record| match r {
            Record::Sample(d) => json!({ "sample": hex(d) }),
            Record::Lost(n) => json!({ "lost": n }),
        };
        match self.streams.as_slice() {
            [Stream {
                perf_index: None,
                records,
                ..
            }] => json!({
                "map": self.map,
                "type": self.map_type,
                "records": records
                    .iter()
                    .map(|r| match r {
                        Record::Sample(d) => json!(hex(d)),
                        Record::Lost(n) => json!({ "lost": n }),
                    })
                    .collect::<Vec<_>>(),
            }),
            streams => json!({
                "map": self.map,
                "type": self.map_type,
                "buffers": streams
                    .iter()
                    .map(|s| {
                        let (index, cpu) = s.perf_index.unwrap_or((0, 0));
                        json!({
                            "index": index,
                            "cpu": cpu,
                            "records": s.records.iter().map(record).collect::<Vec<_>>(),
                            "pending_lost": s.pending_lost,
                        })
                    })
                    .collect::<Vec<_>>(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perf() -> MapEvents {
        MapEvents {
            map: "perf".into(),
            map_type: "perf_event_array",
            streams: vec![
                Stream {
                    perf_index: Some((0, 0)),
                    records: vec![Record::Sample(vec![1, 2, 3, 4]), Record::Lost(3)],
                    pending_lost: 0,
                },
                Stream {
                    perf_index: Some((1, 1)),
                    records: vec![],
                    pending_lost: 0,
                },
                Stream {
                    perf_index: Some((2, 2)),
                    records: vec![],
                    pending_lost: 5,
                },
            ],
        }
    }

    #[test]
    fn perf_events_render_per_cpu_with_losses() {
        let e = perf();
        assert_eq!(e.totals(), (1, 8));
        assert_eq!(
            e.render(),
            "events of perf (perf_event_array): 1 record, 8 lost\n  index 0 (cpu 0):\n    \
             #0 01020304 (4 bytes)\n    #1 lost 3 samples\n  index 2 (cpu 2): 5 sample(s) \
             lost at the end (the buffer was full)\n"
        );
        assert_eq!(e.to_json()["buffers"][2]["pending_lost"], 5);
        let j = e.to_json();
        assert_eq!(j["buffers"][0]["records"][0]["sample"], "01020304");
        assert_eq!(j["buffers"][0]["records"][1]["lost"], 3);
        assert_eq!(j["buffers"][1]["cpu"], 1);
    }

    #[test]
    fn long_ring_buffers_are_cut_in_the_text_only() {
        let e = MapEvents {
            map: "rb".into(),
            map_type: "ringbuf",
            streams: vec![Stream {
                perf_index: None,
                records: (0..40u8).map(|i| Record::Sample(vec![i; 100])).collect(),
                pending_lost: 0,
            }],
        };
        let text = e.render();
        assert_eq!(text.lines().count(), 1 + SHOWN_RECORDS + 1);
        assert!(text.contains("... (100 bytes)"), "{text}");
        assert!(text.ends_with("... 8 more record(s) in --json\n"), "{text}");
        assert_eq!(e.to_json()["records"].as_array().unwrap().len(), 40);
    }
}
