//! Where test nodes run: loopback, or a private network of namespaces whose links a
//! test can cut.

use std::path::Path;
use std::process::Command;

/// A private network for test nodes: a bridge in the test's own namespace (address
/// `gateway()`, where test cameras and the test's clients live) and one network namespace
/// per host, joined to the bridge by a veth pair. Links between hosts can then be cut
/// for real: both ends drop each other's packets, as a failed switch or firewall would.
/// Needs CAP_NET_ADMIN (root), as CI has. Everything is removed on drop.
pub struct TestNet {
    tag: String,
    prefix: String,
    hosts: usize,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip (iproute2)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
}

impl TestNet {
    /// A network of `hosts`, or `None` (with the reason printed) where this process may
    /// not create namespaces.
    pub fn try_new(hosts: usize) -> Option<TestNet> {
        let probe = format!("cxprobe{}", std::process::id());
        match Command::new("ip").args(["netns", "add", &probe]).output() {
            Ok(o) if o.status.success() => {
                let _ = Command::new("ip").args(["netns", "del", &probe]).output();
                Some(Self::new(hosts))
            }
            Ok(o) => {
                eprintln!(
                    "no network namespaces here ({}): partitions skipped",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("no `ip` command ({e}): partitions skipped");
                None
            }
        }
    }

    pub fn new(hosts: usize) -> TestNet {
        let pid = std::process::id();
        let tag = format!("cx{}", pid % 100_000);
        let prefix = format!("10.{}.{}", 100 + pid % 100, (pid / 100) % 250);
        let net = TestNet { tag, prefix, hosts };
        let br = net.bridge();
        let _ = Command::new("ip").args(["link", "del", &br]).output();
        ip(&["link", "add", &br, "type", "bridge"]);
        ip(&["addr", "add", &format!("{}/24", net.gateway()), "dev", &br]);
        ip(&["link", "set", &br, "up"]);
        for i in 0..hosts {
            let (ns, v, p) = (net.ns(i), format!("{}v{i}", net.tag), format!("{}p{i}", net.tag));
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &v, "type", "veth", "peer", "name", &p, "netns", &ns]);
            ip(&["link", "set", &v, "master", &br, "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{}/24", net.ip(i)), "dev", &p]);
            ip(&["-n", &ns, "link", "set", &p, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    /// The test's own address on the network.
    pub fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }

    /// Host `i`'s address.
    pub fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.prefix, 10 + i)
    }

    /// Host `i`'s network namespace.
    pub fn ns(&self, i: usize) -> String {
        format!("{}-{i}", self.tag)
    }

    /// Cuts the link between hosts `a` and `b`: each drops what it would send the other.
    pub fn cut(&self, a: usize, b: usize) {
        ip(&["-n", &self.ns(a), "route", "add", "blackhole", &format!("{}/32", self.ip(b))]);
        ip(&["-n", &self.ns(b), "route", "add", "blackhole", &format!("{}/32", self.ip(a))]);
    }

    /// Restores the link [`cut`](Self::cut) removed.
    pub fn mend(&self, a: usize, b: usize) {
        ip(&["-n", &self.ns(a), "route", "del", "blackhole", &format!("{}/32", self.ip(b))]);
        ip(&["-n", &self.ns(b), "route", "del", "blackhole", &format!("{}/32", self.ip(a))]);
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for i in 0..self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(i)]).output();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge()]).output();
    }
}

/// Where a test node runs: its address and, on a [`TestNet`], its namespace.
#[derive(Debug, Clone, Default)]
pub struct Host {
    pub ip: String,
    pub netns: Option<String>,
}

impl Host {
    pub fn loopback() -> Host {
        Host { ip: "127.0.0.1".into(), netns: None }
    }

    pub fn on(net: &TestNet, i: usize) -> Host {
        Host { ip: net.ip(i), netns: Some(net.ns(i)) }
    }

    /// `program`, run in this host's namespace.
    pub fn command(&self, program: &Path) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }
}
