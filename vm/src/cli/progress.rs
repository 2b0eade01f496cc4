//! A progress bar on stderr for long runs, drawn only when stderr is a terminal.
//!
//! Workers add to a shared counter; a drawing thread shows the bar once the run has taken
//! longer than [`SHOW_AFTER`], and clears it at the end, so short runs and pipes print
//! nothing.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a run must take before the bar appears.
pub const SHOW_AFTER: Duration = Duration::from_millis(500);
/// Width of the bar in characters.
const WIDTH: usize = 40;

/// A shared run counter and, when stderr is a terminal, the thread that draws it.
#[derive(Debug)]
pub struct Progress {
    done: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts tracking `total` runs; draws only when stderr is a terminal.
    pub fn start(total: u64) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let drawer = std::io::stderr().is_terminal().then(|| {
            let (done, finished) = (done.clone(), finished.clone());
            std::thread::spawn(move || draw_loop(&done, &finished, total))
        });
        Progress {
            done,
            finished,
            drawer,
        }
    }

    /// Records `n` more finished runs.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Stops the drawing thread and clears the bar.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.finished.store(true, Ordering::Relaxed);
        if let Some(h) = self.drawer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The bar for `done` of `total` runs: `[#####.....]  50%  5/10 runs`.
pub fn bar(done: u64, total: u64) -> String {
    let frac = if total == 0 {
        1.0
    } else {
        (done.min(total) as f64) / (total as f64)
    };
    let filled = (frac * WIDTH as f64) as usize;
    format!(
        "[{}{}] {:3.0}%  {done}/{total} runs",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        frac * 100.0
    )
}

fn draw_loop(done: &AtomicU64, finished: &AtomicBool, total: u64) {
    let start = Instant::now();
    let mut shown = false;
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() >= SHOW_AFTER {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}", bar(done.load(Ordering::Relaxed), total));
            let _ = err.flush();
            shown = true;
        }
    }
    if shown {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\r", " ".repeat(WIDTH + 40));
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_fraction_done() {
        assert!(bar(0, 10).starts_with(&format!("[{}]", ".".repeat(WIDTH))));
        assert!(bar(10, 10).starts_with(&format!("[{}]", "#".repeat(WIDTH))));
        assert!(bar(5, 10).contains(" 50%  5/10 runs"));
    }

    #[test]
    fn counting_without_a_terminal_draws_nothing_and_stops() {
        let p = Progress::start(4);
        p.add(4);
        assert_eq!(p.done.load(Ordering::Relaxed), 4);
        p.finish();
    }
}
