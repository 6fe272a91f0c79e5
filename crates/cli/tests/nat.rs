//! Two nodes behind two NATs meet through a relay and punch a hole to a direct connection
//! (circuit relay v2, then DCUtR), with real node processes in Linux network namespaces:
//!
//! ```text
//!   hA 192.168.10.2 ── rA (NAT) 10.99.0.2 ─┐
//!                                          ├─ inet: bridge 10.99.0.1, the relay node
//!   hB 192.168.20.2 ── rB (NAT) 10.99.0.3 ─┘
//! ```
//!
//! Each router masquerades its LAN behind its one public address and silently drops what
//! arrives unasked from outside, as home routers do; the homes have no route to each
//! other's LAN. Needs root, `ip` and `iptables` (`scripts/test` installs `iptables`); when
//! they are missing the test says so and passes, except under CI, where it fails.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{TestNode, wait_for};

/// Network namespaces that are deleted, with everything in them, when dropped.
struct Lab {
    namespaces: Vec<String>,
}

impl Lab {
    fn new(prefix: &str, names: &[&str]) -> Lab {
        let namespaces: Vec<String> = names.iter().map(|n| format!("{prefix}{n}")).collect();
        let lab = Lab { namespaces };
        for ns in &lab.namespaces {
            // Left over from a run that was killed.
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            run(&["ip", "netns", "add", ns]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    fn ns(&self, name: &str) -> &str {
        self.namespaces.iter().find(|n| n.ends_with(name)).expect("a namespace of the lab")
    }

    /// The command prefix that runs a program inside a namespace.
    fn inside(&self, name: &str) -> [&str; 4] {
        ["ip", "netns", "exec", self.ns(name)]
    }

    /// Runs a command inside a namespace.
    fn exec(&self, name: &str, command: &[&str]) {
        run(&[&self.inside(name)[..], command].concat());
    }

    /// A veth pair from `a` (interface `a_if`) to `b` (interface `b_if`).
    fn link(&self, a: &str, a_if: &str, b: &str, b_if: &str) {
        run(&[
            "ip",
            "link",
            "add",
            a_if,
            "netns",
            self.ns(a),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            self.ns(b),
        ]);
        run(&["ip", "-n", self.ns(a), "link", "set", a_if, "up"]);
        run(&["ip", "-n", self.ns(b), "link", "set", b_if, "up"]);
    }

    /// A home `home` behind router `router`: the router's WAN is `public` on the bridge in
    /// `inet`, its LAN `192.168.<lan>.1`, the home's host `192.168.<lan>.2`.
    fn home_behind_nat(&self, home: &str, router: &str, public: &str, lan: u8) {
        let port = format!("port-{router}");
        self.link(router, "wan", "inet", &port);
        run(&["ip", "-n", self.ns("inet"), "link", "set", &port, "master", "br0"]);
        run(&["ip", "-n", self.ns(router), "addr", "add", &format!("{public}/24"), "dev", "wan"]);
        self.link(router, "lan", home, "eth0");
        run(&["ip", "-n", self.ns(router), "addr", "add", &format!("192.168.{lan}.1/24"), "dev", "lan"]);
        run(&["ip", "-n", self.ns(home), "addr", "add", &format!("192.168.{lan}.2/24"), "dev", "eth0"]);
        run(&["ip", "-n", self.ns(home), "route", "add", "default", "via", &format!("192.168.{lan}.1")]);
        self.exec(router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.exec(router, &["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]);
        // Unasked traffic from outside is dropped, not answered: only a mapping the home
        // opened lets packets in.
        self.exec(
            router,
            &["iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"],
        );
        self.exec(
            router,
            &["iptables", "-A", "FORWARD", "-i", "wan", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"],
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn run(command: &[&str]) {
    let output = Command::new(command[0]).args(&command[1..]).output().unwrap();
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Whether this machine lets the test build its lab; why not, if it does not.
fn lab_unavailable() -> Option<String> {
    let works =
        |program: &str, args: &[&str]| Command::new(program).args(args).output().is_ok_and(|o| o.status.success());
    if !works("ip", &["netns", "list"]) {
        return Some("`ip netns` is not usable".into());
    }
    if !works("iptables", &["--version"]) {
        return Some("`iptables` is not installed".into());
    }
    let probe = format!("pcprobe{}", std::process::id());
    if !works("ip", &["netns", "add", &probe]) {
        return Some("cannot create a network namespace (not root?)".into());
    }
    let _ = works("ip", &["netns", "del", &probe]);
    None
}

/// Prints the nodes' logs if the test fails while it is alive.
struct LogsOnFailure<'a>(Vec<(&'static str, &'a TestNode)>);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, node) in &self.0 {
                eprintln!("===== {name} =====\n{}", node.log());
            }
        }
    }
}

fn peer_address(node: &TestNode, peer: &str) -> Option<String> {
    let peers = node.json(&["peers"]);
    let entry = peers.as_array()?.iter().find(|p| p["peer_id"] == peer)?;
    Some(entry["address"].as_str()?.to_owned())
}

#[test]
fn two_nodes_behind_nats_meet_through_a_relay_and_punch_a_direct_connection() {
    if let Some(why) = lab_unavailable() {
        assert!(std::env::var_os("CI").is_none(), "the NAT test cannot run under CI: {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let lab = Lab::new(&format!("pc{}", std::process::id() % 100_000), &["inet", "ra", "ha", "rb", "hb"]);
    run(&["ip", "-n", lab.ns("inet"), "link", "add", "name", "br0", "type", "bridge"]);
    run(&["ip", "-n", lab.ns("inet"), "link", "set", "br0", "up"]);
    run(&["ip", "-n", lab.ns("inet"), "addr", "add", "10.99.0.1/24", "dev", "br0"]);
    lab.home_behind_nat("ha", "ra", "10.99.0.2", 10);
    lab.home_behind_nat("hb", "rb", "10.99.0.3", 20);

    // The relay: public, and told so (nobody on this private range can confirm it).
    let relay = TestNode::start_wrapped(
        &lab.inside("inet"),
        "regtest",
        "[network]\nexternal_addrs = [\"/ip4/10.99.0.1/tcp/4001\"]\n",
        &["--listen", "/ip4/10.99.0.1/tcp/4001"],
    );
    let relay_addr = format!("/ip4/10.99.0.1/tcp/4001/p2p/{}", relay.json(&["id"])["peer_id"].as_str().unwrap());
    // Both homes listen on a fixed port and dial from it (libp2p reuses the listening port),
    // so the mapping their NAT made for the relay is the one the other side dials.
    let behind_nat = |home| {
        let config = format!("[network]\nbootstrap = [\"{relay_addr}\"]\nrelays = [\"{relay_addr}\"]\n");
        TestNode::start_wrapped(&lab.inside(home), "regtest", &config, &["--listen", "/ip4/0.0.0.0/tcp/4001"])
    };
    let a = behind_nat("ha");
    let a_id = a.json(&["id"])["peer_id"].as_str().unwrap().to_owned();
    // The NATs are a real barrier: from B's home, A's public address takes no connection
    // while A listens behind it; the relay's does.
    let tcp_connects = |to: &str| {
        let probe = format!("exec 3<>/dev/tcp/{to}");
        let command = [&lab.inside("hb")[..], &["timeout", "3", "bash", "-c", &probe]].concat();
        Command::new(command[0]).args(&command[1..]).output().unwrap().status.success()
    };
    assert!(tcp_connects("10.99.0.1/4001"), "the relay is reachable from behind a NAT");
    assert!(!tcp_connects("10.99.0.2/4001"), "A's NAT let an unasked connection in");

    // A is reachable only through its reservation at the relay.
    let circuit = wait_for("A's reservation at the relay", Duration::from_secs(30), || {
        let id = a.json(&["id"]);
        let addrs = id["listen_addrs"].as_array()?.clone();
        addrs.iter().filter_map(|a| a.as_str()).find(|a| a.contains("p2p-circuit")).map(str::to_owned)
    });
    assert!(circuit.starts_with(&relay_addr), "{circuit}");

    // B reaches A through the relay (it may already have found the circuit address by
    // itself); then the two punch a hole and go direct.
    let b = behind_nat("hb");
    let _logs = LogsOnFailure(vec![("relay", &relay), ("A", &a), ("B", &b)]);
    let b_id = b.json(&["id"])["peer_id"].as_str().unwrap().to_owned();
    assert!(b.cli(&["connect", &circuit]).status.success());
    let direct = wait_for("a direct connection from B to A", Duration::from_secs(60), || {
        peer_address(&b, &a_id).filter(|address| !address.contains("p2p-circuit"))
    });
    assert!(direct.contains("/ip4/10.99.0.2/"), "B reaches A at A's NAT's public address: {direct}");
    let direct_back = wait_for("A to show B directly", Duration::from_secs(10), || {
        peer_address(&a, &b_id).filter(|address| !address.contains("p2p-circuit"))
    });
    assert!(direct_back.contains("/ip4/10.99.0.3/"), "A reaches B at B's NAT's public address: {direct_back}");
    assert!(
        a.log().contains("direct connection made by hole punching")
            || b.log().contains("direct connection made by hole punching"),
        "neither node logged the hole punch"
    );

    // The chain crosses both NATs: what A mines, B gets.
    a.json(&["chain", "generate", "3"]);
    wait_for("B to sync A's blocks", Duration::from_secs(30), || (b.height() == 3).then_some(()));
}
