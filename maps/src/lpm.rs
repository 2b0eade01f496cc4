//! LPM_TRIE (`kernel/bpf/lpm_trie.c`): longest-prefix match over big-endian bit strings.
//!
//! A key is `struct bpf_lpm_trie_key_u8`: a host-endian `u32` prefix length, then
//! `key_size - 4` data bytes (an IPv4 address: 4, IPv6: 16), most significant bit first. A
//! lookup — from the host or helper 1 — returns the value of the longest stored prefix that
//! matches the key's first `prefixlen` bits; an update or delete names one prefix exactly.
//! `BPF_MAP_GET_NEXT_KEY` walks the trie in the kernel's post-order: more specific prefixes
//! before the prefixes that contain them.
//!
//! ```
//! use bpfvm_maps::{flags::create, Map, MapSpec, MapType};
//!
//! let key = |len: u32, ip: [u8; 4]| [&len.to_ne_bytes()[..], &ip].concat();
//! let spec = MapSpec::new(MapType::LpmTrie, 8, 4, 16).with_flags(create::NO_PREALLOC);
//! let trie = Map::create(spec, 2)?;
//! trie.update(&key(8, [10, 0, 0, 0]), &1u32.to_ne_bytes(), 0)?;
//! trie.update(&key(24, [10, 1, 2, 0]), &2u32.to_ne_bytes(), 0)?;
//! let mut v = [0u8; 4];
//! trie.lookup(&key(32, [10, 1, 2, 3]), &mut v, 0)?;
//! assert_eq!(u32::from_ne_bytes(v), 2);
//! trie.lookup(&key(32, [10, 9, 9, 9]), &mut v, 0)?;
//! assert_eq!(u32::from_ne_bytes(v), 1);
//! assert_eq!(trie.lookup(&key(32, [11, 0, 0, 0]), &mut v, 0).unwrap_err().errno(), 2);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```
//!
//! Simulator choices: the kernel allocates nodes on demand; here the values live in the map's
//! arena of `max_entries + 1` slots (so a program's value pointer is a stable arena slot),
//! and a replaced or deleted value's slot goes to the back of a FIFO free list, so it is
//! reused as late as possible (the kernel frees it after an RCU grace period). The tree
//! itself is bookkeeping behind a read-write lock; lookups take it shared.

use std::collections::VecDeque;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::MapError;
use crate::flags::{create, BPF_EXIST, BPF_NOEXIST};
use crate::map::{access_ok, Dst, Map};
use crate::spec::MapSpec;

/// `LPM_DATA_SIZE_MAX`: longest key data (an IPv6 address is 16).
pub const LPM_DATA_SIZE_MAX: u32 = 256;
/// Bytes of `prefixlen` in front of the key data.
pub const LPM_KEY_HEADER: u32 = 4;
/// `LPM_VAL_SIZE_MAX`: `KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - sizeof(struct lpm_trie_node)`
/// on x86_64 (4 MiB - 256 - 24, as Linux 6.18 accepts).
pub const LPM_VAL_SIZE_MAX: u32 = crate::queue::KMALLOC_MAX_SIZE - LPM_DATA_SIZE_MAX - 24;

/// `trie_alloc`'s checks: `max_entries > 0`, `BPF_F_NO_PREALLOC` set, only NO_PREALLOC,
/// NUMA and access flags, `key_size` in `5..=260`, `value_size` in `1..=LPM_VAL_SIZE_MAX`.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    let mask = create::NO_PREALLOC | create::NUMA_NODE | create::ACCESS_MASK;
    let f = spec.map_flags;
    let reason = if spec.max_entries == 0 {
        "max_entries must not be 0"
    } else if f & create::NO_PREALLOC == 0 {
        "an LPM trie needs BPF_F_NO_PREALLOC"
    } else if f & !mask != 0 || !access_ok(f) {
        "map_flags not valid for an LPM trie"
    } else if spec.key_size < LPM_KEY_HEADER + 1
        || spec.key_size > LPM_KEY_HEADER + LPM_DATA_SIZE_MAX
    {
        "LPM key_size must be 5..=260 (u32 prefixlen + 1..=256 data bytes)"
    } else if spec.value_size == 0 || spec.value_size > LPM_VAL_SIZE_MAX {
        "LPM value_size must be 1..=4194024"
    } else {
        return Ok(());
    };
    Err(MapError::InvalidSpec { reason })
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    child: [u32; 2],
    prefixlen: u32,
    /// An intermediate node: no value, only there to split the tree (exactly two children).
    im: bool,
    /// The value's arena slot (`NIL` for intermediate nodes).
    slot: u32,
}

/// Where a node hangs: the root, or a child of a node.
#[derive(Debug, Clone, Copy)]
enum Link {
    Root,
    Child(u32, usize),
}

#[derive(Debug)]
struct Trie {
    nodes: Vec<Node>,
    /// `data_size` key bytes per node index.
    keys: Vec<u8>,
    free_nodes: Vec<u32>,
    root: u32,
    n_entries: u32,
    free_slots: VecDeque<u32>,
}

/// The state of an LPM_TRIE map (the values are in the map's arena).
#[derive(Debug)]
pub(crate) struct LpmTrie {
    data_size: usize,
    max_prefixlen: u32,
    max_entries: u32,
    trie: RwLock<Trie>,
}

/// A key split into its prefix length and data.
#[derive(Debug, Clone, Copy)]
struct Key<'a> {
    prefixlen: u32,
    data: &'a [u8],
}

impl<'a> Key<'a> {
    fn of(key: &'a [u8]) -> Key<'a> {
        Key {
            prefixlen: u32::from_ne_bytes([key[0], key[1], key[2], key[3]]),
            data: &key[LPM_KEY_HEADER as usize..],
        }
    }
}

/// Bit `index` of `data`, most significant bit of byte 0 first (`extract_bit`).
fn bit(data: &[u8], index: u32) -> usize {
    usize::from(data[(index / 8) as usize] >> (7 - index % 8) & 1)
}

/// `longest_prefix_match`: the number of leading bits `a` and `b` share, at most `limit`.
fn common_bits(a: &[u8], b: &[u8], limit: u32) -> u32 {
    let mut n = 0u32;
    for (x, y) in a.iter().zip(b) {
        let d = x ^ y;
        n += d.leading_zeros();
        if d != 0 || n >= limit {
            break;
        }
    }
    n.min(limit)
}

fn oom() -> MapError {
    MapError::OutOfMemory {
        reason: "LPM trie node",
    }
}

impl Trie {
    fn data(&self, n: u32, size: usize) -> &[u8] {
        &self.keys[n as usize * size..(n as usize + 1) * size]
    }

    fn node(&self, n: u32) -> &Node {
        &self.nodes[n as usize]
    }

    fn get(&self, link: Link) -> u32 {
        match link {
            Link::Root => self.root,
            Link::Child(n, b) => self.nodes[n as usize].child[b],
        }
    }

    fn set(&mut self, link: Link, to: u32) {
        match link {
            Link::Root => self.root = to,
            Link::Child(n, b) => self.nodes[n as usize].child[b] = to,
        }
    }

    /// A new node holding `data`, allocated fallibly.
    fn alloc(&mut self, node: Node, data: &[u8]) -> Result<u32, MapError> {
        if let Some(n) = self.free_nodes.pop() {
            self.nodes[n as usize] = node;
            let size = data.len();
            self.keys[n as usize * size..(n as usize + 1) * size].copy_from_slice(data);
            return Ok(n);
        }
        let n = u32::try_from(self.nodes.len()).map_err(|_| oom())?;
        self.nodes.try_reserve(1).map_err(|_| oom())?;
        self.keys.try_reserve(data.len()).map_err(|_| oom())?;
        self.nodes.push(node);
        self.keys.extend_from_slice(data);
        Ok(n)
    }

    /// Frees node `n` and (if it has one) its value slot.
    fn free(&mut self, n: u32) {
        let slot = self.nodes[n as usize].slot;
        if slot != NIL {
            self.free_slots.push_back(slot);
            self.nodes[n as usize].slot = NIL;
        }
        // Capacity for every node was reserved when it was first allocated.
        self.free_nodes.push(n);
    }
}

impl LpmTrie {
    pub(crate) fn new(spec: &MapSpec) -> Result<LpmTrie, MapError> {
        let data_size = (spec.key_size - LPM_KEY_HEADER) as usize;
        let slots = spec.max_entries as usize + 1;
        let mut free_slots = VecDeque::new();
        free_slots.try_reserve_exact(slots).map_err(|_| oom())?;
        free_slots.extend(0..slots as u32);
        Ok(LpmTrie {
            data_size,
            max_prefixlen: data_size as u32 * 8,
            max_entries: spec.max_entries,
            trie: RwLock::new(Trie {
                nodes: Vec::new(),
                keys: Vec::new(),
                free_nodes: Vec::new(),
                root: NIL,
                n_entries: 0,
                free_slots,
            }),
        })
    }

    /// Value slots the arena needs: `max_entries` plus one for a replacement in a full trie.
    pub(crate) fn slots(spec: &MapSpec) -> usize {
        spec.max_entries as usize + 1
    }

    /// The most the trie's bookkeeping can grow to (what a map memory account is charged):
    /// the free-slot list, and nodes with their key data for every entry and as many
    /// intermediate nodes, plus the replacement's.
    pub(crate) fn bookkeeping_bytes(spec: &MapSpec) -> u64 {
        let slots = Self::slots(spec) as u64;
        let data = u64::from(spec.key_size.saturating_sub(LPM_KEY_HEADER));
        slots * 4 + 2 * slots * (std::mem::size_of::<Node>() as u64 + data + 4)
    }

    fn read(&self) -> RwLockReadGuard<'_, Trie> {
        // Every change to the tree is made of plain stores between checks that cannot panic.
        self.trie.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Trie> {
        self.trie.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn count(&self) -> u32 {
        self.read().n_entries
    }

    fn matchlen(&self, t: &Trie, n: u32, key: Key<'_>) -> u32 {
        let node = t.node(n);
        common_bits(
            t.data(n, self.data_size),
            key.data,
            node.prefixlen.min(key.prefixlen),
        )
    }

    /// `trie_lookup_elem`: the value slot of the longest prefix matching `key`.
    pub(crate) fn lookup_slot(&self, key: &[u8]) -> Option<usize> {
        let key = Key::of(key);
        if key.prefixlen > self.max_prefixlen {
            return None;
        }
        let t = self.read();
        let mut found = NIL;
        let mut n = t.root;
        while n != NIL {
            let m = self.matchlen(&t, n, key);
            let node = t.node(n);
            if m == self.max_prefixlen {
                found = n;
                break;
            }
            if m < node.prefixlen {
                break;
            }
            if !node.im {
                found = n;
            }
            n = node.child[bit(key.data, node.prefixlen)];
        }
        (found != NIL).then(|| t.node(found).slot as usize)
    }

    /// Host lookup: the longest match's value into `value`.
    pub(crate) fn lookup(
        &self,
        map: &Map,
        key: &[u8],
        value: &mut [u8],
        size: usize,
        dst: Dst,
    ) -> Result<(), MapError> {
        let slot = self.lookup_slot(key).ok_or(MapError::NotFound)?;
        let out = Map::buf_out("value", value, size)?;
        map.read_elem(slot as u32, dst, out)
    }

    /// `trie_update_elem`: add or replace the prefix `key` names exactly.
    pub(crate) fn update(
        &self,
        map: &Map,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if flags > BPF_EXIST {
            return Err(MapError::flags(
                flags,
                "LPM update takes BPF_ANY, NOEXIST or EXIST",
            ));
        }
        let key = Key::of(key);
        if key.prefixlen > self.max_prefixlen {
            return Err(MapError::InvalidKey {
                reason: "prefixlen longer than the key data",
            });
        }
        let mut t = self.write();
        let slot = t.free_slots.pop_front().ok_or(oom())?;
        map.write_elem(slot, crate::map::Src::Full(value), true)?;
        let new = match t.alloc(
            Node {
                child: [NIL; 2],
                prefixlen: key.prefixlen,
                im: false,
                slot,
            },
            key.data,
        ) {
            Ok(n) => n,
            Err(e) => {
                t.free_slots.push_front(slot);
                return Err(e);
            }
        };
        let r = self.link(&mut t, new, key, flags);
        if r.is_err() {
            t.free(new);
        }
        r
    }

    /// Puts the new node `new` for `key` in its place (the second half of
    /// `trie_update_elem`).
    fn link(&self, t: &mut Trie, new: u32, key: Key<'_>, flags: u64) -> Result<(), MapError> {
        let mut link = Link::Root;
        let mut m = 0;
        let mut n = t.root;
        while n != NIL {
            m = self.matchlen(t, n, key);
            let node = *t.node(n);
            if node.prefixlen != m || node.prefixlen == key.prefixlen {
                break;
            }
            link = Link::Child(n, bit(key.data, node.prefixlen));
            n = t.get(link);
        }
        if n == NIL {
            self.check_add(t, flags)?;
            t.set(link, new);
            return Ok(());
        }
        let node = *t.node(n);
        if node.prefixlen == m {
            if !node.im {
                if flags == BPF_NOEXIST {
                    return Err(MapError::Exists);
                }
            } else {
                self.check_add(t, flags)?;
            }
            t.nodes[new as usize].child = node.child;
            t.set(link, new);
            t.free(n);
            return Ok(());
        }
        self.check_add(t, flags)?;
        if m == key.prefixlen {
            let b = bit(t.data(n, self.data_size), m);
            t.nodes[new as usize].child[b] = n;
            t.set(link, new);
            return Ok(());
        }
        let data = t.data(n, self.data_size).to_vec();
        let im = match t.alloc(
            Node {
                child: [NIL; 2],
                prefixlen: m,
                im: true,
                slot: NIL,
            },
            &data,
        ) {
            Ok(im) => im,
            Err(e) => {
                t.n_entries -= 1;
                return Err(e);
            }
        };
        t.nodes[im as usize].child = if bit(key.data, m) == 1 {
            [n, new]
        } else {
            [new, n]
        };
        t.set(link, im);
        Ok(())
    }

    /// `trie_check_add_elem`: room for one more prefix.
    fn check_add(&self, t: &mut Trie, flags: u64) -> Result<(), MapError> {
        if flags == BPF_EXIST {
            return Err(MapError::NotFound);
        }
        if t.n_entries == self.max_entries {
            return Err(MapError::NoSpaceLeft {
                what: "LPM trie is full",
            });
        }
        t.n_entries += 1;
        Ok(())
    }

    /// `trie_delete_elem`: remove the prefix `key` names exactly.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        let key = Key::of(key);
        if key.prefixlen > self.max_prefixlen {
            return Err(MapError::InvalidKey {
                reason: "prefixlen longer than the key data",
            });
        }
        let mut t = self.write();
        let (mut trim, mut trim2) = (Link::Root, Link::Root);
        let mut parent = NIL;
        let mut m = 0;
        let mut n = t.root;
        while n != NIL {
            m = self.matchlen(&t, n, key);
            let node = *t.node(n);
            if node.prefixlen != m || node.prefixlen == key.prefixlen {
                break;
            }
            parent = n;
            trim2 = trim;
            trim = Link::Child(n, bit(key.data, node.prefixlen));
            n = t.get(trim);
        }
        if n == NIL {
            return Err(MapError::NotFound);
        }
        let node = *t.node(n);
        if node.prefixlen != key.prefixlen || node.prefixlen != m || node.im {
            return Err(MapError::NotFound);
        }
        t.n_entries -= 1;
        let [c0, c1] = node.child;
        if c0 != NIL && c1 != NIL {
            // Two children: the node stays as an intermediate one.
            let slot = node.slot;
            t.free_slots.push_back(slot);
            let nd = &mut t.nodes[n as usize];
            nd.im = true;
            nd.slot = NIL;
            return Ok(());
        }
        if parent != NIL && t.node(parent).im && c0 == NIL && c1 == NIL {
            let [p0, p1] = t.node(parent).child;
            t.set(trim2, if p0 == n { p1 } else { p0 });
            t.free(parent);
            t.free(n);
            return Ok(());
        }
        t.set(trim, if c0 != NIL { c0 } else { c1 });
        t.free(n);
        Ok(())
    }

    /// `trie_get_next_key`: the key after `key` in post-order, or the first one when `key` is
    /// None or does not name a stored prefix.
    pub(crate) fn next_key(&self, key: Option<&[u8]>, out: &mut [u8]) -> Result<(), MapError> {
        let t = self.read();
        if t.root == NIL {
            return Err(MapError::NotFound);
        }
        let key = key
            .map(Key::of)
            .filter(|k| k.prefixlen <= self.max_prefixlen);
        let next = match key {
            None => self.leftmost(&t, t.root),
            Some(key) => self.after(&t, key)?,
        };
        let node = t.node(next);
        out[..4].copy_from_slice(&node.prefixlen.to_ne_bytes());
        out[4..4 + self.data_size].copy_from_slice(t.data(next, self.data_size));
        Ok(())
    }

    /// The node after the exact match of `key` in post-order (or the first node when `key`
    /// is not stored); `ENOENT` after the last.
    fn after(&self, t: &Trie, key: Key<'_>) -> Result<u32, MapError> {
        let mut stack = Vec::new();
        stack
            .try_reserve(self.max_prefixlen as usize + 1)
            .map_err(|_| oom())?;
        let mut m = 0;
        let mut n = t.root;
        while n != NIL {
            stack.push(n);
            m = self.matchlen(t, n, key);
            let node = t.node(n);
            if node.prefixlen != m || node.prefixlen == key.prefixlen {
                break;
            }
            n = node.child[bit(key.data, node.prefixlen)];
        }
        if n == NIL || t.node(n).prefixlen != m || t.node(n).im {
            return Ok(self.leftmost(t, t.root));
        }
        let mut node = n;
        while stack.len() > 1 {
            let parent = stack[stack.len() - 2];
            let p = t.node(parent);
            if p.child[0] == node && p.child[1] != NIL {
                return Ok(self.leftmost(t, p.child[1]));
            }
            if !p.im {
                return Ok(parent);
            }
            node = parent;
            stack.pop();
        }
        Err(MapError::NotFound)
    }

    /// The first node of the subtree at `root` in post-order (never intermediate: those
    /// always have two children).
    fn leftmost(&self, t: &Trie, root: u32) -> u32 {
        let mut next = root;
        let mut n = root;
        while n != NIL {
            let node = t.node(n);
            if node.im {
                n = node.child[0];
            } else {
                next = n;
                n = if node.child[0] != NIL {
                    node.child[0]
                } else {
                    node.child[1]
                };
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MapSpec, MapType};

    fn trie(max: u32) -> Map {
        let spec = MapSpec::new(MapType::LpmTrie, 8, 4, max).with_flags(create::NO_PREALLOC);
        Map::create(spec, 1).unwrap()
    }

    fn key(len: u32, ip: [u8; 4]) -> Vec<u8> {
        [&len.to_ne_bytes()[..], &ip].concat()
    }

    fn all_keys(m: &Map) -> Vec<(u32, [u8; 4])> {
        let mut out = Vec::new();
        let mut prev: Option<Vec<u8>> = None;
        let mut k = [0u8; 8];
        while m.get_next_key(prev.as_deref(), &mut k, 0).is_ok() {
            out.push((
                u32::from_ne_bytes(k[..4].try_into().unwrap()),
                k[4..].try_into().unwrap(),
            ));
            prev = Some(k.to_vec());
        }
        out
    }

    #[test]
    fn bits_and_common_prefixes() {
        assert_eq!(bit(&[0x80, 0x01], 0), 1);
        assert_eq!(bit(&[0x80, 0x01], 15), 1);
        assert_eq!(bit(&[0x80, 0x01], 14), 0);
        assert_eq!(common_bits(&[192, 168, 0, 0], &[192, 168, 1, 0], 32), 23);
        assert_eq!(common_bits(&[192, 168, 0, 0], &[192, 168, 1, 0], 16), 16);
        assert_eq!(common_bits(&[1, 2, 3, 4], &[1, 2, 3, 4], 32), 32);
        assert_eq!(common_bits(&[0], &[0xff], 8), 0);
    }

    #[test]
    fn next_key_is_the_kernels_post_order() {
        // The example at the top of kernel/bpf/lpm_trie.c.
        let m = trie(8);
        for (len, ip, v) in [
            (16, [192, 168, 0, 0], 1u32),
            (24, [192, 168, 0, 0], 2),
            (24, [192, 168, 128, 0], 3),
            (24, [192, 168, 1, 0], 5),
        ] {
            m.update(&key(len, ip), &v.to_ne_bytes(), 0).unwrap();
        }
        assert_eq!(
            all_keys(&m),
            [
                (24, [192, 168, 0, 0]),
                (24, [192, 168, 1, 0]),
                (24, [192, 168, 128, 0]),
                (16, [192, 168, 0, 0]),
            ]
        );
        assert_eq!(m.element_count(), 4);
    }

    #[test]
    fn deletes_collapse_intermediate_nodes_and_free_slots() {
        let m = trie(2);
        m.update(&key(24, [10, 0, 0, 0]), &1u32.to_ne_bytes(), 0)
            .unwrap();
        m.update(&key(24, [10, 0, 1, 0]), &2u32.to_ne_bytes(), 0)
            .unwrap();
        // Full: a new prefix is ENOSPC, replacing one still works.
        let e = m.update(&key(8, [10, 0, 0, 0]), &3u32.to_ne_bytes(), 0);
        assert_eq!(e.unwrap_err().errno(), 28);
        m.update(&key(24, [10, 0, 1, 0]), &4u32.to_ne_bytes(), 0)
            .unwrap();
        m.delete(&key(24, [10, 0, 0, 0]), 0).unwrap();
        assert_eq!(all_keys(&m), [(24, [10, 0, 1, 0])]);
        let mut v = [0u8; 4];
        m.lookup(&key(32, [10, 0, 1, 9]), &mut v, 0).unwrap();
        assert_eq!(u32::from_ne_bytes(v), 4);
        assert_eq!(m.delete(&key(24, [10, 0, 0, 0]), 0).unwrap_err().errno(), 2);
        for i in 0..50u8 {
            m.update(&key(32, [1, 2, 3, i]), &[i; 4], 0).unwrap();
            m.delete(&key(32, [1, 2, 3, i]), 0).unwrap();
        }
        assert_eq!(m.element_count(), 1);
    }

    #[test]
    fn update_flags_follow_the_kernel() {
        let m = trie(4);
        let k = key(16, [1, 2, 0, 0]);
        assert_eq!(m.update(&k, &[0; 4], 2).unwrap_err().errno(), 2);
        m.update(&k, &[0; 4], 1).unwrap();
        assert_eq!(m.update(&k, &[0; 4], 1).unwrap_err().errno(), 17);
        m.update(&k, &[1; 4], 2).unwrap();
        assert_eq!(m.update(&k, &[0; 4], 3).unwrap_err().errno(), 22);
        assert_eq!(
            m.update(&key(33, [0; 4]), &[0; 4], 0).unwrap_err().errno(),
            22
        );
        assert_eq!(m.delete(&key(33, [0; 4]), 0).unwrap_err().errno(), 22);
    }
}
