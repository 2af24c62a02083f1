//! What every benchmark shares: a real `plinth serve` child process (the
//! running binary itself), free ports, memory readings and percentiles.

use anyhow::Result;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `plinth serve` child, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `plinth serve` (this very binary: the benches run inside
/// `plinth bench …`) on a free loopback port.
pub(crate) fn start(
    data_dir: &Path,
    database_url: Option<&str>,
    location: Option<&Path>,
    log: &Path,
    extra: &[&str],
) -> Result<Server> {
    let port = free_port()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--refresh-interval", "3600"]);
    command.arg("--data-dir").arg(data_dir);
    if let Some(url) = database_url {
        command.args(["--database-url", url]);
    }
    if let Some(location) = location {
        command.arg("--location").arg(location);
    }
    command.args(extra);
    let log = std::fs::File::create(log)?;
    command.stdout(Stdio::null()).stderr(log).env("PLINTH_LOG", "info");
    let child = command.spawn()?;
    Ok(Server { child, base: format!("http://127.0.0.1:{port}") })
}

/// The server's CPU time (user + system), seconds.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Linux reports in USER_HZ, 100 on every supported architecture.
    (ticks(11) + ticks(12)) / 100.0
}

/// The CPU time of every process named `name` (e.g. `postgres`, whose
/// backends are one process per connection), seconds; processes that end
/// between two readings drop out of the second, so read it over windows
/// where the set is stable (a pool's connections).
pub(crate) fn cpu_seconds_named(name: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .map(cpu_seconds)
        .sum()
}

/// Waits until the server has been idle (under 2 % of a core) for `quiet`
/// and returns its CPU seconds when that quiet stretch began: the CPU its
/// background work (compaction, governance) took up to then. Gives up
/// after `limit` and returns the reading then.
pub(crate) async fn settle(pid: u32, quiet: std::time::Duration, limit: std::time::Duration) -> f64 {
    let started = std::time::Instant::now();
    let window = quiet.as_secs().max(1) as usize;
    let mut readings = std::collections::VecDeque::from([cpu_seconds(pid)]);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        readings.push_back(cpu_seconds(pid));
        if readings.len() > window + 1 {
            readings.pop_front();
        }
        let (first, last) = (readings[0], readings[readings.len() - 1]);
        if readings.len() == window + 1 && last - first < 0.02 * window as f64 {
            return first;
        }
        if started.elapsed() >= limit {
            return last;
        }
    }
}

/// The machine a report was measured on: cores, the CPU's name with its
/// family and model numbers, and the architecture. The name alone is not
/// enough: "AMD EPYC" has covered machines of this kind that ran the same
/// bench at speeds 1.5 to 2 times apart.
pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = cpu_description(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
    format!("{cores} cores, {cpu}, {}", std::env::consts::ARCH)
}

/// The first processor's name, family and model in `/proc/cpuinfo` text.
fn cpu_description(cpuinfo: &str) -> String {
    let field = |name: &str| {
        cpuinfo
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_once(':'))
            .find(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    };
    let mut cpu = field("model name").unwrap_or("unknown CPU").to_string();
    if let (Some(family), Some(model)) = (field("cpu family"), field("model")) {
        cpu.push_str(&format!(" (family {family}, model {model})"));
    }
    cpu
}

/// CPU time the hypervisor gave to other guests while this one wanted it
/// (`steal` in `/proc/stat`), seconds, summed over the cores; 0 where the
/// kernel does not report it. Read it before and after a measured window:
/// what it grew by is time the window's figures lost to the host.
pub(crate) fn steal_seconds() -> f64 {
    steal_in(&std::fs::read_to_string("/proc/stat").unwrap_or_default()).unwrap_or(0.0)
}

/// The steal seconds in `/proc/stat` text: the eighth figure of its
/// `cpu` line, in USER_HZ (100 on every architecture Linux supports).
fn steal_in(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace().nth(8)?.parse::<f64>().ok().map(|ticks| ticks / 100.0)
}

/// Peak resident memory (`VmHWM`), MiB.
pub(crate) fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// Resident memory now (`VmRSS`), MiB.
pub(crate) fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The `p` quantile (0–1) of sorted samples, nearest rank; 0 when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_is_named_with_its_family_and_model() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\
                       model name\t: AMD EPYC\nstepping\t: 1\n\nprocessor\t: 1\nmodel\t\t: 17\n";
        assert_eq!(cpu_description(cpuinfo), "AMD EPYC (family 25, model 1)");
        // Without family and model (other architectures), the name alone.
        assert_eq!(cpu_description("model name\t: Some CPU\n"), "Some CPU");
        assert_eq!(cpu_description(""), "unknown CPU");
    }

    #[test]
    fn steal_is_the_eighth_figure_of_the_cpu_line() {
        let stat = "cpu  408868 0 25157 268979 3036 0 928 5076 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(steal_in(stat), Some(50.76));
        // An older kernel's shorter line, or no cpu line at all.
        assert_eq!(steal_in("cpu  1 2 3 4\n"), None);
        assert_eq!(steal_in("intr 5\n"), None);
    }
}
