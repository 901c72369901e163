//! Who a process is, in terms another process can check: a lease names its holder this way, so
//! that a run on the same machine can tell at once that the holder's process is gone.
//!
//! A host name is not enough: pods, compose replicas and containers repeat names and pids (every
//! container's first process is pid 1). A holder is the same process only when the boot (the
//! kernel's boot id), the pid namespace and the process's start time all match; a process is
//! known to be gone only when the reader shares the holder's boot and pid namespace and finds
//! no process with that pid and start time. Anything else is left to the lease's expiry.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::env::host_name;

/// A process, as a lease names its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// For people: the machine's (or pod's) name.
    pub host: String,
    pub pid: u32,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): the same on one machine until
    /// it reboots, different on every other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The pid namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`): pids are only
    /// comparable inside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
    /// When the process started, in clock ticks since boot (`/proc/<pid>/stat`, field 22): a
    /// pid reused by a later process has another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
}

impl Identity {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            host: host_name(),
            pid,
            boot_id: boot_id(),
            pid_ns: pid_namespace(),
            started: start_ticks(pid),
        }
    }

    /// Whether this process is known to be gone: it ran in this boot and pid namespace, and no
    /// process with its pid and start time exists now. `false` when that cannot be told (another
    /// machine, another container, no `/proc`).
    pub fn is_gone(&self) -> bool {
        let here = (boot_id(), pid_namespace());
        let comparable = match (&self.boot_id, &self.pid_ns, here) {
            (Some(b), Some(n), (Some(hb), Some(hn))) => *b == hb && *n == hn,
            _ => false,
        };
        // where /proc hides other processes (hidepid), an absent one tells nothing
        if !comparable || !Path::new("/proc/1").exists() {
            return false;
        }
        let proc = Path::new("/proc").join(self.pid.to_string());
        match std::fs::metadata(&proc) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(_) => false,
            // the pid is in use: by the holder, unless another process got it since
            Ok(_) => match (start_ticks(self.pid), self.started) {
                (Some(now), Some(then)) => now != then,
                _ => false,
            },
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.is_empty() {
            "an unnamed host"
        } else {
            &self.host
        };
        write!(f, "pid {} on {host}", self.pid)
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|s| !s.is_empty())
}

fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(link.display().to_string())
}

/// The start time of process `pid` (clock ticks since boot); `None` when there is no such
/// process (or no `/proc`).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) is in parentheses and may hold spaces: count from after it
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_gone_and_a_finished_one_is() {
        let me = Identity::current();
        if me.boot_id.is_none() || me.started.is_none() {
            eprintln!("SKIP: no /proc here");
            return;
        }
        assert!(!me.is_gone());
        let mut child = std::process::Command::new("true")
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let started = start_ticks(child.id());
        let _ = child.wait();
        let finished = Identity {
            pid: child.id(),
            started,
            ..me.clone()
        };
        assert!(finished.is_gone());
        // the same pid with another start time is another process: the holder is gone
        let reused = Identity {
            started: me.started.map(|s| s + 1),
            ..me.clone()
        };
        assert!(reused.is_gone());
    }

    #[test]
    fn a_process_of_another_boot_or_pid_namespace_is_never_judged_gone() {
        let me = Identity::current();
        let elsewhere = Identity {
            pid: 999_999,
            boot_id: Some("another-machine".into()),
            ..me.clone()
        };
        assert!(!elsewhere.is_gone());
        let other_container = Identity {
            pid: 999_999,
            pid_ns: Some("pid:[1]".into()),
            ..me.clone()
        };
        assert!(!other_container.is_gone());
        let unknown = Identity {
            pid: 999_999,
            boot_id: None,
            ..me
        };
        assert!(!unknown.is_gone(), "an old holder without a boot id");
    }
}
