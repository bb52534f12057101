//! The machine's share of each side: the suite confined to stated CPUs and a CFS quota (cgroup v1, which works on
//! this host where cgroup v2's `cpu.max` does not), the generator pinned to the rest, and CPU time per program
//! read from `/proc` during a run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

const CGROUP_ROOT: &str = "/sys/fs/cgroup/cpu";
// A short period: with the default 100 ms, a suite given half a core stalls up to 50 ms at a time, and the stalls,
// not the work, would set the p99 (seen: 115 ms p99 at 200 requests/s). 10 ms behaves like a slower CPU.
const PERIOD_US: u64 = 10_000;

/// The suite's CPUs and quota; processes adopted into it are given back to the whole machine when dropped.
pub struct Confinement {
    cgroup: Option<PathBuf>,
    cores: Option<f64>,
    cpus: Option<String>,
    adopted: std::sync::Mutex<Vec<u32>>,
}

impl Confinement {
    pub fn create(cpus: Option<&str>, cores: Option<f64>) -> anyhow::Result<Confinement> {
        let cgroup = match cores {
            Some(cores) => {
                anyhow::ensure!(
                    cores > 0.0 && cores <= 64.0,
                    "the suite's cores must be in (0, 64]"
                );
                let dir =
                    PathBuf::from(CGROUP_ROOT).join(format!("hc-loadtest-{}", std::process::id()));
                fs::create_dir_all(&dir).with_context(|| {
                    format!(
                        "creating {} (cgroup v1 cpu controller; needs root)",
                        dir.display()
                    )
                })?;
                fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
                fs::write(dir.join("cpu.cfs_quota_us"), quota_us(cores))?;
                Some(dir)
            }
            None => None,
        };
        Ok(Confinement {
            cgroup,
            cores,
            cpus: cpus.map(str::to_owned),
            adopted: Default::default(),
        })
    }

    /// Moves a process (all its threads) into the suite's cgroup and onto its CPUs.
    pub fn adopt(&self, pid: u32) -> anyhow::Result<()> {
        if let Some(dir) = &self.cgroup {
            fs::write(dir.join("cgroup.procs"), pid.to_string())
                .with_context(|| format!("moving {pid} into {}", dir.display()))?;
        }
        if let Some(cpus) = &self.cpus {
            set_affinity(pid, cpus)?;
        }
        if let Ok(mut a) = self.adopted.lock() {
            a.push(pid);
        }
        Ok(())
    }

    /// Adopts every running process with one of these command names (PostgreSQL's backends are forked from the
    /// postmaster, so later ones follow it into the cgroup).
    pub fn adopt_by_name(&self, names: &[&str]) -> anyhow::Result<()> {
        for (pid, name) in processes() {
            if names.contains(&name.as_str()) {
                match self.adopt(pid) {
                    // A PostgreSQL backend whose connection closed between the listing and the move.
                    Err(_) if !Path::new(&format!("/proc/{pid}")).exists() => continue,
                    outcome => outcome?,
                }
            }
        }
        Ok(())
    }

    /// Seeding is never timed: while it runs, the suite has every CPU and no quota, so that a population of a
    /// million is seeded in minutes rather than the hours half a core would take. `confine_again` ends it.
    pub fn lift(&self) -> anyhow::Result<()> {
        if let Some(dir) = &self.cgroup {
            fs::write(dir.join("cpu.cfs_quota_us"), "-1")?;
        }
        if self.cpus.is_some() {
            let all = all_cpus();
            for pid in self.members() {
                set_affinity(pid, &all)?;
            }
        }
        Ok(())
    }

    /// The quota and CPUs of `create` again, for every process in the suite (those forked meanwhile included).
    pub fn confine_again(&self) -> anyhow::Result<()> {
        if let (Some(dir), Some(cores)) = (&self.cgroup, self.cores) {
            fs::write(dir.join("cpu.cfs_quota_us"), quota_us(cores))?;
        }
        if let Some(cpus) = &self.cpus {
            for pid in self.members() {
                set_affinity(pid, cpus)?;
            }
        }
        Ok(())
    }

    /// The adopted processes and everything in the group (PostgreSQL backends forked meanwhile too).
    fn members(&self) -> Vec<u32> {
        let mut members = self.adopted.lock().map(|a| a.clone()).unwrap_or_default();
        if let Some(dir) = &self.cgroup
            && let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs"))
        {
            members.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        members.sort_unstable();
        members.dedup();
        members
    }
}

/// A CFS quota of `cores` cores per period, as `cpu.cfs_quota_us` takes it.
fn quota_us(cores: f64) -> String {
    ((cores * PERIOD_US as f64) as u64).to_string()
}

/// Every CPU of the machine, as a taskset list. Not `available_parallelism`: that counts the CPUs this process may
/// use, and the generator is pinned to its own.
fn all_cpus() -> String {
    fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "0-1".into())
}

impl Drop for Confinement {
    fn drop(&mut self) {
        let all = all_cpus();
        let leftovers = self.members();
        if let Some(dir) = &self.cgroup {
            // Everything still in the group goes back to the root.
            for pid in &leftovers {
                let _ = fs::write(
                    PathBuf::from(CGROUP_ROOT).join("cgroup.procs"),
                    pid.to_string(),
                );
            }
            let _ = fs::remove_dir(dir);
        }
        if self.cpus.is_some() {
            for pid in leftovers {
                let _ = set_affinity(pid, &all);
            }
        }
    }
}

/// Pins a process and all its threads (taskset -a).
pub fn set_affinity(pid: u32, cpus: &str) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()?;
    // A process that ended meanwhile is not an error.
    anyhow::ensure!(
        out.status.success() || !PathBuf::from(format!("/proc/{pid}")).exists(),
        "taskset {cpus} {pid}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Every process's id and command name.
fn processes() -> Vec<(u32, String)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some((pid, comm.trim().to_owned()))
    })
    .collect()
}

/// User plus system CPU time of a process (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc(5): the 12th and 13th after the command name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux for every architecture we run on (getconf CLK_TCK).
    Some(ticks / 100.0)
}

/// CPU seconds by program at one moment: the suite's services by name, PostgreSQL and Redis summed over their
/// processes, and this generator.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    by_program: BTreeMap<String, f64>,
}

impl CpuSample {
    pub fn take(services: &[(String, u32)]) -> CpuSample {
        let mut by_program = BTreeMap::new();
        for (name, pid) in services {
            by_program.insert(name.clone(), cpu_seconds(*pid).unwrap_or(0.0));
        }
        for (pid, name) in processes() {
            let key = match name.as_str() {
                "postgres" => "postgresql",
                "redis-server" => "redis",
                _ => continue,
            };
            *by_program.entry(key.to_owned()).or_default() += cpu_seconds(pid).unwrap_or(0.0);
        }
        by_program.insert(
            "load generator".into(),
            cpu_seconds(std::process::id()).unwrap_or(0.0),
        );
        CpuSample {
            at: Instant::now(),
            by_program,
        }
    }

    /// Cores used by each program between two samples (PostgreSQL backends that ended meanwhile are missed: the
    /// services keep pooled connections, so there are few).
    pub fn cores_since(&self, earlier: &CpuSample) -> BTreeMap<String, f64> {
        let elapsed = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        self.by_program
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    ((v - earlier.by_program.get(k).copied().unwrap_or(0.0)) / elapsed).max(0.0),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_cpu_time_is_read_and_grows_with_work() {
        // Work until the CPU time has grown (on a busy machine that takes longer than the same wall time).
        let before = cpu_seconds(std::process::id()).expect("own stat");
        let t = Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after - before < 0.1 && t.elapsed().as_secs() < 20 {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            after = cpu_seconds(std::process::id()).expect("own stat");
        }
        std::hint::black_box(x);
        assert!(after - before >= 0.1, "{before} -> {after}");
        let s0 = CpuSample::take(&[]);
        let s1 = CpuSample::take(&[]);
        assert!(s1.cores_since(&s0).contains_key("load generator"));
    }
}
