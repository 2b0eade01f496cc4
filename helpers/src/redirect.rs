//! The redirect helpers. Under `BPF_PROG_TEST_RUN` the kernel does not send the packet
//! anywhere: the helper records its target in the CPU's `bpf_redirect_info` and returns the
//! redirect action, which the test run reports. bpfvm records the target in the run's
//! [`Packet`](crate::Packet) ([`Packet::redirect`](crate::Packet::redirect)) so a test can
//! see where the packet would have gone.
//!
//! | id | helper | program types | returns |
//! |---|---|---|---|
//! | 23 | `bpf_redirect(ifindex, flags)` | XDP | `XDP_REDIRECT`; `XDP_ABORTED` for any flag |
//! | 23 | `bpf_redirect(ifindex, flags)` | tc | `TC_ACT_REDIRECT`; `TC_ACT_SHOT` for a flag other than `BPF_F_INGRESS` |
//! | 51 | `bpf_redirect_map(map, key, flags)` | XDP | `XDP_REDIRECT` when the map has `key` (or with `BPF_F_BROADCAST` on a device map); else the action in the low two bits of `flags`; `XDP_ABORTED` for unknown flags |
//! | 152 | `bpf_redirect_neigh(ifindex, params, plen, flags)` | tc | `TC_ACT_REDIRECT`; `TC_ACT_SHOT` for flags or a `plen` under 20 |
//! | 155 | `bpf_redirect_peer(ifindex, flags)` | tc | `TC_ACT_REDIRECT`; `TC_ACT_SHOT` for any flag |
//!
//! As in the kernel, a later redirect call replaces the target of an earlier one, and a
//! `bpf_redirect_map` that finds no element clears it.

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::fault::MapName;
use crate::id::HelperId;
use crate::net::PacketHelper;
use crate::net::{read_guest, require, TC, XDP, XDP_TC};
use crate::packet::PacketProgram;
use crate::registry::Registry;

/// `XDP_ABORTED`.
pub const XDP_ABORTED: u64 = 0;
/// `XDP_REDIRECT`.
pub const XDP_REDIRECT: u64 = 4;
/// `TC_ACT_SHOT`.
pub const TC_ACT_SHOT: u64 = 2;
/// `TC_ACT_REDIRECT`.
pub const TC_ACT_REDIRECT: u64 = 7;

/// `BPF_F_INGRESS`, `BPF_F_BROADCAST`, `BPF_F_EXCLUDE_INGRESS`.
const F_INGRESS: u64 = 1;
const F_BROADCAST: u64 = 1 << 3;
const F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// `XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX`: the fallback action bits of
/// `bpf_redirect_map`'s flags.
const ACTION_MASK: u64 = 3;

/// The next hop `bpf_redirect_neigh` was given (`struct bpf_redir_neigh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nexthop {
    /// `nh_family`: `AF_INET` (2) or `AF_INET6` (10).
    pub family: u32,
    /// The address, network order (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
}

/// Where a packet was redirected: what the kernel's `bpf_redirect_info` holds after the
/// helper call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedirectTarget {
    /// `bpf_redirect`: the device `ifindex`, on its egress (or, tc with `BPF_F_INGRESS`,
    /// its ingress).
    Ifindex {
        /// The device.
        ifindex: u32,
        /// `BPF_F_INGRESS` (tc only).
        ingress: bool,
    },
    /// `bpf_redirect_neigh`: the device `ifindex` through the neighbour subsystem.
    Neigh {
        /// The device.
        ifindex: u32,
        /// The next hop, when the program gave one.
        nexthop: Option<Nexthop>,
    },
    /// `bpf_redirect_peer`: the peer of the device `ifindex` (veth, netkit).
    Peer {
        /// The device.
        ifindex: u32,
    },
    /// `bpf_redirect_map` on a DEVMAP or DEVMAP_HASH: the device of element `key`.
    Device {
        /// The map's index in the program and its name.
        map: u32,
        /// The map's name.
        name: MapName,
        /// The element's key.
        key: u32,
        /// The element's device.
        ifindex: u32,
    },
    /// `bpf_redirect_map` with `BPF_F_BROADCAST`: every device of the map.
    Broadcast {
        /// The map's index in the program.
        map: u32,
        /// The map's name.
        name: MapName,
        /// `BPF_F_EXCLUDE_INGRESS`: not to the device the packet came from.
        exclude_ingress: bool,
    },
    /// `bpf_redirect_map` on a CPUMAP: processing continues on CPU `cpu`.
    Cpu {
        /// The map's index in the program.
        map: u32,
        /// The map's name.
        name: MapName,
        /// The CPU (the element's key).
        cpu: u32,
    },
    /// `bpf_redirect_map` on an XSKMAP: the AF_XDP socket of element `key`.
    Xsk {
        /// The map's index in the program.
        map: u32,
        /// The map's name.
        name: MapName,
        /// The element's key (by convention the receive queue).
        key: u32,
        /// The socket: what the host stored (its `queue_id`).
        socket: u32,
    },
}

impl std::fmt::Display for RedirectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            RedirectTarget::Ifindex { ifindex, ingress } => {
                write!(f, "ifindex {ifindex}")?;
                if ingress {
                    f.write_str(" (ingress)")?;
                }
                Ok(())
            }
            RedirectTarget::Neigh { ifindex, nexthop } => {
                write!(f, "neigh ifindex {ifindex}")?;
                match nexthop {
                    Some(Nexthop { family: 2, addr }) => {
                        write!(f, " via {}.{}.{}.{}", addr[0], addr[1], addr[2], addr[3])
                    }
                    Some(Nexthop { addr, .. }) => {
                        f.write_str(" via ")?;
                        for (i, w) in addr.chunks(2).enumerate() {
                            if i > 0 {
                                f.write_str(":")?;
                            }
                            write!(f, "{:x}", u16::from_be_bytes([w[0], w[1]]))?;
                        }
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
            RedirectTarget::Peer { ifindex } => write!(f, "peer of ifindex {ifindex}"),
            RedirectTarget::Device {
                name, key, ifindex, ..
            } => write!(f, "devmap {}[{key}] -> ifindex {ifindex}", name.as_str()),
            RedirectTarget::Broadcast {
                name,
                exclude_ingress,
                ..
            } => {
                write!(f, "broadcast to devmap {}", name.as_str())?;
                if exclude_ingress {
                    f.write_str(" (excluding ingress)")?;
                }
                Ok(())
            }
            RedirectTarget::Cpu { name, cpu, .. } => {
                write!(f, "cpumap {} -> cpu {cpu}", name.as_str())
            }
            RedirectTarget::Xsk {
                name, key, socket, ..
            } => write!(f, "xskmap {}[{key}] -> socket {socket}", name.as_str()),
        }
    }
}

/// The helpers of this module, with the program types that may call them.
pub const HELPERS: [PacketHelper; 4] = [
    PacketHelper {
        id: 23,
        name: "bpf_redirect",
        f: redirect,
        programs: XDP_TC,
    },
    PacketHelper {
        id: 51,
        name: "bpf_redirect_map",
        f: redirect_map,
        programs: XDP,
    },
    PacketHelper {
        id: 152,
        name: "bpf_redirect_neigh",
        f: redirect_neigh,
        programs: TC,
    },
    PacketHelper {
        id: 155,
        name: "bpf_redirect_peer",
        f: redirect_peer,
        programs: TC,
    },
];

/// Registers this module's helpers.
pub fn register(r: &mut Registry) {
    for h in &HELPERS {
        r.register_builtin(HelperId(h.id), h.name, h.f, None)
            .expect("packet helper ids are small");
    }
}

/// `bpf_redirect(ifindex, flags)`: XDP's and tc's versions.
pub fn redirect(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let prog = require(ctx, "bpf_redirect", XDP_TC)?;
    let (ifindex, flags) = (a[0] as u32, a[1]);
    if prog == PacketProgram::Xdp {
        if flags != 0 {
            return Ok(XDP_ABORTED);
        }
        ctx.packet.redirect = Some(RedirectTarget::Ifindex {
            ifindex,
            ingress: false,
        });
        return Ok(XDP_REDIRECT);
    }
    if flags & !F_INGRESS != 0 {
        return Ok(TC_ACT_SHOT);
    }
    ctx.packet.redirect = Some(RedirectTarget::Ifindex {
        ifindex,
        ingress: flags & F_INGRESS != 0,
    });
    Ok(TC_ACT_REDIRECT)
}

/// `bpf_redirect_map(map, key, flags)` (XDP).
pub fn redirect_map(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_redirect_map";
    require(ctx, NAME, XDP)?;
    let (idx, map) = ctx.map_arg(NAME, a[0])?;
    let Some(map_type) = map.spec().map(|s| s.map_type).filter(|t| t.is_redirect()) else {
        return Err(Box::new(HelperError::Failed {
            helper: NAME.to_string(),
            message: format!(
                "map {} is not a DEVMAP, DEVMAP_HASH, CPUMAP or XSKMAP (the kernel's verifier refuses the call)",
                map.name()
            ),
        }));
    };
    use bpfvm_maps::MapType;
    let (key, flags) = (a[1] as u32, a[2]);
    let devices = matches!(map_type, MapType::Devmap | MapType::DevmapHash);
    let flag_mask = if devices {
        F_BROADCAST | F_EXCLUDE_INGRESS
    } else {
        0
    };
    if flags & !(ACTION_MASK | flag_mask) != 0 {
        return Ok(XDP_ABORTED);
    }
    let name = MapName::new(map.name());
    let target = if flags & F_BROADCAST != 0 {
        Some(RedirectTarget::Broadcast {
            map: idx,
            name,
            exclude_ingress: flags & F_EXCLUDE_INGRESS != 0,
        })
    } else {
        map.redirect_lookup(key).map(|e| match map_type {
            MapType::Cpumap => RedirectTarget::Cpu {
                map: idx,
                name,
                cpu: e.key,
            },
            MapType::Xskmap => RedirectTarget::Xsk {
                map: idx,
                name,
                key: e.key,
                socket: e.value,
            },
            _ => RedirectTarget::Device {
                map: idx,
                name,
                key: e.key,
                ifindex: e.value,
            },
        })
    };
    // A miss clears the target of any earlier call ("the last one takes precedence").
    ctx.packet.redirect = target;
    Ok(match target {
        Some(_) => XDP_REDIRECT,
        None => flags & ACTION_MASK,
    })
}

/// `sizeof(struct bpf_redir_neigh)`.
const REDIR_NEIGH_SIZE: usize = 20;

/// `bpf_redirect_neigh(ifindex, params, plen, flags)` (tc).
pub fn redirect_neigh(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_redirect_neigh";
    require(ctx, NAME, TC)?;
    let (ifindex, params, plen, flags) = (a[0] as u32, a[1], a[2] as u32 as i32, a[3]);
    if (plen != 0 && plen < REDIR_NEIGH_SIZE as i32) || flags != 0 {
        return Ok(TC_ACT_SHOT);
    }
    let nexthop = if plen != 0 {
        let mut p = [0u8; REDIR_NEIGH_SIZE];
        read_guest(ctx, NAME, params, &mut p)?;
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&p[4..20]);
        Some(Nexthop {
            family: u32::from_ne_bytes([p[0], p[1], p[2], p[3]]),
            addr,
        })
    } else {
        None
    };
    ctx.packet.redirect = Some(RedirectTarget::Neigh { ifindex, nexthop });
    Ok(TC_ACT_REDIRECT)
}

/// `bpf_redirect_peer(ifindex, flags)` (tc).
pub fn redirect_peer(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    require(ctx, "bpf_redirect_peer", TC)?;
    if a[1] != 0 {
        return Ok(TC_ACT_SHOT);
    }
    ctx.packet.redirect = Some(RedirectTarget::Peer {
        ifindex: a[0] as u32,
    });
    Ok(TC_ACT_REDIRECT)
}
