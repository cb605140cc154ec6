//! dora "machines" on one host: a coordinator and one daemon per machine id, each a process of
//! its own on free loopback ports (`--store memory`: nothing left in `~/.dora`), wired to each
//! other through zenoh without multicast, and the CLI pointed at that coordinator. Dropping the
//! cluster stops its dataflows (`dora down --force`), then kills every process it started and
//! every node its daemons still run, each by its process id.

use std::{
    fs::File,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use crate::{Background, dora_cli, run_to_end, text, user_environment, wait_for, workspace_root};

/// A coordinator and its daemons.
pub struct Cluster {
    port: u16,
    coordinator: Child,
    /// Machine id and daemon process.
    daemons: Vec<(String, Child)>,
    log_dir: PathBuf,
    /// `_work` folders the daemons had before (they create one per dataflow session).
    work_before: Vec<PathBuf>,
}

impl Cluster {
    /// Starts a coordinator and a daemon for each of `machines`, in the workspace root (a
    /// multi-machine dataflow runs nodes from `DAEMON_FOLDER/_work/SESSION` joined with their
    /// `deploy.working_dir`); returns once `dora cluster status` lists every daemon.
    pub fn start(machines: &[&str]) -> Self {
        let log_dir = crate::temp_dir("cluster");
        let port = free_port_pair();
        let coordinator = spawn(
            Command::new(dora_cli())
                .args(["coordinator", "--interface", "127.0.0.1", "--store", "memory"])
                .args(["--port", &port.to_string()]),
            &log_dir.join("coordinator.log"),
        );
        let mut cluster = Self { port, coordinator, daemons: Vec::new(), log_dir, work_before: sessions_in_work_dir() };
        let mut zenoh_peers: Vec<String> = Vec::new();
        for machine in machines {
            let zenoh = format!("127.0.0.1:{}", free_port());
            let mut daemon = Command::new(dora_cli());
            daemon
                .args(["daemon", "--machine-id", machine, "--coordinator-addr", "127.0.0.1", "--zenoh-no-multicast"])
                .args(["--coordinator-port", &port.to_string()])
                .args(["--local-listen-port", &free_port().to_string()])
                .args(["--zenoh-listen", &zenoh]);
            // Since zenoh 1.9 peers do not relay: every daemon dials every earlier one.
            if !zenoh_peers.is_empty() {
                daemon.args(["--zenoh-connect", &zenoh_peers.join(",")]);
            }
            zenoh_peers.push(format!("tcp/{zenoh}"));
            let log = cluster.log_dir.join(format!("daemon-{machine}.log"));
            cluster.daemons.push(((*machine).to_owned(), spawn(&mut daemon, &log)));
        }
        wait_for("every daemon to register", Duration::from_secs(30), || {
            let status = text(&cluster.dora(&["cluster", "status"], Duration::from_secs(30)));
            machines.iter().all(|machine| status.lines().any(|line| line.starts_with(&format!("{machine}-"))))
        });
        cluster
    }

    /// A `dora` command in the workspace root that talks to this cluster's coordinator.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = crate::dora_command(args);
        command.env("DORA_COORDINATOR_ADDR", "127.0.0.1").env("DORA_COORDINATOR_PORT", self.port.to_string());
        command
    }

    /// Runs `dora ARGS` against this cluster, killing it after `timeout`; panics if it had to.
    pub fn dora(&self, args: &[&str], timeout: Duration) -> Output {
        run_to_end(&mut self.command(args), timeout)
    }

    /// The process ids of the nodes `machine`'s daemon runs now.
    pub fn node_pids(&self, machine: &str) -> Vec<u32> {
        self.daemons.iter().filter(|(id, _)| id == machine).flat_map(|(_, daemon)| descendants(daemon.id())).collect()
    }

    /// The log the daemon of `machine` wrote so far.
    pub fn daemon_log(&self, machine: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("daemon-{machine}.log"))).unwrap_or_default()
    }

    /// Stops everything and returns the process ids (coordinator, daemons, their nodes) still
    /// alive afterwards: none, unless something ignored SIGKILL.
    pub fn stop(mut self) -> Vec<u32> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Vec<u32> {
        let nodes: Vec<u32> = self.daemons.iter().flat_map(|(_, daemon)| descendants(daemon.id())).collect();
        let _ = Background::spawn(&mut self.command(&["down", "--force"])).wait(Duration::from_secs(30));
        for pid in &nodes {
            kill(*pid);
        }
        let mut started: Vec<u32> = nodes;
        for child in std::iter::once(&mut self.coordinator).chain(self.daemons.iter_mut().map(|(_, d)| d)) {
            started.push(child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
        for folder in sessions_in_work_dir() {
            if !self.work_before.contains(&folder) {
                let _ = std::fs::remove_dir_all(&folder);
            }
        }
        let _ = std::fs::remove_dir(work_dir());
        started.into_iter().filter(|pid| is_alive(*pid)).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A failed test must not leave a coordinator, a daemon or a node running.
        let _ = self.shut_down();
    }
}

/// Where daemons started in the workspace root keep their dataflow sessions.
fn work_dir() -> PathBuf {
    workspace_root().join("_work")
}

/// The session folders in [`work_dir`].
fn sessions_in_work_dir() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(work_dir()) else { return Vec::new() };
    entries.filter_map(|entry| Some(entry.ok()?.path())).collect()
}

fn spawn(command: &mut Command, log: &std::path::Path) -> Child {
    let out = File::create(log).unwrap();
    user_environment(command)
        .current_dir(workspace_root())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e} (run scripts/setup.sh)", dora_cli().display()))
}

/// A port nothing listens on now (the OS picks it; another process could take it before use,
/// which the start would report).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free port whose successor is free too: the coordinator serves its RPC on `port + 1`.
fn free_port_pair() -> u16 {
    (0..100)
        .find_map(|_| {
            let port = free_port();
            let next = port.checked_add(1)?;
            TcpListener::bind(("127.0.0.1", next)).ok().map(|_| port)
        })
        .unwrap()
}

/// Every process below `pid` (children, their children, ...), from `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|child| Some((child, parent_of(child)?)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, p)| *p == parent) {
            found.push(*child);
            frontier.push(*child);
        }
    }
    found
}

/// The parent process id from `/proc/PID/stat` (after the command name in parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is a live process (a zombie counts as gone).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

fn kill(pid: u32) {
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
}
