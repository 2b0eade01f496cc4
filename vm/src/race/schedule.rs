//! [`Schedule`]: which CPU makes each shared access, as a short printable string.

use std::fmt;

use super::RaceError;

/// Digits naming CPUs in a schedule string: `0-9` then `a-z` (so at most 36 CPUs).
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The CPUs granted the shared accesses of one explored run, in order: step `i` is made by
/// CPU `steps()[i]`. Printed as one character per step (`0-9`, then `a-z` for CPUs 10 to
/// 35), e.g. `0110`: CPU 0 makes the first shared access, CPU 1 the next two, CPU 0 the
/// last. Between its shared accesses a CPU runs its private instructions alone, so the
/// string replays the run exactly ([`crate::race::Explorer::replay`]).
///
/// ```
/// use bpfvm::race::Schedule;
/// let s: Schedule = "0110".parse().unwrap();
/// assert_eq!(s.steps(), &[0, 1, 1, 0]);
/// assert_eq!(s.to_string(), "0110");
/// assert!("01x!".parse::<Schedule>().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Schedule(Vec<u8>);

impl Schedule {
    /// The schedule of these CPU numbers (each below 36).
    pub fn new(steps: Vec<u8>) -> Schedule {
        Schedule(steps)
    }

    /// The CPU of each step.
    pub fn steps(&self) -> &[u8] {
        &self.0
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no step.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in &self.0 {
            let d = DIGITS.get(c as usize).copied().unwrap_or(b'?');
            write!(f, "{}", d as char)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Schedule {
    type Err = RaceError;

    fn from_str(s: &str) -> Result<Schedule, RaceError> {
        s.trim()
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                DIGITS
                    .iter()
                    .position(|&d| d == b.to_ascii_lowercase())
                    .map(|p| p as u8)
                    .ok_or_else(|| RaceError::BadSchedule {
                        reason: format!(
                            "character {} ({:?}) is not a CPU digit (0-9, a-z)",
                            i + 1,
                            b as char
                        ),
                    })
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Schedule)
    }
}

/// The digit naming `cpu` in schedules and timelines.
pub fn cpu_digit(cpu: usize) -> char {
    DIGITS.get(cpu).map_or('?', |&d| d as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_print_and_parse_back() {
        let s = Schedule::new(vec![0, 1, 10, 35]);
        assert_eq!(s.to_string(), "01az");
        assert_eq!("01AZ".parse::<Schedule>().unwrap(), s);
        let e = "0-1".parse::<Schedule>().unwrap_err().to_string();
        assert!(e.contains("character 2"), "{e}");
    }
}
