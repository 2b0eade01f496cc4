//! Named return values: what an XDP program ([`XdpAction`]) or a tc classifier/action
//! ([`TcAction`]) tells the kernel to do with the packet, comparable with a run's `retval`.
//!
//! ```
//! use bpfvm::{TcAction, XdpAction};
//!
//! let retval: u64 = 2; // RunOutput::retval
//! assert_eq!(retval, XdpAction::Pass);
//! assert_eq!(XdpAction::from_retval(retval), Some(XdpAction::Pass));
//! assert_eq!(XdpAction::Pass.to_string(), "XDP_PASS");
//! assert_eq!(u64::from(u32::MAX), TcAction::Unspec); // TC_ACT_UNSPEC is -1 as an int
//! ```

use std::fmt;

/// `enum xdp_action`: an XDP program's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0): a program error; the packet is dropped.
    Aborted = 0,
    /// `XDP_DROP` (1).
    Drop = 1,
    /// `XDP_PASS` (2): on to the network stack.
    Pass = 2,
    /// `XDP_TX` (3): back out of the interface it came in on.
    Tx = 3,
    /// `XDP_REDIRECT` (4): to the target a redirect helper chose.
    Redirect = 4,
}

impl XdpAction {
    /// Every action, by value.
    pub const ALL: [XdpAction; 5] = [
        XdpAction::Aborted,
        XdpAction::Drop,
        XdpAction::Pass,
        XdpAction::Tx,
        XdpAction::Redirect,
    ];

    /// The action a program's return value names (the kernel reads the low 32 bits), if any.
    pub fn from_retval(retval: u64) -> Option<XdpAction> {
        XdpAction::ALL.get(retval as u32 as usize).copied()
    }

    /// The kernel's name (`XDP_PASS`).
    pub fn name(self) -> &'static str {
        match self {
            XdpAction::Aborted => "XDP_ABORTED",
            XdpAction::Drop => "XDP_DROP",
            XdpAction::Pass => "XDP_PASS",
            XdpAction::Tx => "XDP_TX",
            XdpAction::Redirect => "XDP_REDIRECT",
        }
    }
}

/// `TC_ACT_*`: a tc classifier's or action's verdict (an `int`; `TC_ACT_UNSPEC` is -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum TcAction {
    /// `TC_ACT_UNSPEC` (-1): the default action configured for the qdisc.
    Unspec = -1,
    /// `TC_ACT_OK` (0): deliver the packet.
    Ok = 0,
    /// `TC_ACT_RECLASSIFY` (1).
    Reclassify = 1,
    /// `TC_ACT_SHOT` (2): drop the packet.
    Shot = 2,
    /// `TC_ACT_PIPE` (3): on to the next action.
    Pipe = 3,
    /// `TC_ACT_STOLEN` (4): consumed by the action.
    Stolen = 4,
    /// `TC_ACT_QUEUED` (5).
    Queued = 5,
    /// `TC_ACT_REPEAT` (6).
    Repeat = 6,
    /// `TC_ACT_REDIRECT` (7): to the target `bpf_redirect` chose.
    Redirect = 7,
    /// `TC_ACT_TRAP` (8).
    Trap = 8,
}

impl TcAction {
    /// Every action, by value.
    pub const ALL: [TcAction; 10] = [
        TcAction::Unspec,
        TcAction::Ok,
        TcAction::Reclassify,
        TcAction::Shot,
        TcAction::Pipe,
        TcAction::Stolen,
        TcAction::Queued,
        TcAction::Repeat,
        TcAction::Redirect,
        TcAction::Trap,
    ];

    /// The action a program's return value names (as the kernel, the low 32 bits as an
    /// `int`), if any.
    pub fn from_retval(retval: u64) -> Option<TcAction> {
        let v = retval as u32 as i32;
        TcAction::ALL.into_iter().find(|a| *a as i32 == v)
    }

    /// The kernel's name (`TC_ACT_SHOT`).
    pub fn name(self) -> &'static str {
        match self {
            TcAction::Unspec => "TC_ACT_UNSPEC",
            TcAction::Ok => "TC_ACT_OK",
            TcAction::Reclassify => "TC_ACT_RECLASSIFY",
            TcAction::Shot => "TC_ACT_SHOT",
            TcAction::Pipe => "TC_ACT_PIPE",
            TcAction::Stolen => "TC_ACT_STOLEN",
            TcAction::Queued => "TC_ACT_QUEUED",
            TcAction::Repeat => "TC_ACT_REPEAT",
            TcAction::Redirect => "TC_ACT_REDIRECT",
            TcAction::Trap => "TC_ACT_TRAP",
        }
    }
}

macro_rules! compare_with_retval {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl PartialEq<$t> for u64 {
            /// A return value equals an action when the action is what it names.
            fn eq(&self, action: &$t) -> bool {
                <$t>::from_retval(*self) == Some(*action)
            }
        }
        impl PartialEq<u64> for $t {
            fn eq(&self, retval: &u64) -> bool {
                retval == self
            }
        }
    };
}
compare_with_retval!(XdpAction);
compare_with_retval!(TcAction);

impl From<XdpAction> for u64 {
    fn from(a: XdpAction) -> u64 {
        a as u64
    }
}

impl From<TcAction> for u64 {
    /// The value a program returns for it (`TC_ACT_UNSPEC` as the 32-bit -1).
    fn from(a: TcAction) -> u64 {
        u64::from(a as i32 as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_return_values() {
        for a in XdpAction::ALL {
            assert_eq!(XdpAction::from_retval(u64::from(a)), Some(a));
            assert_eq!(u64::from(a), a);
        }
        for a in TcAction::ALL {
            assert_eq!(TcAction::from_retval(u64::from(a)), Some(a));
            assert_eq!(u64::from(a), a);
        }
        assert_eq!(XdpAction::from_retval(5), None);
        assert_eq!(TcAction::from_retval(9), None);
        // The kernel reads an int: high bits do not matter.
        assert_eq!(
            XdpAction::from_retval(0xffff_ffff_0000_0001),
            Some(XdpAction::Drop)
        );
        assert_eq!(TcAction::from_retval(u64::MAX), Some(TcAction::Unspec));
        assert!(2u64 != XdpAction::Drop);
        assert_eq!(TcAction::Shot.to_string(), "TC_ACT_SHOT");
    }
}
