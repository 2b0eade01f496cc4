//! Checks the redirect maps (DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP) against the kernel from
//! the host side: creation with every shape and flag, then updates (`bpf_devmap_val` and
//! `bpf_cpumap_val` values, program fds that are not programs, every flag), lookups,
//! deletes, `get_next_key` walks, lookup-and-delete and batches, each outcome and the
//! final contents compared. Devices are the loopback device (ifindex 1), the one device
//! every machine has; XSKMAP sockets are real AF_XDP sockets in the kernel and their
//! numbers in bpfvm.
#![cfg(target_os = "linux")]

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm_conformance::kernel::consts::{create, REDIRECT_MAP_TYPES};
use bpfvm_conformance::kernel::diff::{self, HostMap, SplitMix64};
use bpfvm_conformance::kernel::{self, Errno, KernelMap, MapDef};

fn spec(def: MapDef) -> MapSpec {
    MapSpec::new(def.map_type, def.key_size, def.value_size, def.max_entries)
        .with_flags(def.map_flags)
}

/// The kernel's `NR_CPUS` (`/sys/devices/system/cpu/kernel_max` + 1): bpfvm's CPUMAP limit
/// is the distributions' 8192, so sizes between the two are not compared.
fn kernel_nr_cpus() -> u32 {
    std::fs::read_to_string("/sys/devices/system/cpu/kernel_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map_or(8192, |m| m + 1)
}

#[test]
fn creation_errnos_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let nr_cpus = kernel_nr_cpus();
    let mut compared = 0;
    for map_type in REDIRECT_MAP_TYPES {
        for (ks, vs) in [(4, 4), (4, 8), (4, 12), (8, 4), (4, 0), (0, 4), (4, 16)] {
            for max in [0, 1, 8, 256, 257, 8192, 8193, 1 << 31, (1 << 31) + 1] {
                if map_type == MapType::Cpumap && max > nr_cpus && max <= 8192 {
                    continue;
                }
                // Arrays that large would really be allocated; a DEVMAP_HASH of 2^31 is
                // refused by bpfvm (ENOMEM: it preallocates its values, arenas are at most
                // 4 GiB) and not by the kernel (it allocates elements on update).
                if max == 1 << 31 || (max > 8193 && map_type != MapType::DevmapHash) {
                    continue;
                }
                for flags in [
                    0,
                    1, // BPF_F_NO_PREALLOC
                    4, // BPF_F_NUMA_NODE
                    create::RDONLY,
                    create::WRONLY,
                    create::RDONLY_PROG,
                    create::ZERO_SEED,
                ] {
                    let def = MapDef {
                        map_type,
                        key_size: ks,
                        value_size: vs,
                        max_entries: max,
                        map_flags: flags,
                    };
                    let k = KernelMap::create(def).map(|_| ());
                    let s = Map::create(spec(def), n)
                        .map(|_| ())
                        .map_err(|e| Errno(e.errno()));
                    compared += 1;
                    assert_eq!(k, s, "{def:?}");
                }
            }
        }
    }
    println!("{compared} creations compared");
}

/// One host operation on both maps, outcome compared.
struct Both {
    k: KernelMap,
    s: Map,
    xsk_fds: Vec<i32>,
    ops: usize,
}

impl Both {
    fn new(def: MapDef, n: u32) -> Both {
        Both {
            k: KernelMap::create(def).unwrap(),
            s: Map::create(spec(def), n).unwrap(),
            xsk_fds: Vec::new(),
            ops: 0,
        }
    }

    fn same<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: &str,
        k: Result<T, Errno>,
        s: Result<T, Errno>,
    ) {
        self.ops += 1;
        assert_eq!(k, s, "{:?}: {what}", self.s.spec().map_type);
    }

    fn update(&mut self, key: u32, value: &[u8], svalue: &[u8], flags: u64) {
        let k = self.k.update(&key.to_ne_bytes(), value, flags);
        let s = HostMap::update(&self.s, &key.to_ne_bytes(), svalue, flags);
        self.same(&format!("update {key} {value:?} flags {flags}"), k, s);
    }

    fn lookup(&mut self, key: u32) {
        let k = self.k.lookup(&key.to_ne_bytes(), 0);
        let s = HostMap::lookup(&self.s, &key.to_ne_bytes(), 0);
        self.same(&format!("lookup {key}"), k, s);
    }

    fn delete(&mut self, key: u32) {
        let k = self.k.delete(&key.to_ne_bytes());
        let s = HostMap::delete(&self.s, &key.to_ne_bytes());
        self.same(&format!("delete {key}"), k, s);
    }

    fn rest(&mut self, key: u32) {
        let kk = key.to_ne_bytes();
        let k = self.k.lookup_and_delete(&kk, 0);
        let s = HostMap::lookup_and_delete(&self.s, &kk, 0);
        self.same("lookup_and_delete", k, s);
        let k = self.k.get_next_key(Some(&kk));
        let s = HostMap::get_next_key(&self.s, Some(&kk));
        self.same(&format!("get_next_key {key}"), k, s);
        let k = HostMap::lookup_batch(&self.k, None, 4, 0, 0);
        let s = HostMap::lookup_batch(&self.s, None, 4, 0, 0);
        self.same("lookup_batch", Ok(k.result), Ok(s.result));
        let vs = self.s.value_size() as usize;
        let k = HostMap::update_batch(&self.k, &kk, &vec![0; vs], 1, 0, 0);
        let s = HostMap::update_batch(&self.s, &kk, &vec![0; vs], 1, 0, 0);
        self.same("update_batch", Ok(k.result), Ok(s.result));
    }

    fn contents(&mut self) {
        let k = diff::dump(&self.k, 10_000);
        let s = diff::dump(&self.s, 10_000);
        self.same("contents", k, s);
    }

    /// An AF_XDP socket for the kernel's XSKMAP (kept open while the maps live).
    fn socket(&mut self) -> i32 {
        // SAFETY: plain socket(2); the fd is closed in `drop`.
        let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
        assert!(
            fd >= 0,
            "AF_XDP socket: {}",
            std::io::Error::last_os_error()
        );
        self.xsk_fds.push(fd);
        fd
    }
}

impl Drop for Both {
    fn drop(&mut self) {
        for &fd in &self.xsk_fds {
            // SAFETY: closes a socket this value opened.
            unsafe { libc::close(fd) };
        }
    }
}

fn val(a: u32, b: i32, size: u32) -> Vec<u8> {
    let mut v = a.to_ne_bytes().to_vec();
    v.extend(b.to_ne_bytes());
    v.truncate(size as usize);
    v
}

#[test]
fn host_operations_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut rng = SplitMix64::new(17);
    let mut total = 0;
    for map_type in REDIRECT_MAP_TYPES {
        for vs in [4u32, 8] {
            if map_type == MapType::Xskmap && vs == 8 {
                continue;
            }
            let def = MapDef {
                map_type,
                key_size: 4,
                value_size: vs,
                max_entries: 4,
                map_flags: 0,
            };
            let mut b = Both::new(def, n);
            for step in 0..300 {
                let key = *rng.pick(&[0u32, 1, 2, 3, 4, 5, n, n + 1, 1000, u32::MAX]);
                let flags = *rng.pick(&[0u64, 1, 2, 3, 4, 8, 1 << 33]);
                match (map_type, rng.below(4)) {
                    (MapType::Xskmap, 0) => {
                        let fd = if b.xsk_fds.len() < 3 || rng.below(2) == 0 {
                            b.socket()
                        } else {
                            *rng.pick(&b.xsk_fds.clone())
                        };
                        b.update(key, &fd.to_ne_bytes(), &(fd as u32).to_ne_bytes(), flags);
                    }
                    (MapType::Cpumap, 0) => {
                        let qsize = *rng.pick(&[0u32, 1, 64, 16384, 16385]);
                        let fd = *rng.pick(&[0i32, -1, 9999]);
                        let v = val(qsize, fd, vs);
                        b.update(key, &v, &v, flags);
                    }
                    (_, 0) => {
                        let ifindex = *rng.pick(&[0u32, 1, 1]);
                        let fd = *rng.pick(&[0i32, -1, 9999]);
                        let v = val(ifindex, fd, vs);
                        b.update(key, &v, &v, flags);
                    }
                    (_, 1) => b.lookup(key),
                    (_, 2) => b.delete(key),
                    _ => b.rest(key),
                }
                if step % 20 == 0 {
                    b.contents();
                }
            }
            b.contents();
            total += b.ops;
        }
    }
    println!("{total} operations compared");
}
