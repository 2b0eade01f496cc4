//! `bpf_fib_lookup` (helper 69) against a network the test sets up on the host side: a
//! [`Net`] of interfaces (ifindex, MAC, MTU, forwarding, addresses), routes (prefix,
//! type, device, gateway, metric, preferred source, locked MTU, table) and neighbours
//! (IP → MAC per device), looked up as the kernel's `bpf_ipv4_fib_lookup` and
//! `bpf_ipv6_fib_lookup` do, with the same `BPF_FIB_LKUP_RET_*` codes and the same fields
//! of `struct bpf_fib_lookup` written on each path.
//!
//! A fresh [`Net`] is a fresh network namespace: the loopback device (ifindex 1) and no
//! routes. [`Net::add_address`] adds what the kernel adds with an address: the local
//! route (type local, /32 or /128) and the connected route of its subnet (IPv4 metric 0
//! with the address as preferred source, IPv6 metric 256). Routes added with
//! [`Net::add_route`] default to the metrics `ip route add` gives (IPv4 0, IPv6 1024).
//!
//! Lookup rules (no policy routing rules): IPv4 searches the main table together with the
//! local table (the kernel keeps them merged), then the default table (253); IPv6 the
//! local table, then the main table; `BPF_FIB_LOOKUP_DIRECT` one table (main, or
//! `params->tbid` with `BPF_FIB_LOOKUP_TBID`). Within a search the longest prefix wins,
//! then the lowest metric, then the route added first. With `BPF_FIB_LOOKUP_OUTPUT` only
//! routes through `params->ifindex` match (reject routes match whatever their device).
//! Not modelled: policy rules and marks, TOS routes, multipath, lightweight tunnels, link
//! state, VLAN devices (`h_vlan_*` are always 0) and IPv6 source address selection beyond
//! "the route's preferred source, else a global address of the device, else of any device".

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::net::{
    neg, read_guest, require, write_guest, PacketHelper, EAFNOSUPPORT, EINVAL, ENODEV, XDP_TC,
};
use crate::packet::PacketProgram;
use crate::registry::Registry;

/// `BPF_FIB_LKUP_RET_*`: what `bpf_fib_lookup` returns besides a negative errno.
pub mod ret {
    /// The lookup succeeded: `ifindex`, the MACs and the next hop are filled in.
    pub const SUCCESS: u64 = 0;
    /// The destination is blackholed.
    pub const BLACKHOLE: u64 = 1;
    /// The destination is unreachable.
    pub const UNREACHABLE: u64 = 2;
    /// Sending to the destination is prohibited.
    pub const PROHIBIT: u64 = 3;
    /// The packet is not forwarded (no route, a local or non-unicast route).
    pub const NOT_FWDED: u64 = 4;
    /// Forwarding is not enabled on the ingress interface.
    pub const FWD_DISABLED: u64 = 5;
    /// The route needs a lightweight tunnel encapsulation.
    pub const UNSUPP_LWT: u64 = 6;
    /// The next hop has no neighbour entry.
    pub const NO_NEIGH: u64 = 7;
    /// The packet is larger than the route's MTU (`mtu_result` holds it).
    pub const FRAG_NEEDED: u64 = 8;
    /// No source address for the route (IPv6 with `BPF_FIB_LOOKUP_SRC`).
    pub const NO_SRC_ADDR: u64 = 9;
}

/// `BPF_FIB_LOOKUP_*` flags.
pub mod flags {
    /// Look up in one table (main, or `tbid` with [`TBID`]) without policy rules.
    pub const DIRECT: u32 = 1 << 0;
    /// Look up as for output on `ifindex` (instead of input from it).
    pub const OUTPUT: u32 = 1 << 1;
    /// Do not resolve the neighbour (no MACs).
    pub const SKIP_NEIGH: u32 = 1 << 2;
    /// With [`DIRECT`]: the table is `params->tbid`.
    pub const TBID: u32 = 1 << 3;
    /// Fill in the source address the route would use.
    pub const SRC: u32 = 1 << 4;
    /// Use `params->mark` for policy routing.
    pub const MARK: u32 = 1 << 5;
    /// Every flag the kernel knows.
    pub const ALL: u32 = DIRECT | OUTPUT | SKIP_NEIGH | TBID | SRC | MARK;
}

/// `RT_TABLE_DEFAULT`, `RT_TABLE_MAIN`, `RT_TABLE_LOCAL`.
pub const TABLE_DEFAULT: u32 = 253;
/// The main routing table.
pub const TABLE_MAIN: u32 = 254;
/// The local routing table (local addresses).
pub const TABLE_LOCAL: u32 = 255;

/// `sizeof(struct bpf_fib_lookup)`.
pub const FIB_LOOKUP_SIZE: usize = 64;

/// A network interface of a [`Net`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its index (`ifindex`, ≥ 1).
    pub ifindex: u32,
    /// Its MAC address (`smac` of lookups that leave through it).
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u32,
    /// IPv4 forwarding (`net.ipv4.conf.<dev>.forwarding`).
    pub forwarding: bool,
    /// IPv6 forwarding (`net.ipv6.conf.<dev>.forwarding`).
    pub forwarding6: bool,
    /// Its addresses with prefix lengths, in the order added.
    pub addresses: Vec<(IpAddr, u8)>,
}

impl Interface {
    /// An Ethernet interface: MTU 1500, forwarding on for IPv4 and IPv6, no addresses.
    pub fn new(ifindex: u32, mac: [u8; 6]) -> Interface {
        Interface {
            ifindex,
            mac,
            mtu: 1500,
            forwarding: true,
            forwarding6: true,
            addresses: Vec::new(),
        }
    }

    /// The same interface with MTU `mtu`.
    pub fn mtu(mut self, mtu: u32) -> Interface {
        self.mtu = mtu;
        self
    }

    /// The same interface with IPv4 and IPv6 forwarding on or off.
    pub fn forwarding(mut self, v4: bool, v6: bool) -> Interface {
        self.forwarding = v4;
        self.forwarding6 = v6;
        self
    }
}

/// What a route does with matching packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteType {
    /// `unicast`: forward through the route's device.
    Unicast,
    /// `local`: delivered locally (not forwarded).
    Local,
    /// `blackhole`.
    Blackhole,
    /// `unreachable`.
    Unreachable,
    /// `prohibit`.
    Prohibit,
}

/// A route of a [`Net`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The routing table (main: [`TABLE_MAIN`]).
    pub table: u32,
    /// The destination prefix.
    pub dst: IpAddr,
    /// Its length in bits.
    pub prefix_len: u8,
    /// What the route does.
    pub kind: RouteType,
    /// The output device (`None` for reject routes; resolved from the gateway when a
    /// unicast route is added without one).
    pub dev: Option<u32>,
    /// The next hop (`None`: directly connected).
    pub gateway: Option<IpAddr>,
    /// The metric (`rt_metric` of the lookup).
    pub metric: u32,
    /// The preferred source address (`src`).
    pub prefsrc: Option<IpAddr>,
    /// A locked MTU (`mtu lock N`), which the forwarding MTU check uses instead of the
    /// device's.
    pub mtu: Option<u32>,
}

impl Route {
    fn new(kind: RouteType, dst: IpAddr, prefix_len: u8) -> Route {
        Route {
            table: TABLE_MAIN,
            dst,
            prefix_len,
            kind,
            dev: None,
            gateway: None,
            metric: if dst.is_ipv4() { 0 } else { 1024 },
            prefsrc: None,
            mtu: None,
        }
    }

    /// A unicast route to `dst/prefix_len` in the main table, with `ip route add`'s metric.
    pub fn to(dst: impl Into<IpAddr>, prefix_len: u8) -> Route {
        Route::new(RouteType::Unicast, dst.into(), prefix_len)
    }

    /// A route of another type ([`RouteType`]).
    pub fn of_type(kind: RouteType, dst: impl Into<IpAddr>, prefix_len: u8) -> Route {
        Route::new(kind, dst.into(), prefix_len)
    }

    /// Through the gateway `gw`.
    pub fn via(mut self, gw: impl Into<IpAddr>) -> Route {
        self.gateway = Some(gw.into());
        self
    }

    /// Out of device `ifindex`.
    pub fn dev(mut self, ifindex: u32) -> Route {
        self.dev = Some(ifindex);
        self
    }

    /// With metric `metric`.
    pub fn metric(mut self, metric: u32) -> Route {
        self.metric = metric;
        self
    }

    /// In table `table`.
    pub fn table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }

    /// With preferred source `src`.
    pub fn src(mut self, src: impl Into<IpAddr>) -> Route {
        self.prefsrc = Some(src.into());
        self
    }

    /// With a locked MTU (`mtu lock N`).
    pub fn mtu_lock(mut self, mtu: u32) -> Route {
        self.mtu = Some(mtu);
        self
    }

    fn contains(&self, addr: IpAddr) -> bool {
        prefix_match(self.dst, addr, self.prefix_len)
    }
}

/// Whether `a` and `b` (same family) agree on their first `len` bits.
fn prefix_match(a: IpAddr, b: IpAddr, len: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            u32::from(a) & m == u32::from(b) & m
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(a) & m == u128::from(b) & m
        }
        _ => false,
    }
}

/// Why a [`Net`] change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Another interface already has this ifindex, or the ifindex is 0.
    #[error("ifindex {ifindex} is 0 or taken")]
    BadIfindex {
        /// The ifindex.
        ifindex: u32,
    },
    /// No interface has this ifindex.
    #[error("no interface has ifindex {ifindex}")]
    NoSuchInterface {
        /// The ifindex.
        ifindex: u32,
    },
    /// A prefix length longer than the address.
    #[error("prefix length {len} is too long for {addr}")]
    BadPrefix {
        /// The address.
        addr: IpAddr,
        /// The prefix length.
        len: u8,
    },
    /// A unicast route whose gateway no connected route reaches, and no device given.
    #[error("no device reaches the gateway {gateway}")]
    GatewayUnreachable {
        /// The gateway.
        gateway: IpAddr,
    },
}

/// A neighbour entry: `addr` on device `ifindex` has MAC `mac`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The device.
    pub ifindex: u32,
    /// The neighbour's address.
    pub addr: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
}

#[derive(Debug, Clone, Default)]
struct Tables {
    interfaces: BTreeMap<u32, Interface>,
    routes: Vec<Route>,
    neighbours: Vec<Neighbour>,
}

/// The simulated network `bpf_fib_lookup` consults (a network namespace): shared by a
/// VM's CPUs, changed by the test on the host side at any time.
///
/// ```
/// use bpfvm_helpers::fib::{Interface, Net, Route};
/// use std::net::Ipv4Addr;
///
/// let net = Net::new();
/// net.add_interface(Interface::new(2, [2, 0, 0, 0, 0, 2])).unwrap();
/// net.add_address(2, Ipv4Addr::new(10, 0, 0, 1), 24).unwrap();
/// net.add_neighbour(2, Ipv4Addr::new(10, 0, 0, 2), [2, 0, 0, 0, 0, 0xaa]).unwrap();
/// net.add_route(Route::to(Ipv4Addr::new(192, 168, 0, 0), 16).via(Ipv4Addr::new(10, 0, 0, 2)))
///     .unwrap();
/// assert_eq!(net.routes().len(), 3); // local, connected and the one added
/// ```
#[derive(Debug)]
pub struct Net {
    tables: RwLock<Tables>,
    /// The cookies `bpf_get_socket_cookie` gave sockets (see [`crate::sock_cookie`]).
    cookies: crate::sock_cookie::SocketCookies,
}

impl Default for Net {
    fn default() -> Net {
        Net::new()
    }
}

impl Net {
    /// A fresh network: the loopback device (ifindex 1, MTU 65536, forwarding off).
    pub fn new() -> Net {
        let mut t = Tables::default();
        t.interfaces.insert(
            1,
            Interface::new(1, [0; 6])
                .mtu(65536)
                .forwarding(false, false),
        );
        Net {
            tables: RwLock::new(t),
            cookies: crate::sock_cookie::SocketCookies::default(),
        }
    }

    /// The cookies of the network's sockets (`bpf_get_socket_cookie` in tracing programs).
    pub fn socket_cookies(&self) -> &crate::sock_cookie::SocketCookies {
        &self.cookies
    }

    /// A fresh network to share with a VM.
    pub fn shared() -> Arc<Net> {
        Arc::new(Net::new())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an interface (its addresses are added as with [`Net::add_address`]).
    pub fn add_interface(&self, iface: Interface) -> Result<(), NetError> {
        let addrs = iface.addresses.clone();
        let ifindex = iface.ifindex;
        {
            let mut t = self.write();
            if ifindex == 0 || t.interfaces.contains_key(&ifindex) {
                return Err(NetError::BadIfindex { ifindex });
            }
            let mut iface = iface;
            iface.addresses.clear();
            t.interfaces.insert(ifindex, iface);
        }
        for (a, len) in addrs {
            self.add_address(ifindex, a, len)?;
        }
        Ok(())
    }

    /// Sets forwarding of an interface (`net.ipv4/ipv6.conf.<dev>.forwarding`).
    pub fn set_forwarding(&self, ifindex: u32, v4: bool, v6: bool) -> Result<(), NetError> {
        let mut t = self.write();
        let i = t
            .interfaces
            .get_mut(&ifindex)
            .ok_or(NetError::NoSuchInterface { ifindex })?;
        i.forwarding = v4;
        i.forwarding6 = v6;
        Ok(())
    }

    /// Adds `addr/prefix_len` to interface `ifindex`, with the local route and the
    /// connected route the kernel adds for it.
    pub fn add_address(
        &self,
        ifindex: u32,
        addr: impl Into<IpAddr>,
        prefix_len: u8,
    ) -> Result<(), NetError> {
        let addr = addr.into();
        let full = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > full {
            return Err(NetError::BadPrefix {
                addr,
                len: prefix_len,
            });
        }
        let mut t = self.write();
        let iface = t
            .interfaces
            .get_mut(&ifindex)
            .ok_or(NetError::NoSuchInterface { ifindex })?;
        iface.addresses.push((addr, prefix_len));
        let mut local = Route::of_type(RouteType::Local, addr, full)
            .dev(ifindex)
            .table(TABLE_LOCAL)
            .metric(0);
        local.prefsrc = addr.is_ipv4().then_some(addr);
        let mut connected = Route::to(addr, prefix_len).dev(ifindex);
        if addr.is_ipv4() {
            connected.prefsrc = Some(addr);
        } else {
            connected.metric = 256;
        }
        t.routes.push(local);
        t.routes.push(connected);
        Ok(())
    }

    /// Adds a route. A unicast route with a gateway and no device gets the device of the
    /// connected route that reaches the gateway.
    pub fn add_route(&self, route: Route) -> Result<(), NetError> {
        let full = if route.dst.is_ipv4() { 32 } else { 128 };
        if route.prefix_len > full {
            return Err(NetError::BadPrefix {
                addr: route.dst,
                len: route.prefix_len,
            });
        }
        let mut route = route;
        let mut t = self.write();
        if let Some(d) = route.dev {
            if !t.interfaces.contains_key(&d) {
                return Err(NetError::NoSuchInterface { ifindex: d });
            }
        } else if route.kind == RouteType::Unicast {
            let Some(gw) = route.gateway else {
                return Err(NetError::GatewayUnreachable { gateway: route.dst });
            };
            let dev = t
                .routes
                .iter()
                .filter(|r| r.kind == RouteType::Unicast && r.gateway.is_none() && r.contains(gw))
                .max_by_key(|r| r.prefix_len)
                .and_then(|r| r.dev);
            route.dev = Some(dev.ok_or(NetError::GatewayUnreachable { gateway: gw })?);
        }
        t.routes.push(route);
        Ok(())
    }

    /// Adds (or replaces) the neighbour entry of `addr` on `ifindex`.
    pub fn add_neighbour(
        &self,
        ifindex: u32,
        addr: impl Into<IpAddr>,
        mac: [u8; 6],
    ) -> Result<(), NetError> {
        let addr = addr.into();
        let mut t = self.write();
        if !t.interfaces.contains_key(&ifindex) {
            return Err(NetError::NoSuchInterface { ifindex });
        }
        t.neighbours
            .retain(|n| !(n.ifindex == ifindex && n.addr == addr));
        t.neighbours.push(Neighbour { ifindex, addr, mac });
        Ok(())
    }

    /// The interfaces, by ifindex.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.read().interfaces.values().cloned().collect()
    }

    /// The routes, in the order added.
    pub fn routes(&self) -> Vec<Route> {
        self.read().routes.clone()
    }

    /// The neighbour entries.
    pub fn neighbours(&self) -> Vec<Neighbour> {
        self.read().neighbours.clone()
    }
}

/// The best route for `dst` among `tables`: longest prefix, lowest metric, first added.
/// `oif` (`BPF_FIB_LOOKUP_OUTPUT`): IPv4 takes only routes through it (reject routes
/// always match), IPv6 prefers them among routes of the same prefix and metric (its lookup
/// is not strict about the interface).
fn best<'t>(t: &'t Tables, tables: &[u32], dst: IpAddr, oif: Option<u32>) -> Option<&'t Route> {
    let strict = dst.is_ipv4();
    let mut found: Option<&Route> = None;
    for r in &t.routes {
        if !tables.contains(&r.table) || !r.contains(dst) {
            continue;
        }
        let reject = matches!(
            r.kind,
            RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit
        );
        if let (Some(o), false, true) = (oif, reject, strict) {
            if r.dev != Some(o) {
                continue;
            }
        }
        let on_oif = |x: &Route| oif.is_some() && x.dev == oif;
        let better = match found {
            None => true,
            Some(f) => {
                (r.prefix_len, std::cmp::Reverse(r.metric))
                    > (f.prefix_len, std::cmp::Reverse(f.metric))
                    || (r.prefix_len == f.prefix_len
                        && r.metric == f.metric
                        && on_oif(r)
                        && !on_oif(f))
            }
        };
        if better {
            found = Some(r);
        }
    }
    found
}

/// A view of the 64 bytes of `struct bpf_fib_lookup`.
struct Params([u8; FIB_LOOKUP_SIZE]);

impl Params {
    fn u16_at(&self, at: usize) -> u16 {
        u16::from_ne_bytes([self.0[at], self.0[at + 1]])
    }
    fn u32_at(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }
    fn set_u16(&mut self, at: usize, v: u16) {
        self.0[at..at + 2].copy_from_slice(&v.to_ne_bytes());
    }
    fn set_u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn family(&self) -> u8 {
        self.0[0]
    }
    fn tot_len(&self) -> u16 {
        self.u16_at(6)
    }
    fn ifindex(&self) -> u32 {
        self.u32_at(8)
    }
    fn v4(&self, at: usize) -> Ipv4Addr {
        Ipv4Addr::new(self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3])
    }
    fn v6(&self, at: usize) -> Ipv6Addr {
        let b: [u8; 16] = self.0[at..at + 16].try_into().expect("16 bytes");
        Ipv6Addr::from(b)
    }
    fn set_ip(&mut self, at: usize, a: IpAddr) {
        match a {
            IpAddr::V4(a) => self.0[at..at + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => self.0[at..at + 16].copy_from_slice(&a.octets()),
        }
    }
    /// `bpf_fib_set_fwd_params`.
    fn set_fwd(&mut self, mtu: u32) -> u64 {
        self.set_u16(48, 0);
        self.set_u16(50, 0);
        if mtu != 0 {
            self.set_u16(6, mtu as u16);
        }
        ret::SUCCESS
    }
}

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// `IP_MAX_MTU`, `IP6_MAX_MTU`, `IPV6_MIN_MTU`.
const IP_MAX_MTU: u32 = 0xfff0;
const IP6_MAX_MTU: u32 = 0xffff + 40;
const IPV6_MIN_MTU: u32 = 1280;

/// The lookup's result code or negative errno; `p` holds the fields the kernel wrote.
fn lookup(t: &Tables, p: &mut Params, f: u32, check_mtu: bool) -> u64 {
    let v6 = p.family() == AF_INET6;
    let (src, dst) = if v6 {
        (IpAddr::V6(p.v6(16)), IpAddr::V6(p.v6(32)))
    } else {
        (IpAddr::V4(p.v4(16)), IpAddr::V4(p.v4(32)))
    };
    if v6 && (need_strict(dst) || need_strict(src)) {
        return ret::NOT_FWDED;
    }
    let Some(iface) = t.interfaces.get(&p.ifindex()) else {
        return neg(ENODEV);
    };
    if !(if v6 {
        iface.forwarding6
    } else {
        iface.forwarding
    }) {
        return ret::FWD_DISABLED;
    }
    let oif = (f & flags::OUTPUT != 0).then_some(iface.ifindex);
    let route = if f & flags::DIRECT != 0 {
        let mut tbid = TABLE_MAIN;
        if f & flags::TBID != 0 {
            tbid = p.u32_at(48);
            p.set_u32(48, 0);
        }
        let exists = matches!(tbid, TABLE_MAIN | TABLE_LOCAL | TABLE_DEFAULT)
            || t.routes.iter().any(|r| r.table == tbid);
        if !exists {
            return ret::NOT_FWDED;
        }
        // IPv4 keeps the local table merged into main: either names both.
        let tables: &[u32] = match tbid {
            TABLE_MAIN | TABLE_LOCAL if !v6 => &[TABLE_MAIN, TABLE_LOCAL],
            _ => std::slice::from_ref(&tbid),
        };
        best(t, tables, dst, oif)
    } else if v6 {
        best(t, &[TABLE_LOCAL], dst, oif).or_else(|| best(t, &[TABLE_MAIN], dst, oif))
    } else {
        best(t, &[TABLE_MAIN, TABLE_LOCAL], dst, oif)
            .or_else(|| best(t, &[TABLE_DEFAULT], dst, oif))
    };
    let Some(route) = route else {
        return ret::NOT_FWDED;
    };
    match route.kind {
        RouteType::Unicast => {}
        RouteType::Blackhole => return ret::BLACKHOLE,
        RouteType::Unreachable => return ret::UNREACHABLE,
        RouteType::Prohibit => return ret::PROHIBIT,
        RouteType::Local => return ret::NOT_FWDED,
    }
    let Some(dev) = route.dev.and_then(|d| t.interfaces.get(&d)) else {
        return ret::NOT_FWDED;
    };
    let mut mtu = 0;
    if check_mtu {
        mtu = match route.mtu {
            Some(m) if m != 0 => m,
            _ if v6 => IPV6_MIN_MTU.max(dev.mtu).min(IP6_MAX_MTU),
            _ => dev.mtu.min(IP_MAX_MTU),
        };
        if u32::from(p.tot_len()) > mtu {
            p.set_u16(6, mtu as u16);
            return ret::FRAG_NEEDED;
        }
    }
    p.set_u32(12, route.metric);
    p.set_u32(8, dev.ifindex);
    let nh = route.gateway.unwrap_or(dst);
    if v6 {
        if let Some(gw) = route.gateway {
            p.set_ip(32, gw);
        }
        if f & flags::SRC != 0 {
            match route.prefsrc.or_else(|| ipv6_saddr(t, dev, dst)) {
                Some(s) => p.set_ip(16, s),
                None => return ret::NO_SRC_ADDR,
            }
        }
    } else {
        if f & flags::SRC != 0 {
            let s = route
                .prefsrc
                .unwrap_or_else(|| ipv4_saddr(dev, route.gateway));
            p.set_ip(16, s);
        }
        match route.gateway {
            Some(gw @ IpAddr::V4(_)) => p.set_ip(32, gw),
            Some(gw @ IpAddr::V6(_)) => {
                p.0[0] = AF_INET6;
                p.set_ip(32, gw);
            }
            None => {}
        }
    }
    if f & flags::SKIP_NEIGH != 0 {
        return p.set_fwd(mtu);
    }
    let Some(n) = t
        .neighbours
        .iter()
        .find(|n| n.ifindex == dev.ifindex && n.addr == nh)
    else {
        return ret::NO_NEIGH;
    };
    p.0[58..64].copy_from_slice(&n.mac);
    p.0[52..58].copy_from_slice(&dev.mac);
    p.set_fwd(mtu)
}

/// `rt6_need_strict`: multicast, link-local and loopback addresses are never forwarded.
fn need_strict(a: IpAddr) -> bool {
    match a {
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_multicast() || s[0] & 0xffc0 == 0xfe80 || a.is_loopback()
        }
        IpAddr::V4(_) => false,
    }
}

/// `inet_select_addr(dev, gw, ...)`: the device's first address in the gateway's subnet,
/// else its first address, else 0.0.0.0.
fn ipv4_saddr(dev: &Interface, gw: Option<IpAddr>) -> IpAddr {
    let v4: Vec<(IpAddr, u8)> = dev
        .addresses
        .iter()
        .copied()
        .filter(|(a, _)| a.is_ipv4())
        .collect();
    gw.and_then(|g| v4.iter().find(|(a, l)| prefix_match(*a, g, *l)))
        .or(v4.first())
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |(a, _)| *a)
}

/// A global IPv6 source address for `dst`: the device's, preferring the longest common
/// prefix with `dst`; else another device's.
fn ipv6_saddr(t: &Tables, dev: &Interface, dst: IpAddr) -> Option<IpAddr> {
    let global = |i: &Interface| -> Vec<IpAddr> {
        i.addresses
            .iter()
            .map(|&(a, _)| a)
            .filter(|a| a.is_ipv6() && !need_strict(*a))
            .collect()
    };
    let common = |a: &IpAddr| match (a, dst) {
        (IpAddr::V6(a), IpAddr::V6(d)) => (u128::from(*a) ^ u128::from(d)).leading_zeros(),
        _ => 0,
    };
    let pick = |v: Vec<IpAddr>| v.into_iter().max_by_key(common);
    pick(global(dev)).or_else(|| pick(t.interfaces.values().flat_map(global).collect()))
}

/// The helper of this module, with the program types that may call it.
pub const HELPERS: [PacketHelper; 1] = [PacketHelper {
    id: 69,
    name: "bpf_fib_lookup",
    f: fib_lookup,
    programs: XDP_TC,
}];

/// Registers `bpf_fib_lookup`.
pub fn register(r: &mut Registry) {
    for h in &HELPERS {
        r.register_builtin(HelperId(h.id), h.name, h.f, None)
            .expect("packet helper ids are small");
    }
}

/// `bpf_fib_lookup(ctx, params, plen, flags)`: XDP's and tc's versions (tc checks the MTU
/// only when `tot_len` is set, else the packet against the output device's).
pub fn fib_lookup(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_fib_lookup";
    let prog = require(ctx, NAME, XDP_TC)?;
    let (addr, plen, f) = (a[1], a[2] as u32 as i32, a[3] as u32);
    if plen < FIB_LOOKUP_SIZE as i32 || f & !flags::ALL != 0 {
        return Ok(neg(EINVAL));
    }
    let mut p = Params([0; FIB_LOOKUP_SIZE]);
    read_guest(ctx, NAME, addr, &mut p.0)?;
    let net = ctx.net().clone();
    let t = net.read();
    let xdp = prog == PacketProgram::Xdp;
    let check_mtu = xdp || p.tot_len() != 0;
    let mut rc = match p.family() {
        AF_INET | AF_INET6 => lookup(&t, &mut p, f, check_mtu),
        _ => neg(EAFNOSUPPORT),
    };
    if !xdp && rc == ret::SUCCESS && !check_mtu {
        // `is_skb_forwardable`: the packet against the device's MTU, L2 header and VLAN tag.
        let dev = &t.interfaces[&p.ifindex()];
        if ctx.packet.len() as u64 > u64::from(dev.mtu) + 14 + 4 {
            rc = ret::FRAG_NEEDED;
        }
        p.set_u16(6, dev.mtu as u16);
    }
    drop(t);
    write_guest(ctx, NAME, addr, &p.0)?;
    Ok(rc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(family: u8, ifindex: u32, src: IpAddr, dst: IpAddr) -> Params {
        let mut p = Params([0; 64]);
        p.0[0] = family;
        p.set_u32(8, ifindex);
        p.set_ip(16, src);
        p.set_ip(32, dst);
        p
    }

    fn net() -> Net {
        let n = Net::new();
        n.add_interface(Interface::new(2, [2, 0, 0, 0, 0, 2]))
            .unwrap();
        n.add_interface(Interface::new(3, [2, 0, 0, 0, 0, 3]).mtu(1400))
            .unwrap();
        n.add_address(2, Ipv4Addr::new(10, 0, 0, 1), 24).unwrap();
        n.add_address(3, Ipv4Addr::new(10, 1, 0, 1), 24).unwrap();
        n.add_neighbour(3, Ipv4Addr::new(10, 1, 0, 2), [2, 0, 0, 0, 1, 2])
            .unwrap();
        n.add_route(Route::to(Ipv4Addr::new(192, 168, 0, 0), 16).via(Ipv4Addr::new(10, 1, 0, 2)))
            .unwrap();
        n.add_route(Route::of_type(
            RouteType::Blackhole,
            Ipv4Addr::new(192, 168, 66, 0),
            24,
        ))
        .unwrap();
        n
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn a_route_through_a_gateway_gives_the_next_hop_and_macs() {
        let n = net();
        let t = n.read();
        let mut p = params(2, 2, v4(10, 0, 0, 9), v4(192, 168, 1, 1));
        assert_eq!(lookup(&t, &mut p, 0, true), ret::SUCCESS);
        assert_eq!(p.ifindex(), 3);
        assert_eq!(p.v4(32), Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(&p.0[52..58], &[2, 0, 0, 0, 0, 3]);
        assert_eq!(&p.0[58..64], &[2, 0, 0, 0, 1, 2]);
        assert_eq!(p.tot_len(), 1400, "mtu_result");
        let mut p = params(2, 2, v4(10, 0, 0, 9), v4(192, 168, 66, 1));
        assert_eq!(lookup(&t, &mut p, 0, true), ret::BLACKHOLE);
        let mut p = params(2, 2, v4(10, 0, 0, 9), v4(10, 0, 0, 7));
        assert_eq!(lookup(&t, &mut p, 0, true), ret::NO_NEIGH);
        let mut p = params(2, 2, v4(10, 0, 0, 9), v4(10, 0, 0, 1));
        assert_eq!(lookup(&t, &mut p, 0, true), ret::NOT_FWDED, "local address");
        let mut p = params(2, 1, v4(10, 0, 0, 9), v4(192, 168, 1, 1));
        assert_eq!(lookup(&t, &mut p, 0, true), ret::FWD_DISABLED);
        let mut p = params(2, 9, v4(10, 0, 0, 9), v4(192, 168, 1, 1));
        assert_eq!(lookup(&t, &mut p, 0, true), neg(ENODEV));
        let mut p = params(2, 2, v4(10, 0, 0, 9), v4(192, 168, 1, 1));
        p.set_u16(6, 1401);
        assert_eq!(lookup(&t, &mut p, 0, true), ret::FRAG_NEEDED);
        assert_eq!(p.tot_len(), 1400);
    }

    #[test]
    fn src_and_output_flags() {
        let n = net();
        let t = n.read();
        let mut p = params(2, 2, v4(0, 0, 0, 0), v4(192, 168, 1, 1));
        assert_eq!(
            lookup(&t, &mut p, flags::SRC | flags::SKIP_NEIGH, true),
            ret::SUCCESS
        );
        assert_eq!(p.v4(16), Ipv4Addr::new(10, 1, 0, 1));
        let mut p = params(2, 2, v4(0, 0, 0, 0), v4(192, 168, 1, 1));
        assert_eq!(lookup(&t, &mut p, flags::OUTPUT, true), ret::NOT_FWDED);
    }
}
