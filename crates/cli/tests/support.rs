//! Real `peerchain` processes for end-to-end tests: start, query through the CLI, stop,
//! kill, restart on the same data directory.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_peerchain");

pub use peerchain_testing::wait_for;

/// A node process on its own data directory.
pub struct TestNode {
    pub data_dir: PathBuf,
    pub network: String,
    /// A command every process of this node runs under (`ip netns exec NS` for a node in a
    /// network namespace); empty for none.
    wrapper: Vec<String>,
    child: Option<Child>,
    /// Where the node's output goes (in the data directory, unless that may fill up).
    log_path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl TestNode {
    /// Starts a node on a fresh data directory.
    pub fn start(network: &str, args: &[&str]) -> TestNode {
        Self::start_wrapped(&[], network, "", args)
    }

    /// Starts a node on a fresh data directory holding `config` as its config.toml.
    pub fn start_with_config(network: &str, config: &str, args: &[&str]) -> TestNode {
        Self::start_wrapped(&[], network, config, args)
    }

    /// Starts a node whose processes (it and its client commands) run under `wrapper`, on a
    /// fresh data directory holding `config` (if not empty) as its config.toml.
    pub fn start_wrapped(wrapper: &[&str], network: &str, config: &str, args: &[&str]) -> TestNode {
        let temp = tempfile::tempdir().unwrap();
        if !config.is_empty() {
            std::fs::write(temp.path().join("config.toml"), config).unwrap();
        }
        let mut node = TestNode {
            data_dir: temp.path().to_path_buf(),
            network: network.into(),
            wrapper: wrapper.iter().map(|w| (*w).to_owned()).collect(),
            child: None,
            log_path: temp.path().join("node.log"),
            _temp: Some(temp),
        };
        node.launch(args);
        node
    }

    /// Starts a node on `data_dir` (made by the test, such as a small tmpfs), logging to
    /// `log_path`.
    pub fn start_at(data_dir: &Path, log_path: &Path, network: &str, args: &[&str]) -> TestNode {
        let mut node = TestNode {
            data_dir: data_dir.to_path_buf(),
            network: network.into(),
            wrapper: Vec::new(),
            child: None,
            log_path: log_path.to_path_buf(),
            _temp: None,
        };
        node.launch(args);
        node
    }

    /// The peak resident memory of the node's process so far, in MiB (0 if unknown).
    pub fn peak_memory_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        kib / 1024
    }

    /// Waits for the node to exit by itself; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_for("the node to exit by itself", timeout, || child.try_wait().unwrap())
    }

    /// A command for this node's binary, under its wrapper.
    fn command(&self) -> Command {
        let mut command = match self.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        command.args(["--network", &self.network, "--data-dir"]).arg(&self.data_dir);
        command
    }

    /// Forgets the outbound peers the node would dial first at its next start (its anchors),
    /// so that a restart without bootstrap peers leaves it on its own.
    pub fn forget_anchors(&self) {
        match std::fs::remove_file(self.data_dir.join("anchors.txt")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot remove the anchors: {e}"),
        }
    }

    /// Starts (again) on this node's data directory, waiting until RPC answers.
    pub fn launch(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "already running");
        // A file left by a killed process must not be mistaken for the new node's.
        let _ = std::fs::remove_file(self.data_dir.join("rpc.addr"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).unwrap();
        let mut command = self.command();
        command.args(["node", "--rpc-addr", "127.0.0.1:0", "--no-mdns"]);
        // Loopback unless the test says where to listen.
        if !args.contains(&"--listen") {
            command.args(["--listen", "/ip4/127.0.0.1/tcp/0"]);
        }
        let child = command
            .args(args)
            .env("RUST_LOG", std::env::var("TEST_NODE_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for("the node's RPC", Duration::from_secs(60), || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("node exited early with {status}; log:\n{}", self.log());
            }
            self.data_dir.join("rpc.addr").exists().then_some(())?;
            self.cli(&["chain", "info"]).status.success().then_some(())
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs a client command against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[])
    }

    /// Runs a client command with extra environment variables (and never the caller's
    /// PEERCHAIN_PASSPHRASE).
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command()
            .args(args)
            .env_remove("PEERCHAIN_PASSPHRASE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `json` with extra environment variables.
    pub fn json_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.cli_with_env(&all, env);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its one-line error.
    pub fn cli_error(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let output = self.cli_with_env(args, env);
        assert!(!output.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&output.stdout));
        String::from_utf8_lossy(&output.stderr).trim().to_owned()
    }

    /// Runs a read command with `--json` and returns the document; panics on failure.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.cli(&all);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed non-JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
    }

    pub fn height(&self) -> u64 {
        self.json(&["chain", "info"])["height"].as_u64().unwrap()
    }

    pub fn rpc_url(&self) -> String {
        format!("http://{}/", std::fs::read_to_string(self.data_dir.join("rpc.addr")).unwrap().trim())
    }

    pub fn cookie(&self) -> String {
        std::fs::read_to_string(self.data_dir.join(".cookie")).unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Stops the node with SIGTERM and checks it exits cleanly.
    pub fn stop(&mut self) {
        self.signal("-TERM");
        let mut child = self.child.take().unwrap();
        let status = wait_for("the node to exit", Duration::from_secs(30), || child.try_wait().unwrap());
        assert!(status.success(), "node exited with {status}; log:\n{}", self.log());
    }

    /// Kills the node with SIGKILL: no chance to save anything.
    pub fn kill9(&mut self) {
        self.signal("-KILL");
        let mut child = self.child.take().unwrap();
        child.wait().unwrap();
    }

    /// The node's first listen address, with its peer id.
    pub fn p2p_addr(&self) -> String {
        let id = self.json(&["id"]);
        let addr = id["listen_addrs"][0].as_str().expect("a listen address").to_owned();
        format!("{addr}/p2p/{}", id["peer_id"].as_str().expect("a peer id"))
    }

    pub fn path(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP client that hands back error statuses as responses, for tests that expect them.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// The `Authorization` value of a basic-auth login.
pub fn basic_auth(login: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(login))
}

/// JSON-RPC calls to a node, logged in with its cookie.
pub struct Rpc {
    pub url: String,
    pub auth: String,
    agent: ureq::Agent,
}

impl Rpc {
    pub fn new(node: &TestNode) -> Rpc {
        Rpc { url: node.rpc_url(), auth: basic_auth(node.cookie().trim()), agent: http_agent() }
    }

    /// Posts `body` with `auth` (or none): the status and the body of the answer.
    pub fn raw(&self, body: Vec<u8>, auth: Option<&str>) -> (u16, String) {
        let mut request = self.agent.post(&self.url).header("Content-Type", "application/json");
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        match request.send(&body[..]) {
            Ok(mut response) => (response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default()),
            // A server may close the connection on a body it refuses to read.
            Err(e) => (0, e.to_string()),
        }
    }

    /// The whole JSON-RPC answer (`result` or `error`) to `method`.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let (status, text) = self.raw(body.to_string().into_bytes(), Some(&self.auth));
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }
}
