//! Cgroup membership: `bpf_skb_under_cgroup` (33) and `bpf_current_task_under_cgroup` (37)
//! against a CGROUP_ARRAY (`bpfvm_maps::cgroup_array`), and cgroup ids:
//! `bpf_get_current_cgroup_id` (80), `bpf_get_current_ancestor_cgroup_id` (123),
//! `bpf_skb_cgroup_id` (79) and `bpf_skb_ancestor_cgroup_id` (83).
//!
//! bpfvm has no cgroups: each simulated CPU says which simulated cgroup its current task
//! is in and which one the packet's socket is in, as a [`CgroupEnv`] of cgroup *paths* (the
//! cgroup ids from the root down; the cgroup2 root is id 1). The defaults are those of
//! `BPF_PROG_TEST_RUN` run by a process in the root cgroup: the task in the root, and the
//! packet's socket (the test run's dummy socket) in the root too. A packet without a socket
//! (`skb_socket: None`) makes helper 33 `-ENOENT`, as an skb without a full socket.
//!
//! Helpers 33 and 37 return 1 when the cgroup at `index` of the map is on the path, 0 when
//! it is not, `-E2BIG` for an index past `max_entries` and `-EAGAIN` for an empty slot.
//! The id helpers return the last id of the path (the cgroup itself) or, for an ancestor
//! level, the id at that depth (the root is level 0), 0 for a level below the cgroup or
//! negative (the kernel's `cgroup_ancestor` gives NULL) and, for the packet helpers, 0 for
//! a packet without a full socket.
//!
//! ```
//! use std::sync::Arc;
//! use bpfvm_helpers::cgroup::CgroupEnv;
//! use bpfvm_helpers::{HelperContext, ProgramMap, Registry};
//! use bpfvm_maps::{Map, MapSpec, MapType};
//!
//! let registry = Registry::with_builtins();
//! let cgroups = Arc::new(Map::create(MapSpec::new(MapType::CgroupArray, 4, 4, 2), 1)?);
//! cgroups.cgroup_array_update(0, 7, 0)?;
//! let mut ctx = HelperContext::new(0, 1);
//! ctx.set_maps(Arc::new([cgroups as Arc<dyn ProgramMap>]));
//! let map = 3 << 52; // map 0 of the program
//! assert_eq!(registry.call(37, &mut ctx, [map, 0, 0, 0, 0]).unwrap(), 0); // in the root only
//! ctx.set_cgroups(CgroupEnv { task: vec![1, 7, 9], ..CgroupEnv::default() });
//! assert_eq!(registry.call(37, &mut ctx, [map, 0, 0, 0, 0]).unwrap(), 1); // 9 is under 7
//! assert_eq!(registry.call(37, &mut ctx, [map, 1, 0, 0, 0]).unwrap() as i64, -11); // empty
//! assert_eq!(registry.call(37, &mut ctx, [map, 2, 0, 0, 0]).unwrap() as i64, -7); // past the end
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

use bpfvm_maps::cgroup_array::{path_is_under, ROOT_CGROUP_ID};

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::{HelperFn, Registry};

const EINVAL: i32 = 22;
const ENOENT: i32 = 2;
const EAGAIN: i32 = 11;

/// Which simulated cgroups a CPU's current task and packet socket are in: paths of cgroup
/// ids from the root (id 1) down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEnv {
    /// The current task's cgroup path (default: the root, `[1]`).
    pub task: Vec<u64>,
    /// The packet's socket's cgroup path, `None` for a packet without a full socket
    /// (default: the root, as the socket `BPF_PROG_TEST_RUN` gives a packet).
    pub skb_socket: Option<Vec<u64>>,
}

impl Default for CgroupEnv {
    fn default() -> CgroupEnv {
        CgroupEnv {
            task: vec![ROOT_CGROUP_ID],
            skb_socket: Some(vec![ROOT_CGROUP_ID]),
        }
    }
}

impl HelperContext {
    /// Sets which simulated cgroups the CPU's task and packet socket are in.
    pub fn set_cgroups(&mut self, cgroups: CgroupEnv) {
        self.cgroups = cgroups;
    }

    /// The CPU's simulated cgroup membership.
    pub fn cgroups(&self) -> &CgroupEnv {
        &self.cgroups
    }
}

/// Registers helpers 33, 37, 79, 80, 83 and 123.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, HelperFn); 6] = [
        (HelperId(33), "bpf_skb_under_cgroup", skb_under_cgroup),
        (
            HelperId(37),
            "bpf_current_task_under_cgroup",
            current_task_under_cgroup,
        ),
        (HelperId(79), "bpf_skb_cgroup_id", skb_cgroup_id),
        (HelperId(80), "bpf_get_current_cgroup_id", current_cgroup_id),
        (
            HelperId(83),
            "bpf_skb_ancestor_cgroup_id",
            skb_ancestor_cgroup_id,
        ),
        (
            HelperId(123),
            "bpf_get_current_ancestor_cgroup_id",
            current_ancestor_cgroup_id,
        ),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

fn neg(errno: i32) -> u64 {
    (-i64::from(errno)) as u64
}

/// Whether `path` is under the cgroup at `index` of CGROUP_ARRAY `handle`.
fn under(
    ctx: &HelperContext,
    name: &str,
    handle: u64,
    index: u64,
    path: &[u64],
) -> Result<u64, Box<HelperError>> {
    let (_, map) = ctx.map_arg(name, handle)?;
    let Some(m) = map.as_map() else {
        return Ok(neg(EINVAL));
    };
    // The kernel reads the index as a u32.
    Ok(match m.cgroup_array_get(index as u32) {
        Ok(Some(cgroup)) => u64::from(path_is_under(path, cgroup)),
        Ok(None) => neg(EAGAIN),
        Err(e) => neg(e.errno()),
    })
}

/// `bpf_skb_under_cgroup(skb, map, index)`: whether the packet's socket is in the cgroup at
/// `index` or below it.
pub fn skb_under_cgroup(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_skb_under_cgroup";
    let Some(path) = ctx.cgroups.skb_socket.clone() else {
        return Ok(neg(ENOENT));
    };
    under(ctx, NAME, a[1], a[2], &path)
}

/// `bpf_current_task_under_cgroup(map, index)`: whether the current task is in the cgroup at
/// `index` or below it.
pub fn current_task_under_cgroup(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_current_task_under_cgroup";
    let path = ctx.cgroups.task.clone();
    under(ctx, NAME, a[0], a[1], &path)
}

/// The id of the cgroup at depth `level` of `path` (the root is level 0), 0 when the level
/// is negative or below the cgroup (the kernel reads `level` as an `int`).
fn ancestor(path: &[u64], level: u64) -> u64 {
    usize::try_from(level as i32)
        .ok()
        .and_then(|l| path.get(l))
        .copied()
        .unwrap_or(0)
}

/// `bpf_get_current_cgroup_id()`: the id of the current task's cgroup.
pub fn current_cgroup_id(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx.cgroups.task.last().copied().unwrap_or(ROOT_CGROUP_ID))
}

/// `bpf_get_current_ancestor_cgroup_id(level)`: the id of the current task's cgroup's
/// ancestor at `level`.
pub fn current_ancestor_cgroup_id(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    Ok(ancestor(&ctx.cgroups.task, a[0]))
}

/// `bpf_skb_cgroup_id(skb)`: the id of the packet's socket's cgroup, 0 without a full
/// socket.
pub fn skb_cgroup_id(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx
        .cgroups
        .skb_socket
        .as_ref()
        .and_then(|p| p.last().copied())
        .unwrap_or(0))
}

/// `bpf_skb_ancestor_cgroup_id(skb, level)`: the id of the packet's socket's cgroup's
/// ancestor at `level`, 0 without a full socket.
pub fn skb_ancestor_cgroup_id(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    Ok(ctx
        .cgroups
        .skb_socket
        .as_ref()
        .map_or(0, |p| ancestor(p, a[1])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use bpfvm_maps::{Map, MapSpec, MapType};

    use crate::maps::ProgramMap;

    #[test]
    fn skb_membership_follows_the_socket() {
        let m = Arc::new(Map::create(MapSpec::new(MapType::CgroupArray, 4, 4, 2), 1).unwrap());
        m.cgroup_array_update(0, ROOT_CGROUP_ID, 0).unwrap();
        m.cgroup_array_update(1, 5, 0).unwrap();
        let mut ctx = HelperContext::new(0, 1);
        ctx.set_maps(Arc::new([m as Arc<dyn ProgramMap>]));
        let map = 3 << 52;
        let call = |ctx: &mut HelperContext, i: u64| {
            skb_under_cgroup(ctx, &[0, map, i, 0, 0]).unwrap() as i64
        };
        assert_eq!(call(&mut ctx, 0), 1);
        assert_eq!(call(&mut ctx, 1), 0);
        assert_eq!(call(&mut ctx, 2), -7);
        assert_eq!(call(&mut ctx, 1 << 32), 1, "the index is a u32");
        ctx.set_cgroups(CgroupEnv {
            skb_socket: Some(vec![1, 5]),
            ..CgroupEnv::default()
        });
        assert_eq!(call(&mut ctx, 1), 1);
        ctx.set_cgroups(CgroupEnv {
            skb_socket: None,
            ..CgroupEnv::default()
        });
        assert_eq!(call(&mut ctx, 0), -2);
    }

    #[test]
    fn ids_are_the_path_s_and_levels_count_from_the_root() {
        let mut ctx = HelperContext::new(0, 1);
        let id = |ctx: &mut HelperContext, f: HelperFn, a: [u64; 5]| f(ctx, &a).unwrap();
        assert_eq!(
            id(&mut ctx, current_cgroup_id, [0; 5]),
            1,
            "the root by default"
        );
        assert_eq!(id(&mut ctx, skb_cgroup_id, [0; 5]), 1);
        ctx.set_cgroups(CgroupEnv {
            task: vec![1, 7, 9],
            skb_socket: Some(vec![1, 5]),
        });
        assert_eq!(id(&mut ctx, current_cgroup_id, [0; 5]), 9);
        let levels = [0, 1, 2, 3, u64::MAX, 1 << 32];
        let task: Vec<u64> = levels
            .iter()
            .map(|&l| id(&mut ctx, current_ancestor_cgroup_id, [l, 0, 0, 0, 0]))
            .collect();
        // Level -1 is 0; the level is an int, so 1 << 32 is level 0.
        assert_eq!(task, [1, 7, 9, 0, 0, 1]);
        assert_eq!(id(&mut ctx, skb_cgroup_id, [0; 5]), 5);
        let skb: Vec<u64> = levels
            .iter()
            .map(|&l| id(&mut ctx, skb_ancestor_cgroup_id, [0, l, 0, 0, 0]))
            .collect();
        assert_eq!(skb, [1, 5, 0, 0, 0, 1]);
        ctx.set_cgroups(CgroupEnv {
            skb_socket: None,
            ..CgroupEnv::default()
        });
        assert_eq!(id(&mut ctx, skb_cgroup_id, [0; 5]), 0, "no full socket");
        assert_eq!(id(&mut ctx, skb_ancestor_cgroup_id, [0; 5]), 0);
    }
}
