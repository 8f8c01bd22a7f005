//! Process and machine figures from /proc: resident memory and CPU time.

use std::time::Instant;

/// Resident set size of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU ticks (user + system) used by `pid` so far.
fn proc_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

/// (busy, total) ticks of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = cpu.iter().sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU use over an interval: of one process (in cores, 1.0 = one core busy) and of the
/// whole machine (fraction of all cores).
pub struct CpuMeter {
    pid: u32,
    start: Instant,
    proc_start: u64,
    machine_start: (u64, u64),
}

pub struct CpuUse {
    pub process_cores: f64,
    pub machine_fraction: f64,
}

const TICKS_PER_SEC: f64 = 100.0;

impl CpuMeter {
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            start: Instant::now(),
            proc_start: proc_ticks(pid),
            machine_start: machine_ticks(),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let secs = self.start.elapsed().as_secs_f64().max(1e-6);
        let used = proc_ticks(self.pid).saturating_sub(self.proc_start) as f64 / TICKS_PER_SEC;
        let (busy, total) = machine_ticks();
        let busy = busy.saturating_sub(self.machine_start.0) as f64;
        let total = total.saturating_sub(self.machine_start.1).max(1) as f64;
        CpuUse {
            process_cores: used / secs,
            machine_fraction: busy / total,
        }
    }
}
