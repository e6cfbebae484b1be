//! Engines and registries a test owns, for faults that would break every other test on the
//! world's shared ones: a dockerd restarted or a registry killed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::free_port;

/// Debian's docker client, which speaks the API of Debian's engine.
const DOCKER_CLI: &str = "/usr/bin/docker";

/// A dockerd of its own: its socket, data and exec roots under a temporary directory, a
/// bridge of its own and no iptables rules of its own (the test adds one, for traffic within
/// its bridge), so that it never touches the world engine's `docker0` or its NAT (two engines on one bridge break each other, and a dockerd started
/// with `--bridge none` deletes `docker0`). Stopped and removed on drop, its bridge too.
pub struct PrivateEngine {
    root: PathBuf,
    bridge: String,
    /// The third number of its bridge's subnet, which its other networks reuse.
    subnet: usize,
    /// The bridge of its Swarm gateway network, when it made one.
    gateway_bridge: Option<String>,
    /// The bridge's address on this machine, which every engine's containers reach.
    pub gateway: String,
    flags: Vec<String>,
    daemon: Option<Child>,
}

impl PrivateEngine {
    /// Starts one with `flags` besides its own roots.
    pub fn start(what: &str, flags: &[&str]) -> PrivateEngine {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let root = std::env::temp_dir().join(format!("cutover-engine-{pid}-{what}"));
        std::fs::create_dir_all(&root).unwrap();
        // A name of at most 15 characters, and a subnet no world network uses.
        let bridge = format!("ctov{}-{n}", pid % 100_000);
        let subnet = (pid as usize * 8 + n) % 250 + 1;
        for args in [
            vec!["link", "add", bridge.as_str(), "type", "bridge"],
            vec![
                "addr",
                "add",
                &format!("10.213.{subnet}.1/24"),
                "dev",
                &bridge,
            ],
            vec!["link", "set", bridge.as_str(), "up"],
        ] {
            let made = Command::new("ip").args(&args).status().unwrap();
            assert!(made.success(), "ip {args:?}");
        }
        // Bridged traffic passes the host's FORWARD chain, whose policy the world's dockerd set
        // to DROP: its containers reach each other only with this rule, removed on drop.
        let allowed = Command::new("iptables")
            .args(forward_rule("-I", &bridge))
            .status()
            .unwrap();
        assert!(allowed.success(), "iptables -I FORWARD for {bridge}");
        let mut engine = PrivateEngine {
            root,
            bridge,
            subnet,
            gateway_bridge: None,
            gateway: format!("10.213.{subnet}.1"),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            daemon: None,
        };
        engine.up();
        engine
    }

    /// Its own `docker_gwbridge`, made before it joins a swarm: every engine would otherwise
    /// make one on the same Linux bridge with the same subnet, and the tasks of two swarms could
    /// get one address. Its tasks are reached there from this machine.
    pub fn own_gateway_bridge(&mut self) {
        let bridge = self.bridge.replacen("ctov", "ctgw", 1);
        self.run(&[
            "network",
            "create",
            "--subnet",
            &format!("10.214.{}.0/24", self.subnet),
            "--opt",
            &format!("com.docker.network.bridge.name={bridge}"),
            "--opt",
            "com.docker.network.bridge.enable_icc=false",
            "docker_gwbridge",
        ]);
        self.gateway_bridge = Some(bridge);
    }

    /// A loopback address of its own (`127.0.N.1`): a swarm it joins binds its gossip port
    /// (7946, which no flag moves) there, apart from other engines' swarms.
    pub fn loopback(&self) -> String {
        format!("127.0.{}.1", self.subnet)
    }

    /// `unix://SOCKET`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.root.join("docker.sock").display())
    }

    fn up(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("dockerd.log"))
            .unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(self.root.join("data"))
            .arg("--exec-root")
            .arg(self.root.join("exec"))
            .arg("--pidfile")
            .arg(self.root.join("docker.pid"))
            .args(["-H", &self.host()])
            .args([
                "--bridge",
                &self.bridge,
                "--iptables=false",
                "--ip6tables=false",
            ])
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        self.daemon = Some(child);
        let start = Instant::now();
        while !self.docker(&["info"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the private dockerd did not come up: {}",
                std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops dockerd as a service manager would (SIGTERM, which stops its containers), waits
    /// until it is gone, and starts it again.
    pub fn restart(&mut self) {
        self.down();
        self.up();
    }

    /// Starts dockerd again after [`PrivateEngine::down`].
    pub fn up_again(&mut self) {
        self.up();
    }

    /// Stops dockerd as a service manager would, and waits until it is gone.
    pub fn down(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &daemon.id().to_string()])
                .status();
            let _ = daemon.wait();
        }
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER_CLI)
            .args(args)
            .env("DOCKER_HOST", self.host())
            .output()
            .expect("docker CLI")
    }

    /// The docker CLI against this engine; panics with its stderr when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker inspect -f FORMAT NAME`, or `None` when there is no such container.
    pub fn inspect(&self, name: &str, format: &str) -> Option<String> {
        let out = self.docker(&["inspect", "--type", "container", "-f", format, name]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs the demo app of `image` as `name`, its data on a volume and its own HEALTHCHECK
    /// saying when it serves (so that no probe needs to reach the engine's network); returns
    /// its id.
    pub fn run_app(&self, name: &str, image: &str) -> String {
        self.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--init",
            "-v",
            "data:/data",
            "--health-cmd",
            "cat /www/index.html",
            "--health-interval",
            "1s",
            image,
        ]);
        self.inspect(name, "{{.Id}}").unwrap()
    }

    /// The containers' names, running or not.
    pub fn names(&self) -> Vec<String> {
        self.run(&["ps", "-a", "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// The rule that lets the containers on `bridge` reach each other, inserted or deleted.
fn forward_rule<'a>(action: &'a str, bridge: &'a str) -> [&'a str; 8] {
    [
        action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT",
    ]
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let ids = self.docker(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        self.down();
        let _ = Command::new("iptables")
            .args(forward_rule("-D", &self.bridge))
            .status();
        for bridge in std::iter::once(&self.bridge).chain(&self.gateway_bridge) {
            let _ = Command::new("ip").args(["link", "del", bridge]).status();
        }
        // A swarm's overlay networks keep their namespaces mounted under the exec root after
        // dockerd stops: unmounted, so that the directory goes and the namespaces with it.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let root = self.root.display().to_string();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&root))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in under {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A `docker-registry` process of its own on a loopback port, its storage in a temporary
/// directory, which the test may kill and start again.
pub struct OwnRegistry {
    root: PathBuf,
    pub port: u16,
    process: Option<Child>,
}

impl OwnRegistry {
    pub fn start(what: &str) -> OwnRegistry {
        let root =
            std::env::temp_dir().join(format!("cutover-registry-{}-{what}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root.join("storage").display()
        );
        std::fs::write(root.join("config.yml"), config).unwrap();
        let mut registry = OwnRegistry {
            root,
            port,
            process: None,
        };
        registry.up();
        registry
    }

    /// Starts it again on the same port and storage.
    pub fn up(&mut self) {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.root.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        self.process = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the registry did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash or an out-of-memory kill would end it.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A TCP relay in front of a loopback port that can slow what comes back to a trickle, so that
/// a test can act in the middle of a transfer; it counts what it relayed while slowed.
pub struct SlowLink {
    pub port: u16,
    slow: Arc<AtomicBool>,
    relayed_slowly: Arc<AtomicUsize>,
}

/// While slowed, 16 KiB every 50 ms: 320 KiB/s.
const TRICKLE: usize = 16 * 1024;
const TRICKLE_EVERY: Duration = Duration::from_millis(50);

impl SlowLink {
    pub fn to(upstream: u16) -> SlowLink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let link = SlowLink {
            port,
            slow: Arc::default(),
            relayed_slowly: Arc::default(),
        };
        let (slow, counted) = (link.slow.clone(), link.relayed_slowly.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue; // nothing listens: the client sees its connection closed
                };
                let (slow, counted) = (slow.clone(), counted.clone());
                let (client_in, server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || relay(client_in, server_out, None));
                std::thread::spawn(move || relay(server, client, Some((slow, counted))));
            }
        });
        link
    }

    pub fn slow_down(&self) {
        self.slow.store(true, Ordering::SeqCst);
    }

    pub fn speed_up(&self) {
        self.slow.store(false, Ordering::SeqCst);
    }

    /// Bytes relayed back while slowed.
    pub fn relayed_slowly(&self) -> usize {
        self.relayed_slowly.load(Ordering::SeqCst)
    }
}

fn relay(
    mut from: TcpStream,
    mut to: TcpStream,
    slowed: Option<(Arc<AtomicBool>, Arc<AtomicUsize>)>,
) {
    let mut buffer = vec![0; TRICKLE];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
        if let Some((slow, counted)) = &slowed {
            if slow.load(Ordering::SeqCst) {
                counted.fetch_add(n, Ordering::SeqCst);
                std::thread::sleep(TRICKLE_EVERY);
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
