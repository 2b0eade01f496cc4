//! The speedup of the `scaling` workloads on 2 worker threads over 1, measured from
//! interleaved pairs so that both sides of each ratio see the same moment of a shared
//! machine: for each workload, `pairs` times, one 1-thread and one 2-thread measurement
//! (each the best of 3 repetitions of the workload), and the median of the pairs' ratios.
//!
//! `scaling_ratio [pairs] > target/scaling.txt` — lines `name median min max pairs`, read by
//! `src/bin/report.rs`.

use std::time::Instant;

use bpfvm_benches::scaling::{pool, workloads, Workload};

fn best_of_3(pool: &rayon::ThreadPool, work: &Workload) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(pool.install(|| work.run()));
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pairs: usize = std::env::args().nth(1).map_or(Ok(31), |a| a.parse())?;
    let (one, two) = (pool(1), pool(2));
    for (name, work) in workloads() {
        // Warm both pools and the workload.
        best_of_3(&one, &work);
        best_of_3(&two, &work);
        let mut ratios: Vec<f64> = (0..pairs.max(1))
            .map(|_| best_of_3(&one, &work) / best_of_3(&two, &work))
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "{name} {:.3} {:.3} {:.3} {}",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            ratios.len()
        );
    }
    Ok(())
}
