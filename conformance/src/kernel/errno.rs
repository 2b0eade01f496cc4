//! The positive errno a failed `bpf(2)` call leaves behind.

use std::fmt;

/// A Linux errno value (positive), as `bpf(2)` reports it through `errno`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

#[allow(missing_docs)] // each constant is the errno of the same name
impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const E2BIG: Errno = Errno(7);
    pub const EBADF: Errno = Errno(9);
    pub const EACCES: Errno = Errno(13);
    pub const ENOMEM: Errno = Errno(12);
    pub const EFAULT: Errno = Errno(14);
    pub const EBUSY: Errno = Errno(16);
    pub const EEXIST: Errno = Errno(17);
    pub const EINVAL: Errno = Errno(22);
    pub const ENOSPC: Errno = Errno(28);
    pub const ERANGE: Errno = Errno(34);
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// Kernel-internal `ENOTSUPP`, which user space sees from several map commands.
    pub const ENOTSUPP: Errno = Errno(524);

    /// The symbolic name, or `None` for a value outside the table above.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            7 => "E2BIG",
            9 => "EBADF",
            13 => "EACCES",
            12 => "ENOMEM",
            14 => "EFAULT",
            16 => "EBUSY",
            17 => "EEXIST",
            22 => "EINVAL",
            28 => "ENOSPC",
            34 => "ERANGE",
            95 => "EOPNOTSUPP",
            524 => "ENOTSUPP",
            _ => return None,
        })
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "errno {}", self.0),
        }
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_known_values() {
        assert_eq!(Errno::ENOTSUPP.to_string(), "ENOTSUPP (524)");
        assert_eq!(Errno(4242).to_string(), "errno 4242");
    }
}
